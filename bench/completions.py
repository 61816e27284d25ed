"""Completions per second through the whole credit path, end to end.

Starts its own redis-server, its own SecantusDB store and K server instances
(`python -m app`, separate processes, sharing Redis and the store), creates N
guest players over HTTP, connects N python-socketio clients and, for a fixed
duration, has each client loop action:start -> solve proof -> action:complete
as fast as the acks come back. Afterwards it checks that the players' totals
on the server add up to what the acks credited, then prints one summary line.

    .venv/bin/python bench/completions.py [--seconds 10] [--players 50]
        [--transport websocket|polling] [--instances 1] [--fair-play-cost [--rounds 2]]
        [--profile FILE [--top 15]] [--summarise FILE [--top 15]]

The summary line gives "server CPU per completion": the CPU seconds the server processes
used during the run (user + system, from /proc) over the completions credited.

With --profile FILE, py-spy (requirements-dev.txt) samples the first server instance for the
measured seconds (attached to its pid; as root, or where ptrace is allowed), writes the
collapsed stacks to FILE (py-spy's raw format: flamegraph.pl or speedscope.app read it) and
prints the top functions by self and by total samples, and self samples by package (--summarise
prints them again from such a file). py-spy
pauses the server at each sample (200 a second) and runs on the same cores, so a profiled
run's rates are a little lower: compare figures of unprofiled runs.

With --fair-play-cost it measures what the audit trail and behaviour scoring cost: in one
run, rounds alternate between servers started with them off (AUDIT_TRAIL=0
BEHAVIOUR_SCORING=0) and on, on the same Redis and store, and it prints completions per
second and server CPU per completion for each, and the overhead. (With scoring on, these
clients, which complete as fast as they can, soon look automated and get harder proofs:
that costs the clients, not the server, and shows in "max difficulty".)

The clients run in this process on asyncio, on the same machine as the
servers, Redis and the store (two cores here): client CPU (Socket.IO framing,
JSON, proof solving) competes with the server for the same cores, so the
figure is a floor for the server, not its ceiling. The summary gives each
process's CPU seconds so the split can be seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import socketio
from support import (
    ACTION,
    CATALOGUE,
    Processes,
    cpu_s,
    percentile,
    rss_kb,
    sigterm_as_ctrl_c,
    start_redis,
    start_server,
    start_store,
)

from app.anticheat.proof import solve  # after support, which puts the repository root on sys.path

PROFILE_RATE = 200  # py-spy samples per second
# Leaves of a thread waiting, not running: py-spy's own idle detection misses these (the event
# loop in epoll_wait, an executor's threads in their queue's get), and they would fill the tables.
IDLE_LEAVES = frozenset({"EpollSelector.select (selectors.py)", "_worker (concurrent/futures/thread.py)",
                         "Condition.wait (threading.py)"})

REGIONS = ("na", "eu", "apac", "sa", "oce")
ACK_TIMEOUT_S = 10.0


@dataclass
class Stats:
    credited_points: int = 0
    credited: int = 0
    recovered: int = 0  # credited, but the ack came only on a retry (duplicate: true)
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    max_difficulty: int = 0
    per_player: Counter = field(default_factory=Counter)


async def call(sio: socketio.AsyncClient, event: str, data: dict) -> dict:
    return await sio.call(event, data, timeout=ACK_TIMEOUT_S)


async def play(player_id: str, sio: socketio.AsyncClient, until: float, stats: Stats) -> None:
    """One client's loop; finishes the round in flight when time is up."""
    try:
        await _play(player_id, sio, until, stats)
    except socketio.exceptions.SocketIOError as exc:  # the connection went away mid-call
        stats.errors[f"client_{type(exc).__name__}"] += 1


