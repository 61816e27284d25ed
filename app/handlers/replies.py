"""The one place that turns errors into protocol replies, for sockets and for HTTP."""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from app.drain import Drain
from app.errors import HTTP_STATUS, ProtocolError
from app.metrics import Metrics

log = logging.getLogger(__name__)

_NO_PAYLOAD = object()


def invalid(exc: ValidationError) -> ProtocolError:
    return ProtocolError("invalid_payload", "invalid payload: " + json.dumps(exc.messages, default=str)[:500])


def to_protocol_error(exc: Exception, where: str) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, ValidationError):
        return invalid(exc)
    log.exception("unexpected error in %s", where)
    return ProtocolError("unavailable", "the server could not complete this request; retry later")


def acked(event: str, metrics: Metrics, drain: Drain) -> Callable:
    """Wrap a socket handler `(sid, payload) -> dict` so that its ack is always one object,
    and a draining instance takes no new work."""

    # The labelled children, looked up once: labels() takes a lock and builds a tuple per call.
    latency = metrics.latency.labels(event)
    counted: dict[str, Any] = {}

    def wrap(handler: Callable[[str, object], Awaitable[dict]]) -> Callable:
        @functools.wraps(handler)
        async def wrapper(sid: str, *args: object) -> dict:
            started = time.perf_counter()
            try:
                drain.refuse_new_work()
                if len(args) != 1:
                    raise ProtocolError("invalid_payload", "send exactly one JSON object")
                reply = {"ok": True, **await handler(sid, args[0])}
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error ack
                error = to_protocol_error(exc, event)
                reply = {"ok": False, "error": error.as_error()}
                outcome = error.code
            counter = counted.get(outcome)
            if counter is None:  # error codes are a closed set (app/errors.py): the dict stays small
                counter = counted[outcome] = metrics.events.labels(event, outcome)
            counter.inc()
            latency.observe(time.perf_counter() - started)
            return reply

        return wrapper

    return wrap


def error_response(error: ProtocolError) -> web.Response:
    resp = web.json_response({"error": error.as_error()}, status=HTTP_STATUS.get(error.code, 400))
    if error.retry_after_ms is not None:
        resp.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_ms / 1000)))
    return resp


_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
}
SOCKET_PATH = "/socket.io/"


@web.middleware
async def http_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Every HTTP error leaves with the `{"error": {"code", "message"}}` body, never a bare 5xx."""
    if request.path.startswith(SOCKET_PATH):
        # engine.io answers its own protocol errors; a websocket may already be upgraded. (Its
        # websockets refuse permessage-deflate themselves: app/handlers/sockets.py CheckedWebSocket.)
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "invalid_payload")
        resp = error_response(ProtocolError(code, exc.reason or code))
        if exc.status == 405:
            resp.headers["Allow"] = exc.headers.get("Allow", "")
        return resp
    except Exception as exc:  # noqa: BLE001
        return error_response(to_protocol_error(exc, request.path))


async def json_body(request: web.Request) -> Any:
    """The request body as JSON, any JSON value (the schema refuses what is not an object);
    anything else is invalid_payload."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ProtocolError("payload_too_large", "request body is over the size limit") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError, and an integer literal longer
        # than Python converts (4,300 digits), which is still valid JSON.
        raise ProtocolError("invalid_payload", "request body must be a JSON object") from None
