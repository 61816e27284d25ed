"""Where an idle websocket connection's memory goes: the server in this process, N watchers of one room.

The app runs in process (create_app on an aiohttp AppRunner/TCPSite, the garbage collector tuned as
`python -m app` tunes it), on its own redis-server and MongoDB-wire store, with the settings
bench/sidebyside.py gives `python -m app` (abuse limits off, TOP_N 10), and as there ten players
of region eu score first (so each watch is answered with full boards), then leave. One node process
(bench/watchers.mjs) opens N websocket watchers of `region:eu`, as in sidebyside. A few watchers
come and go first, so that what the first connections build once (imports, caches, metric children,
the Redis pool) is not counted per connection.

Two rounds of N watchers, each read once all N are watching and SETTLE_S have passed, against the
same figures with none connected:

1. untraced: VmRSS per connection (before and after a gc.collect()), GC-tracked objects per
   connection by type, asyncio tasks per connection (by coroutine) and the loop's timer handles;
2. traced (tracemalloc, 25 frames, after a gc.collect()): Python bytes per connection, by owner
   (aiohttp, engine.io, Socket.IO, ours, other) and by allocation site. A site is the chain of
   the three innermost frames in those libraries (file:line, innermost first), and the innermost
   frame of all when that is elsewhere (asyncio, the stdlib): `deque()` made by asyncio.Queue for
   engine.io is named as engine.io's line that made the queue. tracemalloc's own bookkeeping
   inflates the process's RSS in this round, which is why RSS comes from the first.

usage: python bench/connmem.py [--watchers 2000] [--top 25] [--batch 200] [--no-trace] [--dump PREFIX]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
import tracemalloc
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web
from sidebyside import TOP_N, board_rows, complete, player
from support import (
    ACTION,
    CATALOGUE,
    NO_ABUSE_LIMITS,
    ROOT,
    Processes,
    free_port,
    raise_fd_limit,
    rss_kb,
    start_redis,
    start_store,
)

from app import logs  # after support, which puts the repository root on sys.path
from app.__main__ import _tune_gc  # what `python -m app` does to the collector at startup
from app.config import Settings
from app.server import SIO, create_app

ROOM = "region:eu"
WARMUP_WATCHERS = 20
SETTLE_S = 2.0
DRAIN_WAIT_S = 60.0
# Path fragments that name an owner of an allocation, checked innermost frame first.
OWNERS = (
    ("aiohttp", f"{os.sep}aiohttp{os.sep}"),
    ("engineio", f"{os.sep}engineio{os.sep}"),
    ("socketio", f"{os.sep}socketio{os.sep}"),
    ("ours", f"{ROOT}{os.sep}app{os.sep}"),
)


class Receiver:
    """bench/watchers.mjs, read from this loop (the server shares it)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, node: str, url: str, count: int, batch: int) -> Receiver:
        proc = await asyncio.create_subprocess_exec(
            node, str(ROOT / "bench" / "watchers.mjs"), url, str(count), ROOM, str(batch),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT)
        return cls(proc)

    async def line(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"the watchers ended without an answer (exit {self.proc.returncode})")
        return json.loads(raw)

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        if self.proc.returncode is None:
            self.proc.stdin.write(b"stop\n")
            await self.proc.stdin.drain()
            await self.line(120)
        await asyncio.wait_for(self.proc.wait(), 60)


def settings_for(redis_url: str, mongodb_url: str, tmp: Path) -> Settings:
    """What bench/support.start_server puts in a server's environment, read as the server reads it."""
    actions_file = tmp / "actions.json"
    actions_file.write_text(json.dumps(CATALOGUE))
    data_dir = tmp / "server"
    data_dir.mkdir()
    env = dict(HOST="127.0.0.1", PORT=str(free_port()), REDIS_URL=redis_url, MONGODB_URL=mongodb_url,
               MONGODB_DB="bench", TOP_N="10", ACTIONS_FILE=str(actions_file), DATA_DIR=str(data_dir),
               SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex, ALLOW_GUEST_SESSIONS="1", LOG_LEVEL="WARNING",
               **NO_ABUSE_LIMITS)
    return Settings.from_env(env)


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def task_counts() -> Counter[str]:
    return Counter(getattr(t.get_coro(), "__qualname__", type(t.get_coro()).__name__) for t in asyncio.all_tasks())


