"""Coda from Python with the `coda-memory` package: drive the HTTP API while following /ws,
then resume after a disconnect.

    pip install ./clients/python          # or run from the repository: the source tree is used
    python3 examples/python/demo.py --url http://127.0.0.1:8765 [--token TOKEN]

It follows /ws, makes changes through the HTTP API (turns, a memory, a search, persist), closes
the stream, makes more changes while disconnected, resumes from the last seq it saw with
since/epoch, and checks that it received every event exactly once, in seq order: no gap, no
duplicate. It prints a summary and exits 1 on any violation (2 when the server cannot be
reached).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, Dict, List

try:
    import coda_memory  # noqa: F401  (installed with pip)
except ImportError:  # running from a checkout: use the package's source tree
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

from coda_memory import Client, CodaConnectionError, CodaError, Events

DEADLINE = 10.0


def check_exactly_once(seqs: List[int], first: int, last: int) -> List[str]:
    """Problems with `seqs` against the expected first..=last, contiguous."""
    problems = []
    seen = set()
    for previous, seq in zip([first - 1] + seqs, seqs):
        if seq in seen:
            problems.append(f"duplicate seq {seq}")
        elif seq != previous + 1:
            problems.append(f"seq {seq} after {previous}: expected {previous + 1}")
        seen.add(seq)
    missing = sorted(set(range(first, last + 1)) - seen)
    if missing:
        problems.append(f"missing seqs {missing}")
    return problems


async def until_seq(events: Events, seq: int, into: List[Dict[str, Any]]) -> None:
    """Appends what `events` yields to `into` until the event with `seq` has arrived."""
    async def read() -> None:
        if events.last_seq is not None and events.last_seq >= seq:
            return
        async for event in events:
            into.append(event)
            if events.last_seq is not None and events.last_seq >= seq:
                return
    try:
        await asyncio.wait_for(read(), DEADLINE)
    except asyncio.TimeoutError:
        raise TimeoutError(f"events up to seq {seq} did not arrive in {DEADLINE} s") from None


async def run(url: str, token: str | None) -> int:
    api = Client(url, token)
    events = Events(url, token)

    welcome = await events.connect()
    first = welcome["seq"] + 1
    print(f"connected: epoch {welcome['epoch']}, latest seq {welcome['seq']}")

    # Online: every change arrives live.
    api.add_turn("user", "Hi! My name is Alice and I live in Paris.")
    api.add_turn("assistant", "Nice to meet you, Alice.")
    tea = api.add_memory("The user likes green tea.", "preference", 0.8, {"topics": ["tea"]})
    hits = api.search("what does the user drink", limit=3)
    persisted = api.persist()
    received: List[Dict[str, Any]] = []
    await until_seq(events, api.health()["seq"], received)
    online = len(received)
    print(f"online: {online} events; search found {len(hits)}, "
          f"persist added {persisted['memories_added']}")

    # Offline: the stream is closed while the service keeps changing.
    await events.close()
    api.add_turn("user", "Remember that my sister is called Jane.")
    api.update_memory(tea["id"], importance=0.9)
    note = api.add_memory("The user has a meeting on Friday.", "fact")
    api.delete_memory(note["id"])
    api.search("sister", limit=2, filter={"source_type": {"in": ["fact", "conversation"]}})
    snapshot = api.create_snapshot()
    print(f"offline: made changes up to seq {api.health()['seq']} "
          f"(snapshot {snapshot['snapshot_id']})")

    # Resume from the last seq seen: since/epoch replays exactly what was missed, then live.
    resumed = Events(url, token, since=events.last_seq, epoch=events.epoch)
    welcome = await resumed.connect()
    if welcome["epoch"] != events.epoch:
        print("the server restarted while we were away; cannot check resume", file=sys.stderr)
        return 1
    api.add_turn("user", "Thanks, that is all.")
    last = api.health()["seq"]
    await until_seq(resumed, last, received)
    await resumed.close()

    notices = [e for e in received if e["type"] in ("replay_gap", "lagged")]
    seqs = [e["seq"] for e in received if e not in notices]
    problems = check_exactly_once(seqs, first, last)
    problems += [f"unexpected {n['type']} frame: {n}" for n in notices]
    types = sorted({e["type"] for e in received})
    if problems:
        for problem in problems:
            print(f"VIOLATION: {problem}", file=sys.stderr)
        return 1
    print(f"resumed: {len(received) - online} events after reconnecting")
    print(f"OK: {len(received)} events, seq {first}..{last}, each exactly once in order "
          f"across 1 reconnect ({', '.join(types)})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="the server's base URL")
    parser.add_argument("--token", default=None, help="a bearer token, if the server has tokens")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.url, args.token))
    except CodaError as e:  # an API error, or a refused /ws upgrade (401, 403, 422, 503)
        print(f"API error: {e}", file=sys.stderr)
        return 1
    except TimeoutError as e:  # before OSError, of which it is a subclass
        print(f"VIOLATION: {e}", file=sys.stderr)
        return 1
    except (CodaConnectionError, OSError) as e:
        print(f"cannot reach {args.url}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
