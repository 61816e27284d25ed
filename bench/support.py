"""What both benchmarks need around the measurement: their own Redis, store and servers, stopped in order.

One copy, so that both start, log, fail and clean up the same way. Importing it puts the repository
root on sys.path, for `app`.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ACTION = "bench"
# per_minute: the catalogue allows at most 10,000, which the benchmarks' players stay well under.
CATALOGUE = {"actions": {ACTION: {"points": 1, "min_ms": 0, "ttl_s": 600, "difficulty": 1, "per_minute": 10_000}}}
# Settings the server reads from the environment; a server gets only the ones set here, none inherited.
APP_ENV = ("HOST", "PORT", "MONGODB_URL", "MONGODB_DB", "REDIS_URL", "SECRET_KEY", "API_KEY", "ALLOW_GUEST_SESSIONS",
           "CORS_ORIGINS", "REGIONS", "ACTIONS_FILE", "TOP_N", "LEADERBOARD_FLUSH_MS", "DATA_DIR", "SESSION_TTL_S",
           "STORE_TIMEOUT_MS", "MAX_PAYLOAD_BYTES", "LOG_LEVEL", "DRAIN_TIMEOUT_S", "SOCKET_EVENTS_PER_S",
           "SOCKET_EVENT_BURST", "CONNECTIONS_PER_IP", "SESSIONS_PER_IP_PER_MINUTE", "TRUST_PROXY",
           "TRUSTED_PROXIES", "CONNECT_TIMEOUT_S", "HTTP_READS_PER_IP_PER_S", "HTTP_READ_BURST",
           "RECONCILE_INTERVAL_S", "AUDIT_TRAIL", "AUDIT_RETENTION_DAYS", "BEHAVIOUR_SCORING", "EVENT_LOOP")
# Every simulated client comes from 127.0.0.1, and a benchmark player sends far more events a second
# than a person: the abuse limits would throttle the load itself.
NO_ABUSE_LIMITS = {"CONNECTIONS_PER_IP": "0", "SESSIONS_PER_IP_PER_MINUTE": "0", "HTTP_READS_PER_IP_PER_S": "0",
                   "SOCKET_EVENTS_PER_S": "1000000", "SOCKET_EVENT_BURST": "1000000"}
STOP_GRACE_S = 15.0
TICKS = os.sysconf("SC_CLK_TCK")

_prctl: Callable[..., int] | None
try:  # looked up here, not in the forked child, where loading a library could deadlock
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the benchmark dies without cleaning up (e.g. SIGKILL)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG; best effort, stop_all is the real cleanup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> int:
    """Raise our soft fd limit to the hard one; children (server, node) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sigterm_as_ctrl_c() -> None:
    """SIGTERM takes Ctrl-C's path: inside asyncio.run that cancels the run, so clients close and children stop."""
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))