def timer_count() -> int:
    # Private, for this measurement only: the loop's heap of call_later / call_at handles.
    return len(getattr(asyncio.get_running_loop(), "_scheduled", ()))


def rss() -> int:
    return rss_kb(os.getpid())["VmRSS"]


def where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for marker in ("site-packages" + os.sep, str(ROOT) + os.sep):
        if marker in name:
            name = name.split(marker, 1)[1]
            break
    else:
        name = name.rsplit(os.sep + "lib" + os.sep, 1)[-1]
    return f"{name}:{frame.lineno}"


def site(traceback: tracemalloc.Traceback) -> str:
    """Up to three innermost frames in aiohttp, engine.io, Socket.IO or ours, innermost first, and the
    innermost frame of all when it is elsewhere (a Traceback runs oldest to newest)."""
    frames = list(reversed(traceback))
    owned = [where(f) for f in frames if any(marker in f.filename for _, marker in OWNERS)][:3]
    inner = where(frames[0])
    if not owned:
        return inner
    return " <- ".join(owned if owned[0] == inner else [f"({inner})", *owned])


def library(traceback: tracemalloc.Traceback) -> str:
    for frame in reversed(traceback):
        for label, marker in OWNERS:
            if marker in frame.filename:
                return label
    return "other"


async def settle(n_sockets: int, sio) -> None:
    """Until engine.io holds `n_sockets` sessions (or DRAIN_WAIT_S passed), then SETTLE_S of quiet."""
    for _ in range(int(DRAIN_WAIT_S * 10)):
        if len(sio.eio.sockets) == n_sockets:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(SETTLE_S)


async def round_of(node: str, url: str, sio, args: argparse.Namespace) -> tuple[Receiver, dict]:
    receiver = await Receiver.start(node, url, args.watchers, args.batch)
    ready = await receiver.line(600)
    if ready["watching"] < args.watchers:
        print(f"  warning: only {ready['watching']} of {args.watchers} watchers joined; errors {ready['errors']}")
    await settle(ready["watching"], sio)
    return receiver, ready


async def seat(url: str) -> None:
    """As sidebyside does: TOP_N players of region eu score, so that each watcher's snapshot holds
    TOP_N rows in each period. They leave once the board is full: clients in this process would
    find its loop stalled by tracemalloc's snapshots, past their ping wait."""
    async with aiohttp.ClientSession() as http:
        seated = [await player(http, url, f"seat{i:02d}") for i in range(TOP_N)]
    try:
        await asyncio.gather(*(complete(sio, ACTION) for sio in seated))
        for _ in range(300):
            if await asyncio.to_thread(board_rows, url) >= TOP_N:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{ROOM} did not fill up within 30 s")
    finally:
        await asyncio.gather(*(client.disconnect() for client in seated), return_exceptions=True)


