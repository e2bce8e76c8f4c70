"""coda_memory against a real `coda serve` (started by tests/python_package.rs).

    CODA_URL=http://127.0.0.1:PORT CODA_TOKEN=TOKEN python3 -m unittest discover -s tests -v

The server must have the token in `server.tokens` and the `websocket` sink.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import unittest
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Optional

from coda_memory import AsyncClient, Client, CodaConnectionError, CodaError, Events, SyncEvents

URL = os.environ.get("CODA_URL", "http://127.0.0.1:8765")
TOKEN = os.environ.get("CODA_TOKEN")
#: A tenant the server has configured besides `default`; TOKEN must be an admin token.
TENANT = os.environ.get("CODA_TENANT")
DEADLINE = 10.0


def unique(prefix: str) -> str:
    """A scope id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class SyncClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.coda = Client(URL, TOKEN, user_id=unique("alice"), agent_id="tutor")

    def test_add_search_patch_history_delete_in_a_scope(self) -> None:
        tea = self.coda.add_memory("The user likes green tea.", "preference", 0.8,
                                   {"topics": ["tea"]}, slot="drink")
        self.assertEqual(tea["user_id"], self.coda.user_id)
        self.assertEqual(tea["agent_id"], "tutor")
        # Another user sees nothing of it.
        bob = self.coda.with_scope(user_id=unique("bob"), agent_id=None)
        self.assertEqual(bob.search("green tea"), [])
        self.assertEqual(bob.memories(), [])

        hits = self.coda.search("green tea", limit=3, mode="lexical", explain=True,
                                filter={"importance": {"gte": 0.5}})
        self.assertEqual([h["id"] for h in hits], [tea["id"]])
        self.assertIn("explain", hits[0])

        patched = self.coda.update_memory(tea["id"], importance=0.9, metadata={"mood": "calm"})
        self.assertEqual(patched["metadata"]["importance"], 0.9)
        self.assertEqual(patched["metadata"]["mood"], "calm")
        self.assertEqual(self.coda.memory(tea["id"])["metadata"]["importance"], 0.9)

        # A new text in the same slot supersedes the old one.
        coffee = self.coda.add_memory("The user likes black coffee.", slot="drink")
        self.assertEqual(coffee.get("superseded"), [tea["id"]])
        self.assertEqual([m["id"] for m in self.coda.memories()], [coffee["id"]])
        everything = self.coda.memories(include_superseded=True)
        self.assertEqual({m["id"] for m in everything}, {tea["id"], coffee["id"]})

        deleted = self.coda.delete_memory(coffee["id"])
        self.assertEqual(deleted["id"], coffee["id"])
        with self.assertRaises(CodaError) as caught:
            self.coda.memory(coffee["id"])
        self.assertEqual((caught.exception.status, caught.exception.code), (404, "not_found"))
        actions = [v["action"] for v in self.coda.history(tea["id"])]
        self.assertEqual(actions, ["add", "update", "supersede"])
        self.assertEqual([v["action"] for v in self.coda.history(coffee["id"])],
                         ["add", "delete"])

    def test_ttl_and_expiry(self) -> None:
        memory = self.coda.add_memory("Short-lived.", ttl_s=3600)
        self.assertIn("expires_at", memory)
        cleared = self.coda.update_memory(memory["id"], expires_at=None)
        self.assertNotIn("expires_at", cleared)

    def test_invalid_field_raises_with_code_and_field(self) -> None:
        with self.assertRaises(CodaError) as caught:
            self.coda.add_memory("x", importance=2)
        e = caught.exception
        self.assertEqual((e.status, e.code, e.field), (422, "invalid_field", "importance"))
        self.assertIn("importance", e.message)
        with self.assertRaises(CodaError) as caught:
            self.coda.search("x", filter={"importance": {"bogus": 1}})
        self.assertEqual(caught.exception.field, "filter.importance.bogus")
        with self.assertRaises(CodaError) as caught:
            self.coda.with_scope(user_id="has space").memories()
        self.assertEqual(caught.exception.field, "user_id")

    def test_missing_token_is_401(self) -> None:
        if not TOKEN:
            self.skipTest("the server has no token")
        with self.assertRaises(CodaError) as caught:
            Client(URL).stats()
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))
        with self.assertRaises(CodaError) as caught:
            Client(URL, "wrong-token").memories()
        self.assertEqual(caught.exception.status, 401)

    def test_sessions_turns_persist_users(self) -> None:
        chat = self.coda.with_scope(session_id=unique("chat"))
        chat.add_turn("user", "Hi! My name is Alice and I live in Paris.")
        chat.add_turn("assistant", "Nice to meet you, Alice.")
        self.assertEqual(chat.turns()["turn_count"], 2)
        persisted = chat.persist()
        self.assertGreaterEqual(persisted["memories_added"], 1)
        self.assertTrue(all(m["session_id"] == chat.session_id for m in persisted["memories"]))
        self.assertEqual([s["session_id"] for s in self.coda.sessions()], [chat.session_id])
        self.assertIn(self.coda.user_id, [u["user_id"] for u in self.coda.users(limit=1000)])
        snapshot = self.coda.create_snapshot()
        self.assertIn(snapshot["snapshot_id"],
                      [s["snapshot_id"] for s in self.coda.snapshots()])
        self.assertGreaterEqual(self.coda.stats()["long_term"]["total_memories"], 1)
        # Without a session id: the user's own `default` session.
        self.coda.add_turn("user", "I prefer short answers.")
        self.assertEqual(self.coda.turns()["turn_count"], 1)
        self.assertEqual(self.coda.with_scope(user_id=unique("x")).turns()["turn_count"], 0)
        self.coda.clear_turns()
        self.assertEqual(self.coda.turns()["turns"], [])
        erased = self.coda.delete_user(self.coda.user_id or "")
        self.assertEqual(erased["sessions_deleted"], 2)  # chat and default


