"""Structured logs: one JSON object per line, with the ids a log reader searches by."""

from __future__ import annotations

import json
import logging
import sys
import time

_FIELDS = ("player_id", "action_id", "room", "points", "duplicate", "code", "instance", "backend")
# One encoder for every line: json.dumps with an option builds a new one per call.
_ENCODE = json.JSONEncoder(default=str).encode


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        # A busy server logs many lines a second: the second is formatted once. (The handler's
        # lock is held around format, so the two fields change together.)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        entry = {
            "ts": f"{self._second_text}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = record.__dict__
        for field in _FIELDS:
            if field in extra:
                entry[field] = extra[field]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODE(entry)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The libraries log every packet at INFO, payloads (and so tokens) included.
    for name in ("aiohttp.access", "socketio", "engineio"):
        logging.getLogger(name).setLevel(logging.WARNING)
