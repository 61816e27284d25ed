"""What services may push to clients, without knowing Socket.IO exists."""

from __future__ import annotations

from typing import Protocol


class Notifier(Protocol):
    async def to_room(self, room: str, event: str, payload: dict) -> None: ...
