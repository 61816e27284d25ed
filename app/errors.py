"""The one error type. Raised anywhere below the handlers; mapped to a reply once, at the edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError


class ProtocolError(Exception):
    """A refusal the client can act on, carrying a PROTOCOL.md error code."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms

    def as_error(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.retry_after_ms is not None:
            error["retry_after_ms"] = self.retry_after_ms
        return error


HTTP_STATUS = {
    "invalid_payload": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,  # (v1.1) a tournament changed after it started
    # (v1.1) Answers of tournament:join, a socket event; 409 should one ever travel over HTTP.
    "tournament_closed": 409,
    "tournament_full": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}


@contextmanager
def outage_as_unavailable(what: str) -> Iterator[None]:
    """A store that times out or refuses becomes `unavailable`, never a 5xx or a hung ack."""
    try:
        yield
    except (TimeoutError, PyMongoError, RedisError, OSError) as exc:
        raise ProtocolError("unavailable", f"{what} is unavailable; retry later") from exc
