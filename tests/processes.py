"""The processes the tests start of their own: a redis-server, the MongoDB-wire server, `python -m app`
instances; and the in-process app on a real port (the start_app fixture's)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from app.config import Settings
from app.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisProcess:
    """A redis-server of the tests' own, on a free port, restartable (empty) on that port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: run make setup"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


class DocumentStoreProcess:
    """The MongoDB-wire server (SecantusDB) of the tests' own, restartable on its port and files."""

    def __init__(self, storage: Path) -> None:
        self.port = free_port()
        self.storage = storage
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from secantus.cli import main; raise SystemExit(main())",
             "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", str(self.storage),
             "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


class Instance:
    """`python -m app` as its own process, configured only through the environment."""

    def __init__(self, settings: Settings, port: int | None = None, log_path: Path | None = None, **env: str) -> None:
        """`log_path`: keep the instance's stderr (its JSON log lines) in that file."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "REDIS_URL": settings.redis_url or "",
            "MONGODB_URL": settings.mongodb_url or "",
            "MONGODB_DB": settings.mongodb_db,
            "SECRET_KEY": ",".join(settings.secret_keys),
            "ACTIONS_FILE": str(settings.actions_file),
            "DATA_DIR": str(settings.data_dir),
            "ALLOW_GUEST_SESSIONS": "1",
            "LEADERBOARD_FLUSH_MS": str(settings.flush_ms),
            "TOP_N": str(settings.top_n),
            "LOG_LEVEL": "WARNING",
            "SOCKET_EVENTS_PER_S": str(settings.socket_events_per_s),
            "SOCKET_EVENT_BURST": str(settings.socket_event_burst),
            "CONNECTIONS_PER_IP": str(settings.connections_per_ip),
            "SESSIONS_PER_IP_PER_MINUTE": str(settings.sessions_per_ip_per_minute),
            "HTTP_READS_PER_IP_PER_S": str(settings.http_reads_per_ip_per_s),
            **env,
        }
        self.log_path = log_path
        stderr = log_path.open("wb") if log_path else None
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stderr=stderr)
        finally:
            if stderr:
                stderr.close()  # the child has its own copy

    async def ready(self, timeout: float = 30.0) -> Instance:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"instance exited with {self.proc.returncode}"
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.url} was not ready in {timeout} s")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        stop(self.proc)


class Running:
    """One app instance serving on a real port."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = str(server.make_url("")).rstrip("/")
        self.app = server.app
