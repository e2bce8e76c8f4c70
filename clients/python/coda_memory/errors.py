"""Exceptions raised by the clients."""

from __future__ import annotations

import json
from typing import Optional


class CodaError(Exception):
    """An error answer from the HTTP API (or a refused `/ws` upgrade).

    `status` is the HTTP status, `code` the stable snake_case code (`invalid_field`,
    `unauthorized`, `not_found`, ...), `message` the server's sentence and `field` the offending
    field's path for 422s (e.g. `filter.importance.bogus`), else None.
    """

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_body(cls, status: int, body: bytes) -> "CodaError":
        """Parses `{"error":{"code","message","field"?}}`; any other body becomes `http_error`."""
        try:
            error = json.loads(body)["error"]
            code, message = str(error["code"]), str(error["message"])
            field = error.get("field")
        except (ValueError, KeyError, TypeError):
            return cls(status, "http_error", body.decode(errors="replace"))
        return cls(status, code, message, None if field is None else str(field))


class CodaConnectionError(Exception):
    """The server could not be reached (connection refused, timeout, broken socket)."""
