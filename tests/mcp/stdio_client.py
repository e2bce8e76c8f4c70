"""Drives `coda mcp` (MCP over stdio) with the official MCP Python SDK's stdio client, which
launches the real binary (bin/tests/mcp_stdio.rs runs it).

usage: stdio_client.py CODA_BIN local CONFIG
       stdio_client.py CODA_BIN proxy URL TOKEN

local: `coda mcp --config CONFIG` opens the store itself. proxy: `coda mcp --url URL` goes
through a running server, with the token from --token or CODA_TOKEN; without a token, and with
a wrong one, a tool call is a tool error naming the token; `--tenant acme` works on tenant acme.
Both run the same flow as the /mcp test (client.py: every tool, bad arguments named, expiry).
Prints one "OK: ..." line on success; exits non-zero on any failure.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import main_flow, ok, text  # noqa: E402  (client.py sits beside this file)


async def session_for(coda, args, body, env=None):
    """Launches `coda ARGS` as the SDK launches any stdio server and runs `body` on it."""
    environment = {**get_default_environment(), "CODA_LOG": "warn", **(env or {})}
    params = StdioServerParameters(command=coda, args=args, env=environment)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            return await body(session, init)


async def refused_token(session, _init):
    """Listing works without the server; a call says what is wrong with the token."""
    tools = await session.list_tools()
    assert len(tools.tools) == 11, tools
    result = await session.call_tool("add_memory", {"content": "never stored"})
    assert result.isError, text(result)
    return json.loads(text(result))["error"]


async def local(coda, config):
    count = await session_for(coda, ["mcp", "--config", config], main_flow)
    print(f"OK: {count} tools over stdio (local), every tool called, bad argument named")


async def proxy(coda, url, token):
    count = await session_for(coda, ["mcp", "--url", url, "--token", token], main_flow)

    missing = await session_for(coda, ["mcp", "--url", url], refused_token)
    assert missing["field"] == "token", missing
    assert "--token" in missing["message"] and "CODA_TOKEN" in missing["message"], missing
    wrong = await session_for(coda, ["mcp", "--url", url], refused_token,
                              env={"CODA_TOKEN": "not-the-token"})
    assert wrong["field"] == "token" and "refused the token" in wrong["message"], wrong

    # CODA_TOKEN stands in for --token; --tenant picks the admin's tenant.
    async def add(session, _init):
        return ok(await session.call_tool("add_memory", {"content": "acme ships in June"}))

    async def search(session, _init):
        return ok(await session.call_tool("search_memories", {"query": "ships June"}))

    tenant_args = ["mcp", "--url", url, "--tenant", "acme"]
    added = await session_for(coda, tenant_args, add, env={"CODA_TOKEN": token})
    mine = await session_for(coda, tenant_args, search, env={"CODA_TOKEN": token})
    assert [r["id"] for r in mine["results"]] == [added["id"]], mine
    theirs = await session_for(coda, ["mcp", "--url", url], search, env={"CODA_TOKEN": token})
    assert all(r["id"] != added["id"] for r in theirs["results"]), theirs
    print(f"OK: {count} tools over stdio (proxy), every tool called, bad argument named, "
          "missing and wrong token named, tenant kept apart")


def main():
    coda, mode = sys.argv[1], sys.argv[2]
    if mode == "local":
        asyncio.run(local(coda, sys.argv[3]))
    elif mode == "proxy":
        asyncio.run(proxy(coda, sys.argv[3], sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode!r}: local or proxy")


if __name__ == "__main__":
    main()