async def measure(args: argparse.Namespace, node: str, url: str, sio) -> None:
    await seat(url)
    # Warm-up: the first connections build what every later one shares.
    warm = await Receiver.start(node, url, WARMUP_WATCHERS, WARMUP_WATCHERS)
    await warm.line(120)
    await warm.stop()
    await settle(0, sio)

    # Round 1, untraced.
    gc.collect()
    rss0, types0, tasks0, timers0 = rss(), type_counts(), task_counts(), timer_count()
    receiver, ready = await round_of(node, url, sio, args)
    n = ready["watching"]
    uncollected = rss()
    gc.collect()
    rss1, types1, tasks1, timers1 = rss(), type_counts(), task_counts(), timer_count()
    print(f"\n{n} websocket watchers of {ROOM}, in-process server, {sys.version.split()[0]}")
    print(f"VmRSS per connection: {(rss1 - rss0) / n:.1f} kB after gc.collect(), {(uncollected - rss0) / n:.1f} kB "
          f"before it, as sidebyside reads it ({rss0 / 1024:.0f} -> {uncollected / 1024:.0f} MB)")
    tasks = tasks1 - tasks0
    print(f"asyncio tasks per connection: {sum(tasks.values()) / n:.2f}; timer handles per connection: "
          f"{(timers1 - timers0) / n:.2f}")
    for name, count in tasks.most_common(10):
        print(f"  {count / n:6.2f}  {name}")
    objects = types1 - types0
    print(f"GC-tracked objects per connection: {sum(objects.values()) / n:.1f}; top 20 types:")
    for name, count in objects.most_common(20):
        print(f"  {count / n:6.2f}  {name}")
    await receiver.stop()
    await settle(0, sio)
    if args.no_trace:
        return

    # Round 2, traced.
    tracemalloc.start(25)
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
    gc.collect()
    before = tracemalloc.take_snapshot().filter_traces(ignore)
    receiver, ready = await round_of(node, url, sio, args)
    n = ready["watching"]
    gc.collect()
    after = tracemalloc.take_snapshot().filter_traces(ignore)
    if args.dump:
        before.dump(f"{args.dump}.before")
        after.dump(f"{args.dump}.after")
    await receiver.stop()
    tracemalloc.stop()
    diffs = after.compare_to(before, "traceback")
    total = sum(d.size_diff for d in diffs)
    print(f"\ntraced Python bytes per connection: {total / n:.0f} (tracemalloc on: RSS not comparable)")
    by_library: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for d in diffs:
        by_library[library(d.traceback)] += d.size_diff
        key = site(d.traceback)
        sizes[key] += d.size_diff
        blocks[key] += d.count_diff
    print("  by owner: " + ", ".join(f"{label} {size / n:.0f}" for label, size in by_library.most_common()))
    print(f"top {args.top} allocation sites, bytes and blocks per connection ((innermost) <- owner frames):")
    for key, size in sizes.most_common(args.top):
        print(f"  {size / n:6.0f} B {blocks[key] / n:5.1f}  {key}")


async def run(args: argparse.Namespace, node: str, redis_bin: str, tmp: Path) -> None:
    procs = Processes(tmp)
    try:
        redis_url, _ = start_redis(procs, redis_bin)
        mongodb_url, _ = start_store(procs)
        settings = settings_for(redis_url, mongodb_url, tmp)
        # ERROR, not the server's WARNING: tracemalloc slows the loop enough for the flush lease to
        # lapse now and then, which the flusher logs.
        logs.configure("ERROR")
        app = create_app(settings)
        app.on_startup.append(_tune_gc)  # as `python -m app` runs: startup frozen, collections rarer
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            await measure(args, node, f"http://{settings.host}:{settings.port}", app[SIO])
        finally:
            await runner.cleanup()
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=2000, help="websocket watchers (default 2000)")
    parser.add_argument("--batch", type=int, default=200, help="watchers opened at a time")
    parser.add_argument("--top", type=int, default=25, help="allocation sites listed")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc round")
    parser.add_argument("--dump", metavar="PREFIX", help="keep the traced snapshots in PREFIX.before and PREFIX.after")
    args = parser.parse_args()
    node = shutil.which("node")
    redis_bin = shutil.which("redis-server")
    if not node or not redis_bin or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        print("node, redis-server and the socket.io-client npm package are needed: run make setup", file=sys.stderr)
        return 2
    if raise_fd_limit() < args.watchers + 1000:
        print(f"the fd limit is below {args.watchers + 1000} (raise the hard limit: ulimit -Hn)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="connmem-"))
    try:
        asyncio.run(run(args, node, redis_bin, tmp))
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