class Processes:
    """Every child a benchmark starts, each logging to `<dir>/<name>.log`, stopped in reverse order of starting.

    Start them from the main thread: the die-with-parent signal follows the thread that started the child.
    """

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.started: list[tuple[str, subprocess.Popen]] = []
        self.by_name: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None,
              stdin: int = subprocess.DEVNULL, stdout: int | None = None) -> subprocess.Popen:
        """stderr (and stdout unless given, e.g. a pipe) go to the log."""
        with open(self.log(name), "wb") as log:  # the child keeps its own copy of the fd
            # Own session: a Ctrl-C reaches only the benchmark, which then stops the children in order.
            proc = subprocess.Popen(args, stdin=stdin, stdout=log if stdout is None else stdout, stderr=log, env=env,
                                    cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)
        self.started.append((name, proc))
        self.by_name[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_for_port(self, name: str, port: int, timeout: float = 60.0) -> None:
        proc = self.by_name[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not listen on {port} within {timeout:.0f} s:\n{self.tail(name)}")

    def wait_ready(self, name: str, url: str, timeout: float = 90.0) -> None:
        """Until the server's /readyz answers 200."""
        proc = self.by_name[name]
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"{exc.code} {exc.read()[:200]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{name}: {url}/readyz not 200 within {timeout:.0f} s (last: {last}):\n{self.tail(name)}")

    def stop_all(self) -> None:
        """Latest first, so the servers close while Redis and the store they close against are still up.

        Children started one after another under one name stem (server0, server1, ...) are stopped together.
        Each gets STOP_GRACE_S after SIGTERM, then SIGKILL. Safe to call again.
        """
        groups: list[list[tuple[str, subprocess.Popen]]] = []
        for name, proc in reversed(self.started):
            if groups and groups[-1][0][0].rstrip("0123456789") == name.rstrip("0123456789"):
                groups[-1].append((name, proc))
            else:
                groups.append([(name, proc)])
        for group in groups:
            for _, proc in group:
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + STOP_GRACE_S
            for name, proc in group:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    print(f"{name} (pid {proc.pid}) still running {STOP_GRACE_S:.0f} s after SIGTERM; killing it",
                          file=sys.stderr)
                    proc.kill()
                    proc.wait()


def start_redis(procs: Processes, redis_server: str) -> tuple[str, subprocess.Popen]:
    """A throwaway redis-server (no persistence), listening; returns its URL and process."""
    port = free_port()
    proc = procs.start("redis", [redis_server, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no"])
    procs.wait_for_port("redis", port)
    return f"redis://127.0.0.1:{port}/0", proc


def start_store(procs: Processes) -> tuple[str, subprocess.Popen]:
    """A SecantusDB store (MongoDB wire protocol) in `<dir>/documents`, listening; returns its URL and process."""
    port = free_port()
    storage = procs.dir / "documents"
    storage.mkdir(exist_ok=True)
    proc = procs.start("store", [sys.executable, "-c", "from secantus.cli import main; raise SystemExit(main())",
                                 "--host", "127.0.0.1", "--port", str(port),
                                 "--storage-path", str(storage), "--log-level", "WARNING"])
    procs.wait_for_port("store", port)
    return f"mongodb://127.0.0.1:{port}/?directConnection=true", proc


def start_server(procs: Processes, name: str, redis_url: str, mongodb_url: str, actions_file: Path, secret: str,
                 **settings: str) -> tuple[str, subprocess.Popen]:
    """One `python -m app` instance with its own port and data dir (`<dir>/<name>`); not waited for (wait_ready).

    Its environment is ours without any app settings, plus guest sessions, WARNING logs, no abuse limits
    and `settings`.
    """
    port = free_port()
    data_dir = procs.dir / name
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in APP_ENV}
    env.update(HOST="127.0.0.1", PORT=str(port), REDIS_URL=redis_url, MONGODB_URL=mongodb_url,
               ACTIONS_FILE=str(actions_file), DATA_DIR=str(data_dir), SECRET_KEY=secret,
               ALLOW_GUEST_SESSIONS="1", LOG_LEVEL="WARNING", **{**NO_ABUSE_LIMITS, **settings})
    return f"http://127.0.0.1:{port}", procs.start(name, [sys.executable, "-m", "app"], env)


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    if "VmRSS" not in found:
        raise RuntimeError(f"no VmRSS for {pid}")
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], p: int) -> float:
    """Nearest-rank percentile, p in percent (exact for a whole p); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil(p/100 * n) without float rounding
    return ordered[min(len(ordered), max(1, int(rank))) - 1]


async def read_json_line(proc: subprocess.Popen, timeout: float, what: str) -> dict:
    """One JSON line from a child's stdout (read in a thread; killing the child ends the read)."""
    assert proc.stdout is not None, "started with stdout=PIPE"
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    if not line:
        raise RuntimeError(f"{what} ended without an answer (exit {proc.poll()})")
    return json.loads(line)


def send_line(proc: subprocess.Popen, text: str) -> None:
    assert proc.stdin is not None, "started with stdin=PIPE"
    proc.stdin.write(text.encode() + b"\n")
    proc.stdin.flush()
