"""Drives /ghauth through Takopi's own machinery, as a chat message would.

    python run_ghauth.py TAKOPI_TOML SUBCOMMAND [SUBCOMMAND ...]

Loads the Takopi config with `takopi.api.load_settings`, builds Takopi's transport
runtime (which hands each plugin its `[plugins.<id>]` table), finds the backend
through Takopi's entry-point discovery (`get_command`), checks it satisfies the
`CommandBackend` protocol, and calls `handle(ctx)` with a `CommandContext` built the
way Takopi's Telegram dispatcher builds it. Prints `{"<subcommand>": "<reply>"}` as
JSON. Used by crates/evertoken/tests/takopi.rs.
"""

from __future__ import annotations

import asyncio
import json
import sys

from takopi.api import (
    CommandBackend,
    CommandContext,
    MessageRef,
    RenderedMessage,
    get_command,
    load_settings,
)
from takopi.runtime_loader import build_runtime_spec
from takopi.telegram.files import split_command_args


class RecordingExecutor:
    """Stands in for the chat transport: records what the command sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message, *, reply_to=None, notify=True):
        self.sent.append(message.text if isinstance(message, RenderedMessage) else str(message))
        return None

    async def run_one(self, request, *, mode="emit"):
        raise RuntimeError("/ghauth never runs an engine")

    async def run_many(self, requests, *, mode="emit", parallel=False):
        raise RuntimeError("/ghauth never runs an engine")


async def main(config: str, subcommands: list[str]) -> dict[str, str]:
    settings, path = load_settings(config)
    runtime = build_runtime_spec(settings=settings, config_path=path).to_runtime(config_path=path)
    backend = get_command("ghauth", allowlist=runtime.allowlist)
    assert isinstance(backend, CommandBackend), "ghauth does not satisfy takopi.api.CommandBackend"
    assert backend.id == "ghauth"
    out: dict[str, str] = {}
    for i, sub in enumerate(subcommands):
        executor = RecordingExecutor()
        message = MessageRef(channel_id=1, message_id=100 + i)
        ctx = CommandContext(
            command="ghauth",
            text=f"/ghauth {sub}".strip(),
            args_text=sub,
            args=split_command_args(sub),
            message=message,
            reply_to=None,
            reply_text=None,
            config_path=runtime.config_path,
            plugin_config=runtime.plugin_config("ghauth"),
            runtime=runtime,
            executor=executor,
        )
        result = await backend.handle(ctx)
        out[sub or "(none)"] = result.text if result is not None else "\n".join(executor.sent)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
