"""Coda from Python: drive the HTTP API while following /ws, then resume after a disconnect.

    python3 examples/python/demo.py --url http://127.0.0.1:8765 [--token TOKEN]

It connects to /ws, makes changes through the HTTP API (turns, a memory, a search, persist),
drops the socket, makes more changes while disconnected, reconnects with since/epoch, and checks
that it received every event exactly once, in seq order: no gap, no duplicate. It prints a
summary and exits 1 on any violation (2 when the server cannot be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.error

from websockets.exceptions import InvalidStatus

from coda_client import CodaApi, CodaError, EventStream


def check_exactly_once(seqs: list[int], first: int, last: int) -> list[str]:
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


async def run(url: str, token: str | None) -> int:
    api = CodaApi(url, token)
    stream = EventStream(url, token)

    welcome = await stream.connect()
    first = welcome["seq"] + 1
    print(f"connected: epoch {welcome['epoch']}, latest seq {welcome['seq']}")

    # Online: every change arrives live.
    api.add_turn("user", "Hi! My name is Alice and I live in Paris.")
    api.add_turn("assistant", "Nice to meet you, Alice.")
    tea = api.add_memory("The user likes green tea.", "preference", 0.8, {"topics": ["tea"]})
    hits = api.search("what does the user drink", limit=3)
    persisted = api.persist()
    received = await stream.until_seq(api.health()["seq"])
    online = len(received)
    print(f"online: {online} events; search found {len(hits)}, "
          f"persist added {persisted['memories_added']}")

    # Offline: the socket is gone while the service keeps changing.
    await stream.close()
    api.add_turn("user", "Remember that my sister is called Jane.")
    api.update_memory(tea["id"], importance=0.9)
    note = api.add_memory("The user has a meeting on Friday.", "fact")
    api.delete_memory(note["id"])
    api.search("sister", limit=2, filter={"source_type": {"in": ["fact", "conversation"]}})
    snapshot = api.create_snapshot()
    print(f"offline: made changes up to seq {api.health()['seq']} "
          f"(snapshot {snapshot['snapshot_id']})")

    # Resume: since/epoch replays exactly what was missed, then the stream goes on live.
    welcome = await stream.connect()
    if welcome["epoch"] != stream.epoch:
        print("the server restarted while we were away; cannot check resume", file=sys.stderr)
        return 1
    api.add_turn("user", "Thanks, that is all.")
    last = api.health()["seq"]
    received += await stream.until_seq(last)
    await stream.close()

    seqs = [event["seq"] for event in received]
    problems = check_exactly_once(seqs, first, last)
    problems += [f"unexpected {n['type']} frame: {n}" for n in stream.notices]
    types = sorted({event["type"] for event in received})
    if problems:
        for problem in problems:
            print(f"VIOLATION: {problem}", file=sys.stderr)
        return 1
    print(f"resumed: {len(received) - online} events after reconnecting")
    print(f"OK: {len(received)} events, seq {first}..{last}, each exactly once in order "
          f"across 1 reconnect ({', '.join(types)})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="the server's base URL")
    parser.add_argument("--token", default=None, help="a bearer token, if the server has tokens")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.url, args.token))
    except CodaError as e:
        print(f"API error: {e}", file=sys.stderr)
        return 1
    except InvalidStatus as e:  # the WebSocket upgrade was refused (401, 403, 422, 503)
        print(f"WebSocket refused: {e}", file=sys.stderr)
        return 1
    except TimeoutError as e:  # before OSError, of which it is a subclass
        print(f"VIOLATION: {e}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"cannot reach {args.url}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
