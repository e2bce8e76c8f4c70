"""The asyncio client: `Client`'s methods as coroutines, each run in a worker thread.

The HTTP transport is the standard library's (blocking) urllib, so every call goes through
`asyncio.to_thread`: the event loop never blocks, and no third-party HTTP library is needed.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional

from .client import _UNSET, Client, Json


class AsyncClient:
    """Like `Client` (same arguments, same methods), with `await` on every call."""

    def __init__(self, url: str = "http://127.0.0.1:8765", token: Optional[str] = None,
                 **options: Any) -> None:
        self.sync = Client(url, token, **options)

    def with_scope(self, **scope: Optional[str]) -> "AsyncClient":
        """A copy with the given scope ids (`user_id`, `agent_id`, `session_id`, `tenant`)."""
        other = AsyncClient.__new__(AsyncClient)
        other.sync = self.sync.with_scope(**scope)
        return other

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.sync, method), *args, **kwargs)

    async def request(self, method: str, path: str, body: Optional[Any] = None,
                      query: Optional[Any] = None) -> Any:
        """See `Client.request`."""
        return await self._run("request", method, path, body, query)

    async def health(self) -> Json:
        """See `Client.health`."""
        result: Json = await self._run("health")
        return result

    async def stats(self) -> Json:
        """See `Client.stats`."""
        result: Json = await self._run("stats")
        return result

    async def add_turn(self, role: str, content: str, name: Optional[str] = None) -> Json:
        """See `Client.add_turn`."""
        result: Json = await self._run("add_turn", role, content, name)
        return result

    async def turns(self) -> Json:
        """See `Client.turns`."""
        result: Json = await self._run("turns")
        return result

    async def clear_turns(self) -> None:
        """See `Client.clear_turns`."""
        await self._run("clear_turns")

    async def persist(self) -> Json:
        """See `Client.persist`."""
        result: Json = await self._run("persist")
        return result

    async def add_memory(self, content: str, memory_type: Optional[str] = None,
                         importance: Optional[float] = None, metadata: Optional[Json] = None,
                         *, slot: Optional[str] = None, ttl_s: Optional[int] = None,
                         expires_at: Optional[str] = None) -> Json:
        """See `Client.add_memory`."""
        result: Json = await self._run("add_memory", content, memory_type, importance, metadata,
                                       slot=slot, ttl_s=ttl_s, expires_at=expires_at)
        return result

    async def memories(self, limit: int = 50, offset: int = 0, type: Optional[str] = None,
                       include_superseded: bool = False,
                       include_expired: bool = False) -> List[Json]:
        """See `Client.memories`."""
        result: List[Json] = await self._run("memories", limit, offset, type,
                                             include_superseded, include_expired)
        return result

    async def search(self, query: str, limit: int = 5, min_similarity: Optional[float] = None,
                     filter: Optional[Json] = None, mode: Optional[str] = None, *,
                     explain: bool = False, include_superseded: bool = False,
                     include_expired: bool = False) -> List[Json]:
        """See `Client.search`."""
        result: List[Json] = await self._run(
            "search", query, limit, min_similarity, filter, mode, explain=explain,
            include_superseded=include_superseded, include_expired=include_expired)
        return result

    async def memory(self, memory_id: str) -> Json:
        """See `Client.memory`."""
        result: Json = await self._run("memory", memory_id)
        return result

    async def update_memory(self, memory_id: str, content: Optional[str] = None,
                            memory_type: Optional[str] = None,
                            importance: Optional[float] = None,
                            metadata: Optional[Json] = None, *, ttl_s: Optional[int] = None,
                            expires_at: Optional[str] = _UNSET) -> Json:
        """See `Client.update_memory`."""
        result: Json = await self._run("update_memory", memory_id, content, memory_type,
                                       importance, metadata, ttl_s=ttl_s, expires_at=expires_at)
        return result

    async def delete_memory(self, memory_id: str) -> Json:
        """See `Client.delete_memory`."""
        result: Json = await self._run("delete_memory", memory_id)
        return result

    async def history(self, memory_id: str) -> List[Json]:
        """See `Client.history`."""
        result: List[Json] = await self._run("history", memory_id)
        return result

    async def snapshots(self, q: Optional[str] = None, from_: Optional[str] = None,
                        to: Optional[str] = None) -> List[Json]:
        """See `Client.snapshots`."""
        result: List[Json] = await self._run("snapshots", q, from_, to)
        return result

    async def create_snapshot(self, save: bool = False) -> Json:
        """See `Client.create_snapshot`."""
        result: Json = await self._run("create_snapshot", save)
        return result

    async def snapshot(self, snapshot_id: str) -> Json:
        """See `Client.snapshot`."""
        result: Json = await self._run("snapshot", snapshot_id)
        return result

    async def diff(self, a: str, b: str = "current") -> Json:
        """See `Client.diff`."""
        result: Json = await self._run("diff", a, b)
        return result

    async def sessions(self, limit: int = 50, offset: int = 0) -> List[Json]:
        """See `Client.sessions`."""
        result: List[Json] = await self._run("sessions", limit, offset)
        return result

    async def users(self, limit: int = 50, offset: int = 0) -> List[Json]:
        """See `Client.users`."""
        result: List[Json] = await self._run("users", limit, offset)
        return result

    async def delete_user(self, user_id: str) -> Json:
        """See `Client.delete_user`."""
        result: Json = await self._run("delete_user", user_id)
        return result
