"""A real MCP client (the official Python SDK) driving `evertoken mcp` over stdio.

Usage: mcp_client.py SPEC_JSON
SPEC_JSON: {"command": "...", "args": [...], "env": {...}, "cwd": "...",
            "calls": [{"tool": "name", "arguments": {...}}, ...]}
Prints one JSON document on stdout: the server's info, the tool list and the
result of each call (structured content, text content, isError).
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main(spec):
    params = StdioServerParameters(
        command=spec["command"],
        args=spec.get("args", []),
        env=spec.get("env"),
        cwd=spec.get("cwd"),
    )
    out = {"calls": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            # Read everything through the wire (camelCase) form, whatever the
            # SDK version names its Python attributes.
            init = dump(await session.initialize())
            out["server"] = init.get("serverInfo")
            out["capabilities"] = init.get("capabilities")
            tools = dump(await session.list_tools())
            out["tools"] = tools.get("tools", [])
            for call in spec.get("calls", []):
                res = dump(await session.call_tool(call["tool"], call.get("arguments") or {}))
                out["calls"].append(
                    {
                        "tool": call["tool"],
                        "isError": bool(res.get("isError")),
                        "structured": res.get("structuredContent"),
                        "text": [c.get("text") for c in res.get("content", []) if c.get("type") == "text"],
                    }
                )
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