async def _play(player_id: str, sio: socketio.AsyncClient, until: float, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until and sio.connected:
        began = loop.time()
        try:
            started = await call(sio, "action:start", {"action": ACTION})
        except socketio.exceptions.TimeoutError:
            stats.errors["start_timeout"] += 1
            continue
        if not started.get("ok"):
            stats.errors[started.get("error", {}).get("code", "?")] += 1
            retry = started.get("error", {}).get("retry_after_ms")
            await asyncio.sleep(retry / 1000 if retry else 0.05)
            continue
        challenge = started["challenge"]
        stats.max_difficulty = max(stats.max_difficulty, challenge["difficulty"])
        proof = solve(challenge["token"], challenge["difficulty"])
        body = {"token": challenge["token"], "proof": proof}
        # A lost ack is retried with the same token and proof (PROTOCOL.md 5), so nothing credited goes uncounted.
        for attempt in range(3):  # noqa: B007 - read after the loop: a duplicate on a retry is a recovery
            try:
                ack = await call(sio, "action:complete", body)
                break
            except socketio.exceptions.TimeoutError:
                stats.errors["complete_timeout"] += 1
        else:
            stats.errors["complete_unanswered"] += 1  # credited or not: the consistency check will tell
            continue
        if ack.get("ok"):
            if not ack["duplicate"]:
                stats.credited += 1
                stats.latencies_ms.append((loop.time() - began) * 1000)
            elif attempt:
                stats.recovered += 1
            else:
                stats.errors["unexpected_duplicate"] += 1
            if not ack["duplicate"] or attempt:
                stats.credited_points += ack["points"]
                stats.per_player[player_id] += ack["points"]
        else:
            stats.errors[ack.get("error", {}).get("code", "?")] += 1


async def bounded(limit: int, coros) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def drive(args: argparse.Namespace, urls: list[str], servers: list[subprocess.Popen],
                others: list[tuple[str, subprocess.Popen]]) -> tuple[str, str]:
    run = uuid.uuid4().hex[:6]
    players = [f"bench{run}_{i}" for i in range(args.players)]
    home = {p: urls[i % len(urls)] for i, p in enumerate(players)}  # round-robin over the instances
    stats = Stats()
    clients: dict[str, socketio.AsyncClient] = {}
    async with aiohttp.ClientSession() as http:
        async def session(i: int, player_id: str) -> str:
            body = {"player_id": player_id, "name": player_id[:32], "region": REGIONS[i % len(REGIONS)]}
            async with http.post(f"{home[player_id]}/api/v1/sessions", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"POST /api/v1/sessions: {resp.status} {await resp.text()}")
                return (await resp.json())["token"]

        tokens = await bounded(20, [session(i, p) for i, p in enumerate(players)])

        async def connect(player_id: str, token: str) -> None:
            sio = socketio.AsyncClient(reconnection=False)
            clients[player_id] = sio
            await sio.connect(home[player_id], auth={"token": token}, transports=[args.transport], wait_timeout=10)

        try:
            await bounded(20, [connect(p, t) for p, t in zip(players, tokens, strict=True)])
            rss_before = [rss_kb(s.pid)["VmRSS"] for s in servers]
            watched = [*servers, *(proc for _, proc in others)]
            cpu_before = [cpu_s(p.pid) for p in watched]
            own_before = time.process_time()
            profiler = start_profiler(args, servers[0].pid) if args.profile else None
            loop = asyncio.get_running_loop()
            began = loop.time()
            await asyncio.gather(*(play(p, clients[p], began + args.seconds, stats) for p in players))
            elapsed = loop.time() - began
            if profiler is not None:
                await asyncio.to_thread(finish_profiler, profiler, args)
            cpu_used = [cpu_s(p.pid) - b for p, b in zip(watched, cpu_before, strict=True)]
            own_cpu = time.process_time() - own_before
            rss_after = [rss_kb(s.pid) for s in servers]
            dropped = sum(1 for sio in clients.values() if not sio.connected)
        finally:
            await asyncio.gather(*(sio.disconnect() for sio in clients.values() if sio.connected),
                                 return_exceptions=True)

        # Every instance answers for every player; ask each player's own instance.
        async def total(player_id: str) -> int:
            async with http.get(f"{home[player_id]}/api/v1/players/{player_id}") as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET /api/v1/players/{player_id}: {resp.status} {await resp.text()}")
                return (await resp.json())["score"]["total"]

        totals = dict(zip(players, await bounded(20, [total(p) for p in players]), strict=True))

    server_sum = sum(totals.values())
    if server_sum == stats.credited_points:
        verdict = f"consistent: players' totals sum to {server_sum} = points credited by the acks"
    else:
        off = {p: (totals[p], stats.per_player[p]) for p in players if totals[p] != stats.per_player[p]}
        shown = dict(list(off.items())[:5])
        verdict = (f"INCONSISTENT: players' totals sum to {server_sum}, acks credited {stats.credited_points} "
                   f"({len(off)} players differ, server/acks: {shown})")
    lat = sorted(stats.latencies_ms)
    if dropped:
        stats.errors["disconnected"] = dropped
    if stats.recovered:
        stats.errors["recovered_on_retry"] = stats.recovered
    rss = ", ".join(f"{r['VmRSS'] / 1024:.0f} MB (peak {r['VmHWM'] / 1024:.0f}, before run {b / 1024:.0f})"
                    for r, b in zip(rss_after, rss_before, strict=True))
    names = [f"server{i}" for i in range(len(servers))] + [name for name, _ in others]
    cpu = " ".join(f"{n} {c:.1f}" for n, c in zip(names, cpu_used, strict=True)) + f" client {own_cpu:.1f}"
    server_cpu = sum(cpu_used[:len(servers)])
    args.measured = (stats.credited / elapsed, server_cpu / max(1, stats.credited) * 1000)
    summary = (
        f"completions: {stats.credited / elapsed:.0f}/s over {elapsed:.1f} s, {args.players} players, "
        f"{len(servers)} instance{'s' if len(servers) > 1 else ''} ({args.transport}), "
        f"p50 {percentile(lat, 50):.1f} ms p99 {percentile(lat, 99):.1f} ms (start+complete round trip), "
        f"server CPU per completion {args.measured[1]:.2f} ms, "
        f"errors {dict(stats.errors)}, server RSS {rss}, cpu s: {cpu}, max difficulty {stats.max_difficulty}"
    )
    return verdict, summary


def start_profiler(args: argparse.Namespace, pid: int) -> subprocess.Popen:
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy if py_spy.exists() else "py-spy"), "record", "--pid", str(pid),
               "--duration", str(max(1, round(args.seconds))), "--rate", str(PROFILE_RATE),
               # Only samples holding the GIL: a thread in a syscall releases it, and on a machine
               # this busy a send() that wakes the store or Redis is mostly time spent preempted by
               # it, not CPU of the server's (system time was ~6% of its CPU here).
               "--gil", "--format", "raw", "--output", str(args.profile)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish_profiler(proc: subprocess.Popen, args: argparse.Namespace) -> None:
    out, _ = proc.communicate(timeout=args.seconds + 60)
    if proc.returncode:
        raise RuntimeError(f"py-spy exited with {proc.returncode}: {out.decode(errors='replace')[-500:]}")


