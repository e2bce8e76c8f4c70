"""The seed's Python design for fan-out, as a peer for `coda-bench --url`.

One asyncio process (aiohttp, whose WebSocket support serves `/ws` on the same port): a turn
POSTed to `/api/v1/turns` is serialised once as a `conversation_turn` event and sent to every
connected `/ws` client, as the seed's WebSocket server broadcast its events. It answers only
what the load tool asks: `POST /api/v1/turns`, `GET /ws`, and `GET /metrics` (the number of
open connections, so the tool knows when its subscribers are in).

    pip install aiohttp
    python3 benches/fanout_python_peer.py 18766 &
    cargo run --release -p coda-server --bin coda-bench -- --url http://127.0.0.1:18766 \
        --server-pid $! --clients 100 --rate 0 --seconds 10 --threads 1
"""

import json
import sys
import uuid
from datetime import datetime, timezone

from aiohttp import WSMsgType, web

CLIENTS = set()
SEQ = 0


async def turns(request):
    global SEQ
    body = await request.json()
    SEQ += 1
    event = {
        "type": "conversation_turn",
        "seq": SEQ,
        "data": {
            "user_id": request.query.get("user_id", "default"),
            "role": body.get("role"),
            "content": body.get("content"),
        },
        "event_id": str(uuid.uuid4()),
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
    frame = json.dumps(event, separators=(",", ":"))
    for ws in list(CLIENTS):
        try:
            await ws.send_str(frame)
        except ConnectionError:
            CLIENTS.discard(ws)
    return web.json_response({"seq": SEQ}, status=201)


async def subscribe(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    CLIENTS.add(ws)
    try:
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        CLIENTS.discard(ws)
    return ws


async def metrics(_request):
    return web.Response(text=f"coda_websocket_connections {len(CLIENTS)}\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18766
    app = web.Application()
    app.router.add_post("/api/v1/turns", turns)
    app.router.add_get("/ws", subscribe)
    app.router.add_get("/metrics", metrics)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
