"""A minimal assistant loop on Coda from Python, no LLM needed: an echo "assistant" that stores
every turn, persists at the end of each session, and recalls what it learnt in the next session
of the same user, with a fact that changed in between (the newer one supersedes the older).
The Python twin of examples/chat_loop.rs, through the `coda-memory` package and a server.

    pip install ./clients/python          # or run from the repository: the source tree is used
    python3 examples/python/chat_loop.py --url http://127.0.0.1:8765 [--token TOKEN] [--user alice]

It prints the two conversations and what Coda believes at the end; it exits 1 when a check
fails, 2 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

try:
    import coda_memory  # noqa: F401  (installed with pip)
except ImportError:  # running from a checkout: use the package's source tree
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))

from coda_memory import Client, CodaConnectionError

#: Only what was learnt about the user, not the conversation memories of each exchange.
FACTS = {"source_type": {"in": ["fact", "preference"]}}


def reply(coda: Client, said: str) -> str:
    """The "assistant": recalls the user's memories that match what was said, and echoes."""
    # Lexical recall, and only good matches: the server may run the `hashing` embedder, which
    # does not match paraphrases (with minilm, the default hybrid ranking does better).
    hits = coda.search(said, limit=1, filter=FACTS, mode="lexical")
    known = [h["content"] for h in hits if h.get("score", 0) >= 0.3]
    if not known:
        return f"You said: {said}"
    return f"You said: {said} (I remember: {' '.join(known)})"


def session(coda: Client, session_id: str, lines: List[str]) -> List[str]:
    """One session: each user line becomes a turn, the reply another; persist at the end."""
    chat = coda.with_scope(session_id=session_id)
    print(f"-- {coda.user_id}, session {session_id}")
    answers = []
    for line in lines:
        chat.add_turn("user", line)
        answer = reply(coda, line)
        print(f"{coda.user_id}: {line}\ncoda: {answer}")
        chat.add_turn("assistant", answer)
        answers.append(answer)
    persisted = chat.persist()
    print(f"(persisted {persisted['memories_added']} memories)")
    return answers


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CODA_URL", "http://127.0.0.1:8765"))
    parser.add_argument("--token", default=os.environ.get("CODA_TOKEN"))
    parser.add_argument("--user", default="alice")
    args = parser.parse_args()

    try:
        monday = Client(args.url, args.token, user_id=args.user)
        session(monday, "monday", ["Hi, my name is Alice and I live in Paris.",
                                   "I love green tea."])
        # The assistant restarts between sessions: a new client, the memory is the server's.
        friday = Client(args.url, args.token, user_id=args.user)
        answers = session(friday, "friday", ["Where do I live again?",
                                             "Actually, I moved to Berlin last month."])
        check("Paris" in answers[0], f"friday recalls monday's Paris: {answers[0]!r}")

        home = friday.search("where does the user live", limit=1, filter={"source_type": "fact"})
        belief = home[0]["content"] if home else ""
        print(f"-- what Coda believes now: {belief}")
        check(belief == "The user lives in Berlin.", f"Berlin supersedes Paris: {belief!r}")
        # Paris is kept, superseded, with its history.
        every = friday.memories(include_superseded=True)
        paris = [m for m in every if m["content"] == "The user lives in Paris."]
        check(len(paris) == 1, f"Paris is kept: {[m['content'] for m in every]}")
        actions = [v["action"] for v in friday.history(paris[0]["id"])]
        print(f"-- \"{paris[0]['content']}\": {' -> '.join(actions)}")
        check(actions[-1] == "supersede", f"Paris was superseded: {actions}")
        # Another user of the same server sees none of it.
        stranger = friday.with_scope(user_id=f"{args.user}-stranger")
        check(stranger.search("where does the user live") == [], "another user sees nothing")
    except CodaConnectionError as e:
        print(f"cannot reach Coda: {e}", file=sys.stderr)
        sys.exit(2)
    print("OK: recalled across sessions, the newer fact superseded the older")


if __name__ == "__main__":
    main()