class TenantTest(unittest.IsolatedAsyncioTestCase):
    async def test_admin_token_picks_a_tenant_with_the_header(self) -> None:
        if not TENANT:
            self.skipTest("CODA_TENANT is not set")
        user = unique("frank")
        tenant = Client(URL, TOKEN, user_id=user, tenant=TENANT)
        events = Events(URL, TOKEN, user_id=user, tenant=TENANT)
        await events.connect()
        memory = tenant.add_memory("Frank works at Acme.")
        self.assertEqual(memory.get("tenant"), TENANT)
        self.assertEqual([m["id"] for m in tenant.memories()], [memory["id"]])
        # Tenant `default` holds nothing of it.
        self.assertEqual(tenant.with_scope(tenant=None).memories(), [])
        got: List[Dict[str, Any]] = []
        await asyncio.wait_for(collect(events, (events.last_seq or 0) + 1, got), DEADLINE)
        await events.close()
        self.assertEqual((got[0]["memory_id"], got[0]["tenant"]), (memory["id"], TENANT))
        with self.assertRaises(CodaError) as caught:
            tenant.with_scope(tenant="nobody").memories()
        self.assertEqual(caught.exception.status, 404)
        with self.assertRaises(CodaError) as caught:
            tenant.with_scope(tenant="bad tenant").memories()
        self.assertEqual(caught.exception.field, "X-Coda-Tenant")


class AsyncClientTest(unittest.IsolatedAsyncioTestCase):
    async def test_basics(self) -> None:
        coda = AsyncClient(URL, TOKEN, user_id=unique("carol"))
        memory = await coda.add_memory("Carol plays the cello.", "fact")
        results = await asyncio.gather(coda.search("cello"), coda.memory(memory["id"]),
                                       coda.health())
        self.assertEqual(results[0][0]["id"], memory["id"])
        self.assertEqual(results[1]["content"], "Carol plays the cello.")
        self.assertEqual(results[2]["status"], "ok")
        with self.assertRaises(CodaError) as caught:
            await coda.update_memory(memory["id"], importance=-1)
        self.assertEqual(caught.exception.field, "importance")
        await coda.delete_memory(memory["id"])
        self.assertEqual(await coda.memories(), [])


async def collect(events: Events, until: int, into: List[Dict[str, Any]]) -> None:
    """Appends events to `into` until one with seq >= `until` arrives."""
    async for event in events:
        into.append(event)
        if isinstance(event.get("seq"), int) and event["seq"] >= until:
            return


