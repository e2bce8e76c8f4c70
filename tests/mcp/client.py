"""Drives Coda's /mcp with the official MCP Python SDK (tests/mcp_http.rs runs it).
tests/mcp/stdio_client.py imports main_flow from here to drive `coda mcp` the same way.

usage: client.py URL TOKEN [TENANT_TOKEN]

Initializes, lists the tools, calls add_memory / search_memories / memory_history and the rest,
sends a bad argument (expects isError naming the field), and checks that a request without a
token is refused with HTTP 401. With TENANT_TOKEN, also checks a tenant does not see the
default tenant's memory. Prints one "OK: ..." line on success; exits non-zero on any failure.
"""

import asyncio
import json
import sys
import urllib.error
import urllib.request

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

TOOLS = {
    "add_memory", "search_memories", "list_memories", "get_memory", "update_memory",
    "delete_memory", "memory_history", "add_turn", "get_turns", "persist", "create_snapshot",
}


def text(result):
    assert result.content, result
    return result.content[0].text


def ok(result):
    assert not result.isError, f"unexpected tool error: {text(result)}"
    return json.loads(text(result))


async def session_for(url, token, body):
    headers = {"Authorization": f"Bearer {token}"}
    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            return await body(session, init)


async def main_flow(session, init):
    assert init.serverInfo.name == "coda", init.serverInfo
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    assert names == TOOLS, f"tools: {sorted(names)}"
    for tool in tools.tools:
        assert tool.inputSchema.get("type") == "object", tool
        assert "user_id" in tool.inputSchema.get("properties", {}), tool.name
    schemas = {t.name: t.inputSchema for t in tools.tools}
    assert schemas["add_memory"]["required"] == ["content"], schemas["add_memory"]
    assert "limit" in schemas["search_memories"]["properties"], schemas["search_memories"]
    for name in ("add_memory", "update_memory"):
        assert "expires_at" in schemas[name]["properties"], schemas[name]

    added = ok(await session.call_tool(
        "add_memory", {"content": "Alice likes green tea", "user_id": "alice"}))
    mid = added["id"]
    assert added["user_id"] == "alice", added
    found = ok(await session.call_tool(
        "search_memories", {"query": "green tea", "user_id": "alice"}))
    assert [r["id"] for r in found["results"]] == [mid], found
    other = ok(await session.call_tool("search_memories", {"query": "green tea", "user_id": "bob"}))
    assert other["results"] == [], other
    updated = ok(await session.call_tool(
        "update_memory", {"id": mid, "content": "Alice likes jasmine tea", "user_id": "alice"}))
    assert updated["content"] == "Alice likes jasmine tea", updated
    history = ok(await session.call_tool("memory_history", {"id": mid, "user_id": "alice"}))
    assert [v["content"] for v in history["history"]] == [
        "Alice likes green tea", "Alice likes jasmine tea"], history
    got = ok(await session.call_tool("get_memory", {"id": mid, "user_id": "alice"}))
    assert got["id"] == mid, got
    listed = ok(await session.call_tool("list_memories", {"user_id": "alice", "limit": 10}))
    assert [m["id"] for m in listed["memories"]] == [mid], listed

    turn = ok(await session.call_tool(
        "add_turn", {"role": "user", "content": "I live in Lyon", "user_id": "alice",
                     "session_id": "s1"}))
    assert turn["session_id"] == "s1", turn
    turns = ok(await session.call_tool("get_turns", {"user_id": "alice", "session_id": "s1"}))
    assert "I live in Lyon" in json.dumps(turns), turns
    ok(await session.call_tool("persist", {"user_id": "alice", "session_id": "s1"}))
    snap = ok(await session.call_tool("create_snapshot", {"user_id": "alice", "session_id": "s1"}))
    assert snap, snap

    # Bad input: a tool error naming the field, not a protocol failure.
    bad = await session.call_tool("search_memories", {"query": "x", "user_id": "no spaces!"})
    assert bad.isError, bad
    assert json.loads(text(bad))["error"]["field"] == "user_id", text(bad)
    bad_mode = await session.call_tool("search_memories", {"query": "x", "mode": "psychic"})
    assert bad_mode.isError and "mode" in text(bad_mode), text(bad_mode)

    bad_type = await session.call_tool("list_memories", {"user_id": "alice", "limit": "ten"})
    assert bad_type.isError, bad_type
    assert json.loads(text(bad_type))["error"]["field"] == "limit", text(bad_type)
    unknown = await session.call_tool("get_memory", {"id": mid, "colour": "blue"})
    assert unknown.isError and "colour" in text(unknown), text(unknown)

    deleted = await session.call_tool("delete_memory", {"id": mid, "user_id": "alice"})
    assert not deleted.isError, text(deleted)
    gone = await session.call_tool("get_memory", {"id": mid, "user_id": "alice"})
    assert gone.isError and json.loads(text(gone))["error"]["code"] == "not_found", text(gone)
    await expiry_flow(session)
    return len(names)


async def expiry_flow(session):
    """expires_at on add_memory and update_memory, as the HTTP API takes it (erin's memory)."""
    added = ok(await session.call_tool("add_memory", {
        "content": "Erin's trial ends in 2030", "user_id": "erin",
        "expires_at": "2030-01-01T00:00:00Z"}))
    assert added["expires_at"].startswith("2030-01-01T00:00:00"), added
    moved = ok(await session.call_tool("update_memory", {
        "id": added["id"], "user_id": "erin", "expires_at": "2031-06-01T12:00:00Z"}))
    assert moved["expires_at"].startswith("2031-06-01T12:00:00"), moved
    kept = ok(await session.call_tool("update_memory", {
        "id": added["id"], "user_id": "erin", "importance": 0.9}))
    assert kept["expires_at"] == moved["expires_at"], kept
    cleared = ok(await session.call_tool("update_memory", {
        "id": added["id"], "user_id": "erin", "expires_at": None}))
    assert "expires_at" not in cleared, cleared
    bad = await session.call_tool("add_memory", {
        "content": "x", "user_id": "erin", "expires_at": "next tuesday"})
    assert bad.isError and json.loads(text(bad))["error"]["field"] == "expires_at", text(bad)
    both = await session.call_tool("update_memory", {
        "id": added["id"], "user_id": "erin", "expires_at": "2030-01-01T00:00:00Z",
        "ttl_s": 60})
    assert both.isError and "ttl_s" in text(both), text(both)


def status_without_token(url):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


async def tenant_flow(url, admin, tenant):
    async def add(session, _init):
        return ok(await session.call_tool("add_memory", {"content": "acme's launch is in May"}))

    async def search(session, _init):
        return ok(await session.call_tool("search_memories", {"query": "launch May"}))

    added = await session_for(url, tenant, add)
    mine = await session_for(url, tenant, search)
    assert [r["id"] for r in mine["results"]] == [added["id"]], mine
    theirs = await session_for(url, admin, search)
    assert all(r["id"] != added["id"] for r in theirs["results"]), theirs


async def main():
    url, token = sys.argv[1], sys.argv[2]
    count = await session_for(url, token, main_flow)
    if len(sys.argv) > 3:
        await tenant_flow(url, token, sys.argv[3])
    refused = status_without_token(url)
    assert refused == 401, f"no token: HTTP {refused}"
    print(f"OK: {count} tools, every tool called, bad argument named, no token -> {refused}")


if __name__ == "__main__":
    asyncio.run(main())
