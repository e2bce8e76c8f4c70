"""A typed Python client for Coda's HTTP API (`/api/v1`) and its event stream (`/ws`).

    from coda_memory import Client
    coda = Client("http://127.0.0.1:8765", token="...", user_id="alice")
    memory = coda.add_memory("Alice likes green tea.", memory_type="preference")
    hits = coda.search("what does alice drink", limit=3)

`AsyncClient` has the same methods as coroutines; `Events` is an async iterator over `/ws` that
resumes with `since`/`epoch` after a disconnect, and `SyncEvents` (or `Client.events()`) the
same without asyncio.
"""

from __future__ import annotations

from .aio import AsyncClient
from .client import Client, Json
from .errors import CodaConnectionError, CodaError
from .events import Events, SyncEvents

__all__ = ["AsyncClient", "Client", "CodaConnectionError", "CodaError", "Events", "Json",
           "SyncEvents"]
__version__ = "0.1.0"