class Proxy:
    """A TCP proxy to the server that can cut every connection and refuse new ones, as a
    restarting server or a broken network would: the client sees the peer close its socket."""

    def __init__(self, target: str) -> None:
        parsed = urllib.parse.urlsplit(target)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.server: Optional[asyncio.base_events.Server] = None
        self.listen_port = 0
        self.writers: List[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port,
                                                 reuse_address=True)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.listen_port}"

    async def stop(self) -> None:
        """Stops listening and closes every proxied connection."""
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        if server is not None:
            # After the connections: from 3.12 on, this waits for them to close too.
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Polls `condition` until it holds, failing after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class EventsTest(unittest.IsolatedAsyncioTestCase):
    async def test_reconnects_with_backoff_when_the_server_side_goes_away(self) -> None:
        user = unique("gina")
        coda = AsyncClient(URL, TOKEN, user_id=user)
        proxy = Proxy(URL)
        events = Events(await proxy.start(), TOKEN, user_id=user, backoff=0.05,
                        max_backoff=0.2, max_retries=None)
        await events.connect()
        received: List[Dict[str, Any]] = []
        first = (await coda.add_memory("Gina before the outage."))["id"]
        await asyncio.wait_for(collect(events, (await coda.health())["seq"], received), DEADLINE)

        # The peer closes the socket and refuses connections for a while.
        await proxy.stop()
        during = [(await coda.add_memory(f"Gina during the outage {i}."))["id"] for i in range(3)]
        last = (await coda.health())["seq"]
        reader = asyncio.create_task(collect(events, last, received))
        await wait_for(lambda: events.failed_attempts >= 2, "two refused reconnects")
        await proxy.start()
        await asyncio.wait_for(reader, DEADLINE)
        await events.close()
        await proxy.stop()

        self.assertEqual([e["memory_id"] for e in received], [first] + during)
        self.assertEqual(events.reconnects, 1)
        seqs = [e["seq"] for e in received]
        self.assertEqual(seqs, sorted(set(seqs)))

    async def test_resumes_after_a_dropped_socket_without_duplicates(self) -> None:
        user = unique("dave")
        coda = AsyncClient(URL, TOKEN, user_id=user)
        events = Events(URL, TOKEN, user_id=user)
        welcome = await events.connect()
        received: List[Dict[str, Any]] = []

        ids = [(await coda.add_memory(f"Dave fact number {i}."))["id"] for i in range(3)]
        await asyncio.wait_for(collect(events, (await coda.health())["seq"], received), DEADLINE)
        self.assertEqual([e["memory_id"] for e in received], ids)

        # The socket breaks; changes happen while it is down; the iterator resumes.
        await events.drop()
        more = [(await coda.add_memory(f"Dave later fact {i}."))["id"] for i in range(3)]
        await coda.update_memory(more[0], importance=0.7)
        await coda.delete_memory(more[1])
        last = (await coda.health())["seq"]
        await asyncio.wait_for(collect(events, last, received), DEADLINE)
        self.assertEqual(events.reconnects, 1)
        self.assertEqual(events.epoch, welcome["epoch"])

        seqs = [e["seq"] for e in received]
        self.assertEqual(len(seqs), len(set(seqs)), f"duplicates in {seqs}")
        self.assertEqual(seqs, sorted(seqs))
        kinds = [e["type"] for e in received]
        self.assertEqual(kinds, ["memory_store"] * 6 + ["memory_update", "memory_delete"])
        self.assertEqual([e["memory_id"] for e in received[3:6]], more)
        self.assertFalse([e for e in received if e["type"] in ("replay_gap", "lagged")])
        await events.close()

    async def test_reports_replay_gap_for_an_unknown_epoch(self) -> None:
        coda = Client(URL, TOKEN, user_id=unique("erin"))
        coda.add_turn("user", "hello")
        events = Events(URL, TOKEN, since=0, epoch=str(uuid.UUID(int=0)),
                        types=["conversation_turn"], user_id=coda.user_id)
        first: List[Dict[str, Any]] = []
        await asyncio.wait_for(collect(events, 1, first), DEADLINE)
        self.assertEqual(first[0]["type"], "replay_gap")
        self.assertEqual(first[0]["from"], 1)
        self.assertEqual(first[1]["content"], "hello")
        await events.close()

    async def test_refused_upgrade_raises(self) -> None:
        if not TOKEN:
            self.skipTest("the server has no token")
        with self.assertRaises(CodaError) as caught:
            await Events(URL).connect()
        self.assertEqual(caught.exception.status, 401)
        with self.assertRaises(CodaError) as caught:
            await Events(URL, TOKEN, user_id="has space").connect()
        self.assertEqual((caught.exception.status, caught.exception.field), (422, "user_id"))


