"""`Events`: an async iterator over `/ws` that resumes across disconnects (docs/protocol.md).

It remembers the `epoch` of the welcome and the `seq` of the last event it handed out. When the
socket drops (the network, a server close, a restart) it reconnects with growing back-off and
`?since=SEQ&epoch=EPOCH`, so the server replays exactly what was missed; an event it already
handed out is never handed out twice. Frames that mean events are missing (`replay_gap`,
`lagged`) are yielded in order, as dicts with that `type`: reload state through the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any, AsyncIterator, Dict, List, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from .client import Json
from .errors import CodaConnectionError, CodaError

#: Frames that report missing events; yielded to the caller.
NOTICES = ("replay_gap", "lagged")


class Events:
    """Follows `/ws`: `async for event in Events(url, token): ...`.

    `types` and the scope ids filter the stream; `tenant` (admin tokens) picks a tenant's events
    or `*`. `replay` is how many held events a first connect sends (default 0: live only).
    `since`/`epoch` start from an earlier position. Reconnects wait `backoff` seconds, doubling
    up to `max_backoff`; `max_retries` failed attempts in a row (None: no limit) end the
    iteration with `CodaConnectionError`. A refused upgrade (401, 404, 422) raises `CodaError`.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8765",
        token: Optional[str] = None,
        *,
        types: Optional[List[str]] = None,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        tenant: Optional[str] = None,
        replay: int = 0,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_retries: Optional[int] = 10,
        open_timeout: float = 10.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        scheme = "wss" if parsed.scheme == "https" else "ws"
        self.ws_base = f"{scheme}://{parsed.netloc}{parsed.path}/ws"
        self.token = token
        self.filters: Dict[str, str] = {
            k: v for k, v in (("types", ",".join(types) if types else None),
                              ("user_id", user_id), ("agent_id", agent_id),
                              ("session_id", session_id), ("tenant", tenant)) if v
        }
        self.replay = replay
        self.epoch: Optional[str] = epoch
        self.last_seq: Optional[int] = since
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retries = max_retries
        self.open_timeout = open_timeout
        #: How many times the iterator reconnected after a drop.
        self.reconnects = 0
        #: How many reconnect attempts failed (the server unreachable), over the whole life.
        self.failed_attempts = 0
        #: The latest welcome frame.
        self.welcome: Optional[Json] = None
        self._ws: Optional[ClientConnection] = None
        self._closed = False

    def url(self) -> str:
        """The upgrade URL for the next connect: resuming when a position is known."""
        query: Dict[str, Any] = dict(self.filters)
        if self.last_seq is not None and self.epoch is not None:
            query["since"] = self.last_seq
            query["epoch"] = self.epoch
        elif self.last_seq is not None:
            query["since"] = self.last_seq
        else:
            query["replay"] = self.replay
        return self.ws_base + "?" + urllib.parse.urlencode(query)

    async def connect(self) -> Json:
        """Opens the socket (resuming if possible) and reads the welcome; returns it."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            ws = await connect(self.url(), additional_headers=headers,
                               open_timeout=self.open_timeout)
        except InvalidStatus as e:
            body = bytes(e.response.body or b"")
            raise CodaError.from_body(e.response.status_code, body) from None
        except InvalidURI as e:
            raise CodaConnectionError(str(e)) from None
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), self.open_timeout))
        except BaseException:
            await ws.close()
            raise
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            await ws.close()
            raise CodaError(0, "bad_frame", f"expected a welcome frame, got {welcome!r}")
        if self.epoch is not None and welcome.get("epoch") != self.epoch:
            # The server restarted: seqs start again at 1 (after a replay_gap from 1).
            self.last_seq = 0
        self.epoch = str(welcome.get("epoch"))
        if self.last_seq is None:
            self.last_seq = int(welcome.get("seq", 0))
        self.welcome = welcome
        self._ws = ws
        return welcome

    async def close(self) -> None:
        """Closes the socket and ends the iteration."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def drop(self) -> None:
        """Drops the socket without a close handshake, as a broken network would (for tests):
        the iterator reconnects and resumes."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def __aenter__(self) -> "Events":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._iterate()

    async def _reconnect(self) -> None:
        delay = self.backoff
        failures = 0
        while not self._closed:
            try:
                await self.connect()
                return
            except CodaError:
                raise
            except (OSError, asyncio.TimeoutError, ConnectionClosed) as e:
                failures += 1
                self.failed_attempts += 1
                if self.max_retries is not None and failures > self.max_retries:
                    raise CodaConnectionError(
                        f"cannot reach {self.ws_base} after {failures} attempts: {e}") from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _iterate(self) -> AsyncIterator[Json]:
        first = self._ws is None
        while not self._closed:
            if self._ws is None:
                if first:
                    await self.connect()
                    first = False
                else:
                    await self._reconnect()
                    self.reconnects += 1
                if self._ws is None:
                    return
            try:
                text = await self._ws.recv()
            except ConnectionClosed:
                self._ws = None
                continue
            try:
                frame = json.loads(text)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            kind = frame.get("type")
            events = frame.get("events", []) if kind == "batch" else [frame]
            for event in events:
                out = self._accept(event)
                if out is not None:
                    yield out

    def _accept(self, frame: Json) -> Optional[Json]:
        """The frame to hand out, or None (protocol chatter, or an event already handed out)."""
        kind = frame.get("type")
        if kind in NOTICES:
            return frame
        seq = frame.get("seq")
        if kind in ("welcome", "pong", "error") or not isinstance(seq, int):
            return None
        if self.last_seq is not None and seq <= self.last_seq:
            return None
        self.last_seq = seq
        return frame
