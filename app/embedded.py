"""Embedded defaults, so `make run` works with nothing configured.

With MONGODB_URL unset, a MongoDB-wire document store (SecantusDB, on WiredTiger) runs
as a child process with its files under DATA_DIR. With REDIS_URL unset, fakeredis runs
in process: the same redis-py calls and Lua scripts, for a single instance.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)

_LAUNCH = "from secantus.cli import main; raise SystemExit(main())"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedDocumentStore:
    """A SecantusDB server as a child process; stopped with the app."""

    def __init__(self, storage: Path, port: int | None = None) -> None:
        self.storage = storage
        self.port = port or free_port()
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self, timeout_s: float = 60.0) -> str:
        self.storage.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LAUNCH,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-path", str(self.storage), "--log-level", "WARNING",
            stdin=asyncio.subprocess.DEVNULL,
        )
        client: AsyncMongoClient = AsyncMongoClient(self.url, serverSelectionTimeoutMS=500)
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(f"the embedded document store exited with {self._proc.returncode}")
                try:
                    await client.admin.command("ping")
                    return self.url
                except Exception:  # noqa: BLE001 - not up yet
                    if asyncio.get_running_loop().time() > deadline:
                        await self.stop()
                        raise RuntimeError("the embedded document store did not start") from None
                    await asyncio.sleep(0.2)
        finally:
            await client.close()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def in_process_redis():
    """An in-process Redis stand-in for single-instance mode (fakeredis, with Lua)."""
    import fakeredis

    return fakeredis.FakeAsyncRedis()
