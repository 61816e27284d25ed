"""Side by side: this server and a minimal Node.js socket.io 4 server, one delta fanned out to N watchers.

For each N (2,000 and 5,000 by default), in turn, each alone on the machine:

- ours: its own redis-server and MongoDB-wire store and one `python -m app` instance (abuse
  limits off, TOP_N 10). Ten players of region eu score first, so that `region:eu` has ten rows
  in each period; then N websocket watchers (socket.io-client, one node process:
  bench/watchers.mjs) watch it. Each delta is a real one, through the flusher and the emit: a
  new player completes (action:start, action:complete) an action worth more than anyone's
  score, so every row of each period (all, daily, weekly) moves down a rank: a 30-row delta,
  the largest a TOP_N = 10 board sends.
- Node: bench/node_server.mjs (socket.io on node's http module, websocket only, no
  per-message compression, like ours), the same receiver and N; each delta is a line on its
  stdin, and carries the boards our server sent in the same run, so both payloads are alike.

One warm-up delta, then DELTAS measured, one at a time: the next is triggered once the last
has reached every watcher (or none arrived for 2 s, or 15 s passed). Printed for each N:

- spread: the last minus the first watcher's arrival of one delta; median and p90 over the
  deltas, for both, and ours over Node's;
- RSS per idle connection: the server's VmRSS after the N watchers joined (and 2 s of quiet),
  minus before they connected, over N, for both, and ours over Node's;
- for ours, delta lag: the delta's `at` to the last watcher's arrival, p50 and p99.

--runs R repeats the whole thing and reports the median over the runs and the range between
them. Everything is on loopback, on this machine: the receiver shares its cores with the server,
and its own delay is inside both servers' figures.

usage: python bench/sidebyside.py [--watchers 2000,5000] [--runs 1] [--deltas 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import socketio
from support import (
    ACTION,
    CATALOGUE,
    ROOT,
    Processes,
    cpu_s,
    free_port,
    percentile,
    raise_fd_limit,
    read_json_line,
    rss_kb,
    send_line,
    sigterm_as_ctrl_c,
    start_redis,
    start_server,
    start_store,
)

from app.anticheat.proof import solve  # after support, which puts the repository root on sys.path

REGION = "eu"
ROOM = f"region:{REGION}"
TOP_N = 10
WARMUP = 1
SETTLE_S = 2.0  # quiet before reading a server's memory
WAIT_MS = 15_000  # longest wait for one delta to reach every watcher
PAUSE_S = 0.2  # between one delta reaching everyone and the next trigger
LAG_TARGET_MS = 250
CALL_TIMEOUT_S = 30


# ---------------------------------------------------------------- one trial: one server, N watchers

@dataclass
class Trial:
    server: str
    watchers: int
    watching: int
    rss_before_kb: int
    rss_after_kb: int
    deltas: list[dict]  # the measured ones, from the receiver's summary
    cpu_s: float  # the server's, over the measured deltas (ours: the completion that makes each one too)
    timed_out: int  # deltas that did not reach every watcher
    sample: dict | None = None  # the boards of a delta as the watchers got them
    receiver: dict = field(default_factory=dict)

    @property
    def rss_per_conn_kb(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / max(1, self.watching)

    @property
    def spreads(self) -> list[float]:
        return [d["last_ms"] - d["first_ms"] for d in self.deltas]

    def spread(self, p: int) -> float:
        return percentile(self.spreads, p)

    def lag(self, p: int) -> float:
        return percentile([d["last_ms"] for d in self.deltas], p)

    @property
    def payload_bytes(self) -> int:
        return max((d["bytes"] for d in self.deltas), default=0)

    @property
    def short(self) -> int:
        """Measured deltas that reached fewer than all watchers (skipped, or lost)."""
        return sum(1 for d in self.deltas if d["receivers"] < self.watching)


async def measure(procs: Processes, node: str, url: str, server: subprocess.Popen, name: str, watchers: int,
                  deltas: int, batch: int, trigger: Callable[[int], Awaitable[None]]) -> Trial:
    """Connect the receiver's N watchers to `url`, read the server's memory, then trigger WARMUP + deltas
    deltas one at a time; the receiver's summary of the measured ones."""
    await asyncio.sleep(SETTLE_S)
    before = rss_kb(server.pid)["VmRSS"]
    receiver = procs.start(
        f"{name}-watchers", [node, str(ROOT / "bench" / "watchers.mjs"), url, str(watchers), ROOM, str(batch)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    ready = await read_json_line(receiver, 600, "the watchers")
    if ready["watching"] < watchers:
        print(f"  warning: {name}: only {ready['watching']} of {watchers} watchers joined; errors {ready['errors']}",
              flush=True)
    await asyncio.sleep(SETTLE_S)
    after = rss_kb(server.pid)["VmRSS"]

    timed_out = 0
    cpu0 = 0.0
    for k in range(WARMUP + deltas):
        if k == WARMUP:
            cpu0 = cpu_s(server.pid)
        await trigger(k)
        send_line(receiver, f"wait {k + 1} {WAIT_MS}")
        answer = await read_json_line(receiver, WAIT_MS / 1000 + 30, "the watchers")
        if answer["complete"] < k + 1:
            timed_out += 1
        await asyncio.sleep(PAUSE_S)
    cpu = cpu_s(server.pid) - cpu0
    send_line(receiver, "stop")
    summary = await read_json_line(receiver, 120, "the watchers")
    await asyncio.to_thread(receiver.wait, 60)
    measured = summary["deltas"][WARMUP:]
    if len(summary["deltas"]) != WARMUP + deltas:
        print(f"  warning: {name}: the watchers saw {len(summary['deltas'])} deltas, {WARMUP + deltas} were triggered",
              flush=True)
    return Trial(server=name, watchers=watchers, watching=ready["watching"], rss_before_kb=before,
                 rss_after_kb=after, deltas=measured, cpu_s=cpu, timed_out=timed_out, sample=summary["sample"],
                 receiver=summary)


def catalogue(deltas: int) -> dict:
    """The benchmark's action (1 point, for the ten seated players), and one per delta, each worth more
    than all the points before it: its player takes rank 1 and every row moves down."""
    actions = dict(CATALOGUE["actions"])
    for k in range(WARMUP + deltas):
        actions[f"lead{k}"] = {**actions[ACTION], "points": 1000 * (k + 1), "per_minute": 10}
    return {"actions": actions}


async def player(http: aiohttp.ClientSession, url: str, player_id: str) -> socketio.AsyncClient:
    body = {"player_id": player_id, "name": f"Player {player_id}", "region": REGION}
    async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST /api/v1/sessions: {resp.status} {await resp.text()}")
        token = (await resp.json())["token"]
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
    return sio


async def complete(sio: socketio.AsyncClient, action: str) -> None:
    started = await sio.call("action:start", {"action": action}, timeout=CALL_TIMEOUT_S)
    if not started.get("ok"):
        raise RuntimeError(f"action:start {action}: {started}")
    challenge = started["challenge"]
    proof = solve(challenge["token"], challenge["difficulty"])
    ack = await sio.call("action:complete", {"token": challenge["token"], "proof": proof}, timeout=CALL_TIMEOUT_S)
    if not ack.get("ok") or ack.get("duplicate"):
        raise RuntimeError(f"action:complete {action}: {ack}")


def board_rows(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/v1/leaderboards/{ROOM}?limit={TOP_N}", timeout=5) as resp:
        return len(json.load(resp)["entries"])


async def ours(args: argparse.Namespace, node: str, redis_bin: str, tmp: Path, watchers: int, tag: str) -> Trial:
    procs = Processes(tmp)
    clients: list[socketio.AsyncClient] = []
    try:
        redis_url, _ = start_redis(procs, redis_bin)
        mongodb_url, _ = start_store(procs)
        actions_file = tmp / "actions.json"
        actions_file.write_text(json.dumps(catalogue(args.deltas)))
        url, server = start_server(procs, "server", redis_url, mongodb_url, actions_file,
                                   uuid.uuid4().hex + uuid.uuid4().hex, MONGODB_DB="bench", TOP_N=str(TOP_N))
        await asyncio.to_thread(procs.wait_ready, "server", url)
        async with aiohttp.ClientSession() as http:
            seated = [await player(http, url, f"seat{i:02d}") for i in range(TOP_N)]
            leads = [await player(http, url, f"lead{k:02d}") for k in range(WARMUP + args.deltas)]
        clients = seated + leads
        await asyncio.gather(*(complete(sio, ACTION) for sio in seated))
        # The board is full once a flush applied the ten; its delta went out before any watcher joined.
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(board_rows, url) < TOP_N:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ROOM} did not fill up within 30 s:\n{procs.tail('server')}")
            await asyncio.sleep(0.2)

        async def trigger(k: int) -> None:
            await complete(leads[k], f"lead{k}")

        return await measure(procs, node, url, server, f"{tag}-ours", watchers, args.deltas, args.batch, trigger)
    finally:
        await asyncio.gather(*(sio.disconnect() for sio in clients), return_exceptions=True)
        procs.stop_all()


async def theirs(args: argparse.Namespace, node: str, tmp: Path, watchers: int, tag: str, boards: dict) -> Trial:
    procs = Processes(tmp)
    try:
        boards_file = tmp / "boards.json"
        boards_file.write_text(json.dumps(boards))
        port = free_port()
        server = procs.start("node-server", [node, str(ROOT / "bench" / "node_server.mjs"), str(port), ROOM,
                                             str(boards_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        await read_json_line(server, 60, "the node server")

        async def trigger(k: int) -> None:
            send_line(server, "emit")
            await read_json_line(server, 30, "the node server")

        return await measure(procs, node, f"http://127.0.0.1:{port}", server, f"{tag}-node", watchers, args.deltas,
                             args.batch, trigger)
    finally:
        procs.stop_all()


def stand_in_boards() -> dict:
    """Boards shaped as ours sends them, for when ours delivered none to copy (its figures are then void)."""
    rows = [{"rank": r, "player_id": f"lead{r:02d}", "name": f"Player lead{r:02d}", "score": 1000 * r}
            for r in range(1, TOP_N + 1)]
    return {period: rows for period in ("all", "daily", "weekly")}


# ---------------------------------------------------------------- reporting

def describe(t: Trial) -> str:
    text = (f"spread p50 {t.spread(50):.0f} ms, p90 {t.spread(90):.0f} ms; RSS {t.rss_per_conn_kb:.1f} kB per "
            f"connection ({t.rss_before_kb / 1024:.0f} -> {t.rss_after_kb / 1024:.0f} MB); ")
    if t.server.endswith("ours"):
        text += f"lag p50 {t.lag(50):.0f} ms, p99 {t.lag(99):.0f} ms; "
    cpu_ms = t.cpu_s / max(1, len(t.deltas)) * 1000
    text += (f"{len(t.deltas)} deltas of {t.payload_bytes} bytes; server CPU {cpu_ms:.0f} ms per delta; "
             f"receiver loop lag max {t.receiver.get('loop_lag_max_ms', 0):.0f} ms")
    if t.short or t.timed_out or t.receiver.get("gaps") or t.receiver.get("disconnects"):
        text += (f"; MISSED: {t.short} deltas reached fewer than {t.watching} watchers, {t.timed_out} waits ran out, "
                 f"{t.receiver.get('gaps', 0)} seq gaps, {t.receiver.get('disconnects', 0)} disconnects")
    return text


def across(values: list[float], fmt: str = ".0f") -> str:
    """Median over the runs, and the range between them when there is more than one."""
    med = format(statistics.median(values), fmt)
    if len(values) < 2:
        return med
    return f"{med} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def verdict(ratio: float, limit: float) -> str:
    return "met" if ratio <= limit else "NOT met"


def report(args: argparse.Namespace, results: dict[int, list[tuple[Trial, Trial]]]) -> None:
    runs = len(next(iter(results.values())))
    how = "one run" if runs == 1 else f"median of {runs} runs (lowest-highest between runs)"
    print(f"\nsummary: {how}; {args.deltas} deltas each (after {WARMUP} warm-up), websocket watchers of one room, "
          f"one node receiver; {os.cpu_count()} cores shared by everything")
    ratios: dict[int, dict[str, float]] = {}
    for n, pairs in results.items():
        o = [p[0] for p in pairs]
        t = [p[1] for p in pairs]
        sp50 = [a.spread(50) / b.spread(50) for a, b in pairs]
        sp90 = [a.spread(90) / b.spread(90) for a, b in pairs]
        rss = [a.rss_per_conn_kb / b.rss_per_conn_kb for a, b in pairs]
        ratios[n] = {"spread": statistics.median(sp50), "rss": statistics.median(rss)}
        print(f"  {n} watchers:")
        for p, each in ((50, sp50), (90, sp90)):
            print(f"    spread p{p}: ours {across([x.spread(p) for x in o])} ms, "
                  f"node {across([x.spread(p) for x in t])} ms, ratio {across(each, '.2f')}")
        print(f"    RSS per idle connection: ours {across([x.rss_per_conn_kb for x in o], '.1f')} kB, "
              f"node {across([x.rss_per_conn_kb for x in t], '.1f')} kB, ratio {across(rss, '.2f')}")
        print(f"    ours, delta lag (`at` to the last watcher): p50 {across([x.lag(50) for x in o])} ms, "
              f"p99 {across([x.lag(99) for x in o])} ms")
        missed = sum(x.short + x.timed_out for x in o + t)
        if missed:
            print(f"    note: {missed} deltas did not reach every watcher (see the lines above)")
    print("  targets (issue 13):")
    for n, r in ratios.items():
        print(f"    spread p50 at {n} watchers <= node's: ratio {r['spread']:.2f} ({verdict(r['spread'], 1.0)})")
    for n, r in ratios.items():
        print(f"    RSS per idle connection at {n} watchers <= node's: ratio {r['rss']:.2f} ({verdict(r['rss'], 1.0)})")
    if 5000 in results:
        lag = statistics.median(p[0].lag(99) for p in results[5000])
        print(f"    delta lag p99 at 5000 watchers: {lag:.0f} ms here, with no other load "
              f"({lag / LAG_TARGET_MS:.2f} of the {LAG_TARGET_MS} ms target, which bench/fanout.py measures "
              "while players complete actions)")


# ---------------------------------------------------------------- the run

async def run(args: argparse.Namespace, node: str, redis_bin: str, tmp: Path) -> None:
    results: dict[int, list[tuple[Trial, Trial]]] = {n: [] for n in args.watchers}
    for r in range(args.runs):
        for n in args.watchers:
            tag = f"run{r + 1}-{n}"
            mine = await ours(args, node, redis_bin, Path(tempfile.mkdtemp(prefix=f"{tag}-ours-", dir=tmp)), n, tag)
            print(f"[run {r + 1}, {n} watchers] ours: {describe(mine)}", flush=True)
            boards = mine.sample
            if boards is None:
                print("  warning: ours delivered no delta; node sends stand-in boards of the same shape", flush=True)
                boards = stand_in_boards()
            other = await theirs(args, node, Path(tempfile.mkdtemp(prefix=f"{tag}-node-", dir=tmp)), n, tag, boards)
            print(f"[run {r + 1}, {n} watchers] node: {describe(other)}", flush=True)
            results[n].append((mine, other))
    report(args, results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=lambda s: [int(x) for x in s.split(",")], default=[2000, 5000],
                        help="watcher counts, comma-separated (default 2000,5000)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole comparison (default 1)")
    parser.add_argument("--deltas", type=int, default=12, help="measured deltas per server and count (default 12)")
    parser.add_argument("--batch", type=int, default=200, help="watchers opened at a time")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and print it")
    args = parser.parse_args()
    if args.runs < 1 or args.deltas < 1 or min(args.watchers) < 1:
        parser.error("--runs, --deltas and every --watchers count must be at least 1")

    node = shutil.which("node")
    redis_bin = shutil.which("redis-server")
    package = ROOT / "node_modules" / "socket.io" / "package.json"
    if not node or not redis_bin or not package.is_file():
        print("node, redis-server and the socket.io npm package are needed: run make setup", file=sys.stderr)
        return 2
    fd_limit = raise_fd_limit()
    needed = max(args.watchers) + 1000
    if fd_limit < needed:
        print(f"the fd limit is {fd_limit}; {needed} are needed (raise the hard limit: ulimit -Hn)", file=sys.stderr)
        return 2
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"side by side: ours (python -m app, 1 instance) and node (socket.io "
          f"{json.loads(package.read_text())['version']} on node {node_version}), "
          f"{', '.join(map(str, args.watchers))} watchers of {ROOM}, {args.runs} run(s); all on loopback", flush=True)

    sigterm_as_ctrl_c()  # a kill stops the children too
    tmp = Path(tempfile.mkdtemp(prefix="sidebyside-"))
    try:
        asyncio.run(run(args, node, redis_bin, tmp))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
