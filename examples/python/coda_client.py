"""A small client for Coda's HTTP API and WebSocket event stream.

HTTP uses only the standard library (urllib); the event stream uses the `websockets` package
(its asyncio client). Copy this file into your project or import it next to `demo.py`.

    api = CodaApi("http://127.0.0.1:8765", token=None)
    api.add_turn("user", "Hi, my name is Alice.")
    hits = api.search("what is the user's name", limit=3)

    stream = EventStream("http://127.0.0.1:8765")
    await stream.connect()              # first connect: no replay, live events from now on
    event = await stream.next_event()   # an event dict, in seq order
    await stream.close()
    await stream.connect()              # later: resumes after the last seq seen (since/epoch)
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# Frames the server sends besides events (docs/protocol.md).
PROTOCOL_FRAMES = {"welcome", "replay_gap", "lagged", "batch", "pong", "error"}


class CodaError(Exception):
    """An error answer from the HTTP API: status, stable code, message, and field for 422s."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class CodaApi:
    """The HTTP API under /api/v1 (docs/api.md), one method per route."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0):
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """Sends one request; returns the parsed JSON (None for 204); raises CodaError."""
        url = self.base + path
        if query:
            pairs = {k: v for k, v in query.items() if v is not None}
            url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode()
        headers = {"accept": "application/json"}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                error = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                raise CodaError(e.code, "http_error", text.decode(errors="replace")) from None
            raise CodaError(e.code, error["code"], error["message"], error.get("field")) from None

    def api(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        return self.request(method, "/api/v1" + path, body, query or None)

    # Service.
    def health(self) -> dict:
        return self.request("GET", "/healthz")

    def stats(self) -> dict:
        return self.api("GET", "/stats")

    # Short-term memory.
    def add_turn(self, role: str, content: str, name: str | None = None) -> dict:
        body = {"role": role, "content": content}
        if name is not None:
            body["name"] = name
        return self.api("POST", "/turns", body)

    def turns(self) -> dict:
        return self.api("GET", "/turns")

    def clear_turns(self) -> None:
        self.api("DELETE", "/turns")

    def persist(self) -> dict:
        return self.api("POST", "/persist")

    # Long-term memory.
    def add_memory(self, content: str, memory_type: str | None = None,
                   importance: float | None = None, metadata: dict | None = None) -> dict:
        body: dict[str, Any] = {"content": content}
        for key, value in (("memory_type", memory_type), ("importance", importance),
                           ("metadata", metadata)):
            if value is not None:
                body[key] = value
        return self.api("POST", "/memories", body)

    def memories(self, limit: int = 50, offset: int = 0, type: str | None = None) -> list:
        return self.api("GET", "/memories", limit=limit, offset=offset, type=type)["memories"]

    def search(self, query: str, limit: int = 5, min_similarity: float = 0.0,
               filter: dict | None = None, mode: str | None = None) -> list:
        body: dict[str, Any] = {"query": query, "limit": limit, "min_similarity": min_similarity}
        if filter is not None:
            body["filter"] = filter
        if mode is not None:
            body["mode"] = mode
        return self.api("POST", "/memories/search", body)["results"]

    def memory(self, memory_id: str) -> dict:
        return self.api("GET", f"/memories/{memory_id}")

    def update_memory(self, memory_id: str, **patch: Any) -> dict:
        return self.api("PATCH", f"/memories/{memory_id}", patch)

    def delete_memory(self, memory_id: str) -> dict:
        return self.api("DELETE", f"/memories/{memory_id}")

    # Snapshots.
    def snapshots(self, **query: Any) -> list:
        return self.api("GET", "/snapshots", **query)["snapshots"]

    def create_snapshot(self, save: bool = False) -> dict:
        return self.api("POST", "/snapshots", {"save": save})

    def diff(self, a: str, b: str = "current") -> dict:
        return self.api("GET", f"/snapshots/{a}/diff/{b}")


class EventStream:
    """The live event stream at /ws, resuming after a reconnect without gaps or duplicates.

    It remembers the epoch and the last seq it handed out; `connect()` after the first passes
    `since`/`epoch`, so the server replays exactly what was missed. Protocol notices the caller
    should act on (`replay_gap`, `lagged`: events are missing, reload through the HTTP API) are
    kept in `notices`.
    """

    def __init__(self, url: str, token: str | None = None, types: list[str] | None = None):
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        scheme = "wss" if parsed.scheme == "https" else "ws"
        self.ws_base = f"{scheme}://{parsed.netloc}{parsed.path}/ws"
        self.token = token
        self.types = types
        self.epoch: str | None = None
        self.last_seq: int | None = None
        self.notices: list[dict] = []
        self._ws: ClientConnection | None = None
        self._pending: list[dict] = []

    def url(self) -> str:
        query: dict[str, Any] = {}
        if self.types:
            query["types"] = ",".join(self.types)
        if self.epoch is not None and self.last_seq is not None:
            query["since"] = self.last_seq
            query["epoch"] = self.epoch
        else:
            query["replay"] = 0
        return self.ws_base + "?" + urllib.parse.urlencode(query)

    async def connect(self, timeout: float = 10.0) -> dict:
        """Opens the socket and reads the welcome; returns it."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        # Events read but not yet handed out are resent after last_seq: drop them here.
        self._pending.clear()
        self._ws = await connect(self.url(), additional_headers=headers, open_timeout=timeout)
        welcome = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected a welcome frame, got {welcome}")
        if self.epoch is not None and welcome["epoch"] != self.epoch:
            # The server restarted: seqs start again, and it replays what it holds of the new
            # epoch after a replay_gap (kept in notices): the caller should reload state.
            self.last_seq = 0
        self.epoch = welcome["epoch"]
        if self.last_seq is None:
            self.last_seq = welcome["seq"]
        return welcome

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def next_event(self, timeout: float = 10.0) -> dict:
        """The next event, in seq order; skips protocol frames (keeping notices)."""
        while not self._pending:
            if self._ws is None:
                raise RuntimeError("not connected")
            frame = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
            kind = frame.get("type")
            if kind == "batch":
                self._pending.extend(frame["events"])
            elif kind in ("replay_gap", "lagged", "error"):
                self.notices.append(frame)
            elif kind not in PROTOCOL_FRAMES:
                self._pending.append(frame)
        event = self._pending.pop(0)
        self.last_seq = event["seq"]
        return event

    async def until_seq(self, seq: int, timeout: float = 10.0) -> list[dict]:
        """Every event up to and including `seq` (e.g. /healthz's seq after some changes)."""
        events = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_seq is None or self.last_seq < seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"events up to seq {seq} did not arrive in {timeout} s")
            events.append(await self.next_event(remaining))
        return events
