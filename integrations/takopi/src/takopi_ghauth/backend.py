"""The /ghauth command backend: GitHub App token status and manual refresh.

Thin by design: the logic lives in `evertoken github ...`. This module turns
`[plugins.ghauth]` into flags, runs evertoken (or a configured `refresh_script`),
and formats the answer for chat. It never prints a whole token: status shows the
prefix evertoken reports, and refresh output is scrubbed of anything token-shaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Any

from takopi.api import CommandContext, CommandResult

HELP = """\
/ghauth — GitHub App installation token (via evertoken)
  /ghauth status   token file presence, age, prefix, expiry; gh and timer state
  /ghauth refresh  mint a new token now and report the result (output tail on failure)
  /ghauth flow     how the pieces fit together
  /ghauth help     this text"""

FLOW_FALLBACK = """\
GitHub App token flow
1. The app's private key stays on the host (0600).
2. `evertoken github refresh` mints a 1-hour installation token and writes the token env file (0600).
3. gh's stored auth is updated on every mint, so `gh` / `gh api` need no restart.
4. A systemd user timer runs the refresh every 45 minutes.
5. /ghauth status shows freshness and prefix; /ghauth refresh mints now."""

# Token shapes GitHub issues (classic and stateless ghs_ tokens, PATs, OAuth).
_TOKEN_RE = re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_.\-]{8,}")
_TAIL_LINES = 15


def _scrub(text: str) -> str:
    """Replaces anything token-shaped by its first 8 characters and an ellipsis."""
    return _TOKEN_RE.sub(lambda m: m.group(0)[:8] + "…", text)


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


@dataclass(frozen=True)
class GhauthConfig:
    """`[plugins.ghauth]`, with the source document's keys and meanings."""

    token_env_file: str | None = None
    refresh_script: str | None = None
    run_refresh_with: list[str] = field(default_factory=list)
    max_token_age_minutes: int | None = None
    refresh_timeout_seconds: float = 30.0
    # Additions: which evertoken binary, which app entry.
    evertoken: str = "evertoken"
    app: str = "default"

    @classmethod
    def from_plugin_config(cls, raw: dict[str, Any]) -> "GhauthConfig":
        known = {
            "token_env_file",
            "refresh_script",
            "run_refresh_with",
            "max_token_age_minutes",
            "refresh_timeout_seconds",
            "evertoken",
            "app",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"unknown key(s) in [plugins.ghauth]: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        run_with = raw.get("run_refresh_with") or []
        if not isinstance(run_with, list) or not all(isinstance(x, str) for x in run_with):
            raise ValueError("plugins.ghauth.run_refresh_with must be a list of strings, e.g. [\"sudo\", \"-n\"]")
        age = raw.get("max_token_age_minutes")
        if age is not None and (not isinstance(age, int) or not 1 <= age <= 60):
            raise ValueError("plugins.ghauth.max_token_age_minutes must be a whole number from 1 to 60")
        timeout = raw.get("refresh_timeout_seconds", 30)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("plugins.ghauth.refresh_timeout_seconds must be a positive number")
        return cls(
            token_env_file=raw.get("token_env_file") or None,
            refresh_script=raw.get("refresh_script") or None,
            run_refresh_with=list(run_with),
            max_token_age_minutes=age,
            refresh_timeout_seconds=float(timeout),
            evertoken=str(raw.get("evertoken") or "evertoken"),
            app=str(raw.get("app") or "default"),
        )

    def file_flags(self) -> list[str]:
        flags = ["--app", self.app]
        if self.token_env_file:
            flags += ["--token-env-file", os.path.expanduser(self.token_env_file)]
        return flags


@dataclass
class _Run:
    code: int | None
    output: str
    timed_out: bool = False
    missing: bool = False


async def _run(argv: list[str], timeout: float) -> _Run:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError:
        return _Run(code=None, output="", missing=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except (asyncio.TimeoutError, TimeoutError):
        proc.kill()
        out, _ = await proc.communicate()
        return _Run(code=None, output=out.decode(errors="replace"), timed_out=True)
    return _Run(code=proc.returncode, output=out.decode(errors="replace"))


async def _run_json(argv: list[str], timeout: float) -> tuple[_Run, dict[str, Any] | None]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        return _Run(code=None, output="", missing=True), None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except (asyncio.TimeoutError, TimeoutError):
        proc.kill()
        await proc.communicate()
        return _Run(code=None, output="", timed_out=True), None
    run = _Run(code=proc.returncode, output=err.decode(errors="replace"))
    try:
        return run, json.loads(out.decode())
    except ValueError:
        return run, None


def _format_status(doc: dict[str, Any]) -> str:
    tf = doc.get("token_file", {})
    lines = []
    if tf.get("present"):
        age = tf.get("age_minutes")
        stale = " (stale)" if tf.get("stale") else ""
        lines.append(f"token: present ({tf.get('path')})")
        lines.append(f"age: {age} min{stale}, limit {tf.get('max_age_minutes')} min")
        lines.append(f"prefix: {tf.get('prefix')}")
        lines.append(f"expires: {tf.get('expires_at') or 'unknown'}{' (expired)' if tf.get('expired') else ''}")
    else:
        lines.append(f"token: missing ({tf.get('path')})")
    gh = doc.get("gh", {})
    if gh.get("checked"):
        lines.append(f"gh: {'authenticated' if gh.get('authenticated') else 'NOT authenticated'} — {gh.get('message')}")
    timer = doc.get("timer", {})
    lines.append(f"timer: {timer.get('unit')}: {timer.get('state')}")
    problems = doc.get("problems") or []
    if problems:
        lines.append("problems:")
        lines.extend(f"- {p}" for p in problems)
    else:
        lines.append("healthy")
    return _scrub("\n".join(lines))


class GhauthCommand:
    """Takopi command backend for /ghauth."""

    id = "ghauth"
    description = "GitHub App token status and refresh (evertoken)"

    async def handle(self, ctx: CommandContext) -> CommandResult | None:
        try:
            cfg = GhauthConfig.from_plugin_config(dict(ctx.plugin_config or {}))
        except ValueError as exc:
            return CommandResult(text=f"ghauth: config error: {exc}")
        sub = ctx.args[0].lower() if ctx.args else "help"
        if sub == "status":
            return CommandResult(text=await self._status(cfg))
        if sub == "refresh":
            return CommandResult(text=await self._refresh(cfg))
        if sub == "flow":
            return CommandResult(text=await self._flow(cfg))
        if sub == "help":
            return CommandResult(text=HELP)
        return CommandResult(text=f"unknown subcommand `{sub}`\n\n{HELP}")

    def _evertoken_missing(self, cfg: GhauthConfig) -> str:
        return (
            f"`{cfg.evertoken}` not found: install evertoken on this host "
            "or set plugins.ghauth.evertoken to its path"
        )

    async def _status(self, cfg: GhauthConfig) -> str:
        argv = [cfg.evertoken, "github", "status", "--json", *cfg.file_flags()]
        if cfg.max_token_age_minutes is not None:
            argv += ["--max-token-age-minutes", str(cfg.max_token_age_minutes)]
        run, doc = await _run_json(argv, timeout=cfg.refresh_timeout_seconds)
        if run.missing:
            return self._evertoken_missing(cfg)
        if run.timed_out:
            return f"status timed out after {cfg.refresh_timeout_seconds:g}s"
        if doc is None:
            return _scrub(f"status failed (exit {run.code}):\n{_tail(run.output)}")
        return _format_status(doc)

    async def _refresh(self, cfg: GhauthConfig) -> str:
        timeout = cfg.refresh_timeout_seconds
        if cfg.refresh_script:
            script = os.path.expanduser(cfg.refresh_script)
            if shutil.which(script) is None and not os.access(script, os.X_OK):
                return f"script not found: {script}\nfix plugins.ghauth.refresh_script"
            argv = [*cfg.run_refresh_with, script]
            what = script
        else:
            argv = [
                *cfg.run_refresh_with,
                cfg.evertoken,
                "github",
                "refresh",
                *cfg.file_flags(),
                "--timeout",
                str(max(1, int(timeout))),
            ]
            what = "evertoken github refresh"
        # A little longer than evertoken's own timeout, so its message wins.
        run = await _run(argv, timeout=timeout + 5 if not cfg.refresh_script else timeout)
        if run.missing:
            if cfg.refresh_script:
                return f"cannot run {argv[0]} (plugins.ghauth.run_refresh_with)"
            return self._evertoken_missing(cfg)
        tail = _scrub(_tail(run.output))
        if run.timed_out:
            return f"refresh timed out after {timeout:g}s ({what})\n{tail}".rstrip()
        if run.code == 0:
            return f"refresh ok ({what})\n{tail}".rstrip()
        return f"refresh failed (exit {run.code}, {what})\n{tail}".rstrip()

    async def _flow(self, cfg: GhauthConfig) -> str:
        run = await _run([cfg.evertoken, "github", "flow", "--app", cfg.app], timeout=10)
        if run.code == 0 and run.output.strip():
            return run.output.strip()
        return FLOW_FALLBACK


BACKEND = GhauthCommand()
