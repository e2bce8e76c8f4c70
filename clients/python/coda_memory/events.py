"""`Events` (async) and `SyncEvents` (blocking): iterators over `/ws` that resume across
disconnects (docs/protocol.md). Both share `_EventStream`'s bookkeeping, so they resume, filter
and de-duplicate the same way; only the socket calls differ.

It remembers the `epoch` of the welcome and the `seq` of the last event it handed out. When the
socket drops (the network, a server close, a restart) it reconnects with growing back-off and
`?since=SEQ&epoch=EPOCH`, so the server replays exactly what was missed; an event it already
handed out is never handed out twice. Frames that mean events are missing (`replay_gap`,
`lagged`) are yielded in order, as dicts with that `type`: reload state through the HTTP API.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import time
import urllib.parse
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from .client import Json
from .errors import CodaConnectionError, CodaError

#: Frames that report missing events; yielded to the caller.
NOTICES = ("replay_gap", "lagged")

#: websockets 17 warns when the sync `connect()` is not a context manager unless asked for a
#: plain connection with `legacy=True`; older releases have no such argument.
_PLAIN_CONNECTION: Dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(sync_connect).parameters else {})


class _EventStream:
    """What both iterators share: the filters, the position (`epoch`, `last_seq`) and what a
    welcome or a frame does to it, the upgrade URL, and the back-off between reconnects.

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

    def _headers(self) -> Optional[Dict[str, str]]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else None

    def _welcomed(self, text: Any) -> Json:
        """Takes the first frame of a connection, which must be the welcome, into the position;
        raises `CodaError` for anything else."""
        welcome = json.loads(text)
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            raise CodaError(0, "bad_frame", f"expected a welcome frame, got {welcome!r}")
        if self.epoch is not None and welcome.get("epoch") != self.epoch:
            # The server restarted: seqs start again at 1 (after a replay_gap from 1).
            self.last_seq = 0
        self.epoch = str(welcome.get("epoch"))
        if self.last_seq is None:
            self.last_seq = int(welcome.get("seq", 0))
        self.welcome = welcome
        return welcome

    def _delays(self) -> Iterator[float]:
        """The waits between reconnect attempts: `backoff`, doubling up to `max_backoff`."""
        delay = self.backoff
        while True:
            yield delay
            delay = min(delay * 2, self.max_backoff)

    def _failed(self, failures: int, error: BaseException) -> None:
        """Counts a failed reconnect; raises once there were more than `max_retries` in a row."""
        self.failed_attempts += 1
        if self.max_retries is not None and failures > self.max_retries:
            raise CodaConnectionError(
                f"cannot reach {self.ws_base} after {failures} attempts: {error}") from error

    def _events(self, text: Any) -> List[Json]:
        """What a frame's text hands out: its events (a batch's, in order) not yet handed out,
        and notices; nothing for protocol chatter or text that is not a JSON object."""
        try:
            frame = json.loads(text)
        except ValueError:
            return []
        if not isinstance(frame, dict):
            return []
        events = frame.get("events", []) if frame.get("type") == "batch" else [frame]
        return [out for out in map(self._accept, events) if out is not None]

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


class Events(_EventStream):
    """Follows `/ws` in asyncio: `async for event in Events(url, token): ...`.

    The arguments are `_EventStream`'s: filters, a starting position, back-off and retries.
    """

    def __init__(self, url: str = "http://127.0.0.1:8765", token: Optional[str] = None,
                 **options: Any) -> None:
        super().__init__(url, token, **options)
        self._ws: Optional[ClientConnection] = None

    async def connect(self) -> Json:
        """Opens the socket (resuming if possible) and reads the welcome; returns it."""
        try:
            ws = await connect(self.url(), additional_headers=self._headers(),
                               open_timeout=self.open_timeout)
        except InvalidStatus as e:
            body = bytes(e.response.body or b"")
            raise CodaError.from_body(e.response.status_code, body) from None
        except InvalidURI as e:
            raise CodaConnectionError(str(e)) from None
        try:
            welcome = self._welcomed(await asyncio.wait_for(ws.recv(), self.open_timeout))
        except BaseException:
            await ws.close()
            raise
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
        failures = 0
        for delay in self._delays():
            if self._closed:
                return
            try:
                await self.connect()
                return
            except CodaError:
                raise
            except (OSError, asyncio.TimeoutError, ConnectionClosed) as e:
                failures += 1
                self._failed(failures, e)
            await asyncio.sleep(delay)

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
            for event in self._events(text):
                yield event


class SyncEvents(_EventStream):
    """Follows `/ws` without asyncio: `for event in SyncEvents(url, token): ...` (or
    `Client.events()`), with `Events`' arguments, resumption and exactly-once rule.

    `recv_timeout` (seconds, None: wait forever) bounds the wait for the next frame: past it
    the iteration raises `TimeoutError`, and the position is kept, so iterating again goes on.
    """

    def __init__(self, url: str = "http://127.0.0.1:8765", token: Optional[str] = None, *,
                 recv_timeout: Optional[float] = None, **options: Any) -> None:
        super().__init__(url, token, **options)
        self.recv_timeout = recv_timeout
        self._ws: Optional[SyncConnection] = None
        self._connected_once = False

    def connect(self) -> Json:
        """Opens the socket (resuming if possible) and reads the welcome; returns it."""
        try:
            ws = sync_connect(self.url(), additional_headers=self._headers(),
                              open_timeout=self.open_timeout, **_PLAIN_CONNECTION)
        except InvalidStatus as e:
            body = bytes(e.response.body or b"")
            raise CodaError.from_body(e.response.status_code, body) from None
        except InvalidURI as e:
            raise CodaConnectionError(str(e)) from None
        try:
            welcome = self._welcomed(ws.recv(timeout=self.open_timeout))
        except BaseException:
            ws.close()
            raise
        self._ws = ws
        self._connected_once = True
        return welcome

    def close(self) -> None:
        """Closes the socket and ends the iteration."""
        self._closed = True
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def drop(self) -> None:
        """Breaks the socket without a close handshake, as a broken network would (for tests):
        the iterator reconnects and resumes."""
        if self._ws is not None:
            self._ws.socket.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "SyncEvents":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reconnect(self) -> None:
        failures = 0
        for delay in self._delays():
            if self._closed:
                return
            try:
                self.connect()
                return
            except CodaError:
                raise
            except (OSError, TimeoutError, ConnectionClosed) as e:
                failures += 1
                self._failed(failures, e)
            time.sleep(delay)

    def __iter__(self) -> Iterator[Json]:
        while not self._closed:
            if self._ws is None:
                if not self._connected_once:
                    self.connect()
                else:
                    self._reconnect()
                    self.reconnects += 1
                if self._ws is None:
                    return
            try:
                text = self._ws.recv(timeout=self.recv_timeout)
            except ConnectionClosed:
                self._ws = None
                continue
            yield from self._events(text)