def frame_name(frame: str) -> str:
    """`func (pkg/file.py:123)` -> `func (pkg/file.py)`: a function's samples over all its lines."""
    return re.sub(r":\d+\)$", ")", frame)


def package_of(frame: str) -> str:
    """The top-level package (or the app's sub-package) of a frame: `app/actions`, `socketio`, `json`..."""
    match = re.search(r"\(([^()]*?)(?::\d+)?\)$", frame)
    path = match.group(1) if match else frame
    parts = path.split("/")
    if parts[0] == "app" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def summarise_profile(path: Path, top: int) -> str:
    """Top functions by self samples (the leaf of a stack) and by total samples (anywhere in a
    stack, once per stack), and self samples by package, from py-spy's raw (collapsed) stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frame_name(frames[-1]) in IDLE_LEAVES:
            idle += count
            continue
        samples += count
        own[frame_name(frames[-1])] += count
        packages[package_of(frames[-1])] += count
        for name in {frame_name(f) for f in frames}:
            total[name] += count
    if not samples:
        return f"profile: no samples in {path}"

    def table(counts: Counter[str]) -> str:
        return "\n".join(f"  {n / samples * 100:5.1f}%  {name}" for name, n in counts.most_common(top))

    # The frames under nearly every stack (runpy, asyncio.run, the loop's _run_once) say nothing.
    total = Counter({name: n for name, n in total.items() if n < 0.9 * samples})

    return (f"profile of server0: {samples} samples running ({PROFILE_RATE}/s; {idle} waiting left out), "
            f"stacks in {path}\n"
            f"top {top} by self:\n{table(own)}\ntop {top} by total (frames in 90% of stacks or more left out):\n"
            f"{table(total)}\n"
            f"self by package:\n{table(packages)}")


def run_once(args: argparse.Namespace, procs: Processes, prefix: str, redis_url: str, mongodb_url: str,
             actions_file: Path, secret: str, env: dict[str, str],
             others: list[tuple[str, subprocess.Popen]]) -> tuple[str, str]:
    """Start the instances (with `env`), drive them, stop them; (verdict, summary)."""
    names = [f"{prefix}{i}" for i in range(args.instances)]
    servers = [start_server(procs, name, redis_url, mongodb_url, actions_file, secret, **env) for name in names]
    for name, (url, _) in zip(names, servers, strict=True):
        procs.wait_ready(name, url)
    try:
        return asyncio.run(drive(args, [url for url, _ in servers], [proc for _, proc in servers], others))
    finally:
        for name, (_, proc) in zip(names, servers, strict=True):
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode} during the run:\n{procs.tail(name)}", file=sys.stderr)
            elif procs.log(name).stat().st_size:
                print(f"{name} logged (last lines):\n{procs.tail(name, 10)}", file=sys.stderr)
            proc.terminate()
            proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--transport", choices=["websocket", "polling"], default="websocket")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the servers, e.g. EVENT_LOOP=asyncio (repeatable)")
    parser.add_argument("--fair-play-cost", action="store_true",
                        help="compare servers with the audit trail and behaviour scoring off and on")
    parser.add_argument("--rounds", type=int, default=2, help="with --fair-play-cost: rounds of each")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample server0 with py-spy during the run: stacks to FILE, top functions printed")
    parser.add_argument("--top", type=int, default=15, help="with --profile: how many functions each table lists")
    parser.add_argument("--summarise", type=Path, metavar="FILE",
                        help="print the tables of a profile written earlier by --profile, and run nothing")
    args = parser.parse_args()
    if args.summarise:
        print(summarise_profile(args.summarise, args.top))
        return 0
    if args.profile and args.fair_play_cost:
        parser.error("--profile profiles one run: not with --fair-play-cost")
    if args.players < 1 or args.instances < 1 or args.seconds <= 0:
        parser.error("--players and --instances must be at least 1, --seconds above 0")
    redis_server = shutil.which("redis-server")
    if not redis_server:
        print("redis-server is missing: run make setup", file=sys.stderr)
        return 2

    sigterm_as_ctrl_c()
    tmp = Path(tempfile.mkdtemp(prefix="bench-completions-"))
    procs = Processes(tmp)
    try:
        redis_url, redis = start_redis(procs, redis_server)
        mongodb_url, store = start_store(procs)
        actions_file = tmp / "actions.json"
        actions_file.write_text(json.dumps(CATALOGUE))
        secret = uuid.uuid4().hex  # 32 characters, shared by every instance
        extra = dict(item.split("=", 1) for item in args.server_env)
        if not args.fair_play_cost:
            verdict, summary = run_once(args, procs, "server", redis_url, mongodb_url, actions_file, secret, extra,
                                        [("store", store), ("redis", redis)])
            print(verdict)
            print(summary)
            if args.profile:
                print(summarise_profile(args.profile, args.top))
            return 0 if verdict.startswith("consistent") else 1
        modes = {"off": {**extra, "AUDIT_TRAIL": "0", "BEHAVIOUR_SCORING": "0"}, "on": extra}
        figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        ok = True
        for r in range(args.rounds):
            for mode, env in modes.items():
                verdict, summary = run_once(args, procs, f"r{r}{mode}-", redis_url, mongodb_url, actions_file, secret,
                                            env, [("store", store), ("redis", redis)])
                ok = ok and verdict.startswith("consistent")
                print(f"[fair play {mode}, round {r + 1}] {verdict}\n  {summary}")
                figures[mode].append(args.measured)
        rate = {m: sorted(f[0] for f in figs)[len(figs) // 2] for m, figs in figures.items()}
        cpu = {m: sorted(f[1] for f in figs)[len(figs) // 2] for m, figs in figures.items()}
        print(f"fair play cost (median of {args.rounds} rounds each): completions/s off {rate['off']:.0f}, "
              f"on {rate['on']:.0f} (ratio {rate['on'] / rate['off']:.2f}); server CPU per completion "
              f"off {cpu['off']:.2f} ms, on {cpu['on']:.2f} ms: overhead {(cpu['on'] / cpu['off'] - 1) * 100:+.1f}%")
        return 0 if ok else 1
    except (KeyboardInterrupt, asyncio.CancelledError):  # asyncio.run turns a Ctrl-C into a cancellation
        print("interrupted; stopping what was started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
