"""Structured logs: one JSON object per line, with the ids a log reader searches by."""

from __future__ import annotations

import json
import logging
import sys
import time

_FIELDS = ("player_id", "action_id", "room", "points", "duplicate", "code", "instance", "backend")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in _FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The libraries log every packet at INFO, payloads (and so tokens) included.
    for name in ("aiohttp.access", "socketio", "engineio"):
        logging.getLogger(name).setLevel(logging.WARNING)
