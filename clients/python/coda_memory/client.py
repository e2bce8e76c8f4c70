"""The synchronous client: one method per route of the HTTP API (docs/api.md), over urllib."""

from __future__ import annotations

import copy
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from .errors import CodaConnectionError, CodaError

if TYPE_CHECKING:
    from .events import SyncEvents

#: A JSON object as the server answers it.
Json = Dict[str, Any]

#: Sentinel for "leave this field out of the request" where `None` means JSON null.
_UNSET: Any = object()


def _body(**fields: Any) -> Json:
    """The fields that were given (not None), as a request body."""
    return {k: v for k, v in fields.items() if v is not None and v is not _UNSET}


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


class Client:
    """Coda's HTTP API.

    `user_id`, `agent_id` and `session_id` scope every call (sent as query parameters; absent:
    the server's defaults, user `default`). `token` is sent as `Authorization: Bearer`, and
    `tenant` (admin tokens only) as `X-Coda-Tenant`. `with_scope()` gives a copy with another
    scope. Errors raise `CodaError` (status, code, message, field); an unreachable server raises
    `CodaConnectionError`.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8765",
        token: Optional[str] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        tenant: Optional[str] = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.user_id = user_id
        self.agent_id = agent_id
        self.session_id = session_id
        self.tenant = tenant
        self.timeout = timeout

    def with_scope(
        self,
        *,
        user_id: Optional[str] = _UNSET,
        agent_id: Optional[str] = _UNSET,
        session_id: Optional[str] = _UNSET,
        tenant: Optional[str] = _UNSET,
    ) -> "Client":
        """A copy of this client with the given scope ids replaced (None clears one)."""
        other = copy.copy(self)
        for name, value in (("user_id", user_id), ("agent_id", agent_id),
                            ("session_id", session_id), ("tenant", tenant)):
            if value is not _UNSET:
                setattr(other, name, value)
        return other

    # The transport.

    def scope(self, session: bool = True, agent: bool = True) -> Dict[str, str]:
        """The scope as query parameters (without `session_id`/`agent_id` when told so)."""
        pairs = {"user_id": self.user_id, "agent_id": self.agent_id if agent else None}
        if session:
            pairs["session_id"] = self.session_id
        return {k: v for k, v in pairs.items() if v is not None}

    def headers(self) -> Dict[str, str]:
        """The headers every request carries."""
        headers = {"accept": "application/json", "user-agent": "coda-memory-python/0.1.0"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if self.tenant:
            headers["x-coda-tenant"] = self.tenant
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Optional[Any] = None,
        query: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        """Sends one request to `path` (e.g. `/api/v1/stats`); the parsed JSON, None for 204."""
        url = self.url + path
        pairs = {k: _param(v) for k, v in (query or {}).items() if v is not None}
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        headers = self.headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as e:
            raise CodaError.from_body(e.code, e.read()) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
            raise CodaConnectionError(f"cannot reach {self.url}: {e}") from e
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise CodaError(0, "bad_response", "the server's answer is not JSON") from None

    def api(self, method: str, path: str, body: Optional[Any] = None,
            session: bool = True, **query: Any) -> Any:
        """`request` under `/api/v1` with the client's scope added to `query`.

        Snapshots take a user and a session but no agent: their routes leave `agent_id` out.
        """
        scope = self.scope(session, agent=not path.startswith("/snapshots"))
        return self.request(method, "/api/v1" + path, body, {**scope, **query})

    # Events.

    def events(self, types: Optional[List[str]] = None, **options: Any) -> "SyncEvents":
        """A blocking iterator over `/ws` with this client's URL, token, tenant and scope:
        `for event in coda.events(["memory_store"], recv_timeout=30): ...`.

        `options` are `SyncEvents`' (`replay`, `since`, `epoch`, `backoff`, `max_backoff`,
        `max_retries`, `recv_timeout`, ...); it resumes after a disconnect as `Events` does.
        """
        from .events import SyncEvents

        scope = {"user_id": self.user_id, "agent_id": self.agent_id,
                 "session_id": self.session_id, "tenant": self.tenant}
        return SyncEvents(self.url, self.token, types=types, **{**scope, **options})

    # Service.

    def health(self) -> Json:
        """`GET /healthz`: status, uptime, and the event stream's `epoch` and latest `seq`."""
        result: Json = self.request("GET", "/healthz")
        return result

    def stats(self) -> Json:
        """`GET /stats`: the scope's `memory_stats`."""
        result: Json = self.api("GET", "/stats", session=self.session_id is not None)
        return result

    # Conversation: the user's `default` session, or the client's `session_id`.

    def _turns_path(self, suffix: str) -> str:
        if self.session_id is None:
            return suffix
        return f"/sessions/{_quote(self.session_id)}{suffix}"

    def add_turn(self, role: str, content: str, name: Optional[str] = None) -> Json:
        """Adds a turn (`role`: system, user, assistant or tool) → the stored turn."""
        if self.session_id is None:
            result: Json = self.api("POST", "/turns", _body(role=role, content=content, name=name))
            return result
        body = _body(role=role, content=content, name=name,
                     user_id=self.user_id, agent_id=self.agent_id)
        result = self.request("POST", "/api/v1" + self._turns_path("/turns"), body)
        return result

    def turns(self) -> Json:
        """The short-term window: `{turns, turn_count, session_start}`."""
        result: Json = self.api("GET", self._turns_path("/turns"), session=False)
        return result

    def clear_turns(self) -> None:
        """Clears the short-term window."""
        self.api("DELETE", self._turns_path("/turns"), session=False)

    def persist(self) -> Json:
        """Distils the window's new turns into memories.

        → `{turn_count, memories_added, memories}`.
        """
        result: Json = self.api("POST", self._turns_path("/persist"), session=False)
        return result

    # Long-term memory.

    def add_memory(
        self,
        content: str,
        memory_type: Optional[str] = None,
        importance: Optional[float] = None,
        metadata: Optional[Json] = None,
        *,
        slot: Optional[str] = None,
        ttl_s: Optional[int] = None,
        expires_at: Optional[str] = None,
    ) -> Json:
        """Adds a memory → the memory (with `superseded` ids when it replaced one in `slot`)."""
        body = _body(content=content, memory_type=memory_type, importance=importance,
                     metadata=metadata, slot=slot, ttl_s=ttl_s, expires_at=expires_at)
        result: Json = self.api("POST", "/memories", body)
        return result

    def memories(
        self,
        limit: int = 50,
        offset: int = 0,
        type: Optional[str] = None,
        include_superseded: bool = False,
        include_expired: bool = False,
    ) -> List[Json]:
        """A page of the scope's memories, newest first."""
        page = self.api("GET", "/memories", limit=limit, offset=offset, type=type,
                        include_superseded=include_superseded, include_expired=include_expired)
        result: List[Json] = page["memories"]
        return result

    def search(
        self,
        query: str,
        limit: int = 5,
        min_similarity: Optional[float] = None,
        filter: Optional[Json] = None,
        mode: Optional[str] = None,
        *,
        explain: bool = False,
        include_superseded: bool = False,
        include_expired: bool = False,
    ) -> List[Json]:
        """Searches the scope's memories (`mode`: vector, lexical or hybrid) → ranked results."""
        body = _body(query=query, limit=limit, min_similarity=min_similarity, filter=filter,
                     mode=mode, explain=explain or None,
                     include_superseded=include_superseded or None,
                     include_expired=include_expired or None)
        result: List[Json] = self.api("POST", "/memories/search", body)["results"]
        return result

    def memory(self, memory_id: str) -> Json:
        """One memory."""
        result: Json = self.api("GET", f"/memories/{_quote(memory_id)}")
        return result

    def update_memory(
        self,
        memory_id: str,
        content: Optional[str] = None,
        memory_type: Optional[str] = None,
        importance: Optional[float] = None,
        metadata: Optional[Json] = None,
        *,
        ttl_s: Optional[int] = None,
        expires_at: Optional[str] = _UNSET,
    ) -> Json:
        """Patches a memory (metadata keys merge; `expires_at=None` removes the expiry)."""
        body = _body(content=content, memory_type=memory_type, importance=importance,
                     metadata=metadata, ttl_s=ttl_s)
        if expires_at is not _UNSET:
            body["expires_at"] = expires_at
        result: Json = self.api("PATCH", f"/memories/{_quote(memory_id)}", body)
        return result

    def delete_memory(self, memory_id: str) -> Json:
        """Deletes a memory → the deleted memory."""
        result: Json = self.api("DELETE", f"/memories/{_quote(memory_id)}")
        return result

    def history(self, memory_id: str) -> List[Json]:
        """Every version of a memory, oldest first (also after a delete)."""
        result: List[Json] = self.api("GET", f"/memories/{_quote(memory_id)}/history")["history"]
        return result

    # Snapshots.

    def snapshots(self, q: Optional[str] = None, from_: Optional[str] = None,
                  to: Optional[str] = None) -> List[Json]:
        """Snapshot summaries, newest first, optionally matching `q` or within `from_`..`to`."""
        page = self.api("GET", "/snapshots", session=True, q=q, to=to, **{"from": from_})
        result: List[Json] = page["snapshots"]
        return result

    def create_snapshot(self, save: bool = False) -> Json:
        """Creates a snapshot (and saves it to the store with `save`)."""
        result: Json = self.api("POST", "/snapshots", {"save": save})
        return result

    def snapshot(self, snapshot_id: str) -> Json:
        """The whole snapshot."""
        result: Json = self.api("GET", f"/snapshots/{_quote(snapshot_id)}")
        return result

    def save_snapshot(self, snapshot_id: str) -> Json:
        """Writes a snapshot to the store → `{location}`."""
        result: Json = self.api("POST", f"/snapshots/{_quote(snapshot_id)}/save")
        return result

    def load_snapshot(self, location: str) -> Json:
        """Reads a saved snapshot (location or id) into memory → `{snapshot_id}`."""
        result: Json = self.api("POST", "/snapshots/load", {"location": location})
        return result

    def apply_snapshot(self, snapshot_id: str) -> Json:
        """Restores memory to a snapshot → `{snapshot_id, applied}`."""
        result: Json = self.api("POST", f"/snapshots/{_quote(snapshot_id)}/apply")
        return result

    def diff(self, a: str, b: str = "current") -> Json:
        """What changed from snapshot `a` to `b` (either may be `current`)."""
        result: Json = self.api("GET", f"/snapshots/{_quote(a)}/diff/{_quote(b)}")
        return result

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Deletes a snapshot from memory and the store."""
        self.api("DELETE", f"/snapshots/{_quote(snapshot_id)}")

    def prune_snapshots(self, keep: Optional[int] = None,
                        older_than: Optional[str] = None) -> List[str]:
        """Removes saved snapshots outside the newest `keep` and older than `older_than`."""
        result: List[str] = self.api("POST", "/snapshots/prune",
                                     _body(keep=keep, older_than=older_than))["removed"]
        return result

    # Sessions and users.

    def sessions(self, limit: int = 50, offset: int = 0) -> List[Json]:
        """The scope user's sessions, most recently active first."""
        page = self.api("GET", "/sessions", session=False, limit=limit, offset=offset)
        result: List[Json] = page["sessions"]
        return result

    def session(self, session_id: str) -> Json:
        """One session with its window of turns."""
        result: Json = self.api("GET", f"/sessions/{_quote(session_id)}", session=False)
        return result

    def delete_session(self, session_id: str) -> None:
        """Deletes a session and its turns (its memories stay)."""
        self.api("DELETE", f"/sessions/{_quote(session_id)}", session=False)

    def users(self, limit: int = 50, offset: int = 0) -> List[Json]:
        """Users with memories or sessions."""
        page = self.request("GET", "/api/v1/users", None, {"limit": limit, "offset": offset})
        result: List[Json] = page["users"]
        return result

    def user_stats(self, user_id: str) -> Json:
        """One user's `memory_stats`."""
        result: Json = self.request("GET", f"/api/v1/users/{_quote(user_id)}/stats")
        return result

    def delete_user(self, user_id: str) -> Json:
        """Erases a user → `{memories_deleted, sessions_deleted, snapshots_deleted}`."""
        result: Json = self.request("DELETE", f"/api/v1/users/{_quote(user_id)}")
        return result


def _param(value: Any) -> str:
    """A query parameter's text: booleans as `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