def collect_sync(events: SyncEvents, until: int, into: List[Dict[str, Any]]) -> None:
    """Appends events to `into` until one with seq >= `until` arrives (each wait for a frame
    bounded by the iterator's `recv_timeout`)."""
    for event in events:
        into.append(event)
        if isinstance(event.get("seq"), int) and event["seq"] >= until:
            return


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SyncEventsTest(unittest.TestCase):
    """`Client.events()`: the blocking iterator, with the async one's resumption rules."""

    def test_resumes_after_a_dropped_socket_without_duplicates(self) -> None:
        coda = Client(URL, TOKEN, user_id=unique("sam"))
        with coda.events(recv_timeout=DEADLINE) as events:
            welcome = events.connect()
            received: List[Dict[str, Any]] = []
            ids = [coda.add_memory(f"Sam fact number {i}.")["id"] for i in range(3)]
            collect_sync(events, coda.health()["seq"], received)
            self.assertEqual([e["memory_id"] for e in received], ids)

            events.drop()
            more = [coda.add_memory(f"Sam later fact {i}.")["id"] for i in range(2)]
            coda.delete_memory(more[0])
            collect_sync(events, coda.health()["seq"], received)
            self.assertEqual(events.reconnects, 1)
            self.assertEqual(events.epoch, welcome["epoch"])
        seqs = [e["seq"] for e in received]
        self.assertEqual(seqs, sorted(set(seqs)), f"duplicates or disorder in {seqs}")
        self.assertEqual([e["type"] for e in received],
                         ["memory_store"] * 5 + ["memory_delete"])
        self.assertEqual([e["memory_id"] for e in received[3:5]], more)

    def test_reports_replay_gap_for_an_unknown_epoch_and_filters_by_type(self) -> None:
        coda = Client(URL, TOKEN, user_id=unique("uma"))
        coda.add_turn("user", "hello")
        coda.add_memory("Uma is not a turn.")
        events = coda.events(["conversation_turn"], since=0, epoch=str(uuid.UUID(int=0)),
                             recv_timeout=DEADLINE)
        first: List[Dict[str, Any]] = []
        collect_sync(events, 1, first)
        events.close()
        self.assertEqual(first[0]["type"], "replay_gap")
        self.assertEqual(first[1]["content"], "hello")
        self.assertEqual({e["type"] for e in first[1:]}, {"conversation_turn"})

    def test_gives_up_after_max_retries_with_backoff(self) -> None:
        events = Client(URL, TOKEN, user_id=unique("vic")).events(
            backoff=0.01, max_backoff=0.02, max_retries=2, recv_timeout=DEADLINE)
        events.connect()
        # The server goes away for good: every reconnect is refused.
        events.ws_base = f"ws://127.0.0.1:{free_port()}/ws"
        events.drop()
        started = time.monotonic()
        with self.assertRaises(CodaConnectionError):
            next(iter(events))
        self.assertEqual(events.failed_attempts, 3)
        self.assertLess(time.monotonic() - started, DEADLINE)

    def test_refused_upgrade_raises(self) -> None:
        if not TOKEN:
            self.skipTest("the server has no token")
        with self.assertRaises(CodaError) as caught:
            Client(URL).events().connect()
        self.assertEqual(caught.exception.status, 401)
        with self.assertRaises(CodaError) as caught:
            Client(URL, TOKEN, user_id="has space").events().connect()
        self.assertEqual((caught.exception.status, caught.exception.field), (422, "user_id"))

    def test_takes_the_clients_scope_and_tenant(self) -> None:
        client = Client("http://h:1", "t", user_id="u", agent_id="a", tenant="acme")
        url = client.events(["memory_store"]).url()
        for part in ("user_id=u", "agent_id=a", "tenant=acme", "types=memory_store", "replay=0"):
            self.assertIn(part, url)
        self.assertNotIn("session_id", url)


class EventBookkeepingTest(unittest.TestCase):
    """`Events`' exactly-once rule without a server: what it hands out from given frames."""

    def test_repeats_and_protocol_frames_are_not_handed_out(self) -> None:
        events = Events(URL, since=4, epoch=str(uuid.uuid4()))
        frames: List[Dict[str, Any]] = [
            {"type": "welcome", "epoch": events.epoch, "seq": 9},
            {"type": "memory_store", "seq": 4},
            {"type": "replay_gap", "from": 5, "to": 6},
            {"type": "memory_store", "seq": 7},
            {"type": "memory_store", "seq": 7},
            {"type": "pong"},
            {"type": "memory_delete", "seq": 8},
            {"type": "memory_store", "seq": 5},
        ]
        out = [f for f in map(events._accept, frames) if f is not None]
        self.assertEqual([(f["type"], f.get("seq")) for f in out],
                         [("replay_gap", None), ("memory_store", 7), ("memory_delete", 8)])
        self.assertEqual(events.last_seq, 8)
        self.assertIn("since=8", events.url())
        self.assertIn(f"epoch={events.epoch}", events.url())

    def test_first_connect_asks_for_no_replay(self) -> None:
        url = Events("https://example.test/base/", types=["memory_store"], user_id="u").url()
        self.assertTrue(url.startswith("wss://example.test/base/ws?"), url)
        self.assertIn("replay=0", url)
        self.assertIn("types=memory_store", url)
        self.assertNotIn("since", url)


if __name__ == "__main__":
    unittest.main()
