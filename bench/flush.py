"""The flush alone: milliseconds per standing, this tree against another checkout, in one run.

Starts its own redis-server, then, round after round, queues a batch of standings through the
tree's own DeltaQueue (players spread over regions and guilds, every round a new version of
each, some players moving) and times the tree's own Flusher.flush_once on it, with a notifier
that only counts the deltas (no sockets: this is the apply, the diff and the published rows,
nothing else). Each tree runs in its own child process importing its own `app` package, on a
Redis emptied before it; the trees alternate, and the figure is the ratio of their medians.

    .venv/bin/python bench/flush.py [--peer PATH] [--runs 3] [--players 5000] [--batch 1000]
        [--rounds 12] [--regions 20] [--guilds 200]

--peer: another checkout of this repository (`git worktree add /some/where <commit>`) with
the same APIs used here (Standing.from_player, DeltaQueue, BoardStore, FlushLease, Flusher);
without it, this tree alone. bench/fanout.py prints the same figure with watchers and players
(the flush's time over the standings credited), where the emit to the watchers dominates it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import ROOT, Processes, start_redis

SELF = str(Path(__file__).resolve())


async def measure(redis_url: str, players: int = 5000, batch: int = 1000, rounds: int = 12, regions: int = 20,
                  guilds: int = 200) -> dict:
    """The tree's own code against `redis_url` (emptied first), ms per standing of each round;
    the first two rounds put the players on the boards. Leaves Redis empty (bench/fanout.py
    calls it before starting its servers)."""
    from redis.asyncio import Redis

    from app.leaderboard.boards import BoardStore, Standing
    from app.leaderboard.flusher import Flusher
    from app.leaderboard.lease import FlushLease
    from app.leaderboard.queue import DeltaQueue

    try:  # where the period keys are built: the period table, or (before it) the clock
        from app.leaderboard.periods import day_key, week_key
    except ImportError:
        from app.clock import day_key, week_key  # type: ignore[attr-defined,no-redef]

    class Counting:
        deltas = 0

        async def to_room(self, room: str, event: str, data: dict) -> None:
            self.deltas += 1

    try:  # REDIS_URL's every form (a Cluster's too), as the server builds its clients
        from app.redisconn import RedisSource
        redis = RedisSource(redis_url).client()
    except ImportError:  # a tree before them: one Redis
        redis = Redis.from_url(redis_url)
    await redis.flushdb()
    queue = DeltaQueue(redis)
    boards = BoardStore(redis)
    lease = FlushLease(redis, "bench", 60_000)
    notifier = Counting()
    flusher = Flusher(redis, queue, boards, lease, notifier, 100)  # type: ignore[arg-type]
    await queue.ensure_group()
    assert await lease.acquire()
    now = int(time.time() * 1000)
    per_standing: list[float] = []
    for r in range(rounds):
        docs = []
        for i in range(batch):
            n = (r * batch + i) % players
            version = 1 + (r * batch + i) // players
            moves = version // 5  # every fifth version a player has moved
            docs.append({"_id": f"p{n:06d}", "name": f"player {n}", "region": f"r{(n + moves) % regions}",
                         "guild": f"g{(n * 7 + moves) % guilds}" if n % 3 else None, "actions": version,
                         "total": 10 * version + n % 97, "days": {day_key(now): 10 * version},
                         "weeks": {week_key(now): 10 * version},
                         "last_ms": now + r, "moves": moves, "created_ms": 1})
        await queue.push_many([Standing.from_player(doc, now) for doc in docs])
        started = time.perf_counter()
        await flusher.flush_once()
        per_standing.append((time.perf_counter() - started) * 1000 / batch)
    await redis.flushdb()
    await redis.aclose()
    return {"ms_per_standing": per_standing, "deltas": notifier.deltas}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.root)
    result = asyncio.run(measure(args.redis, args.players, args.batch, args.rounds, args.regions, args.guilds))
    print(json.dumps(result), flush=True)


def run_tree(root: str, redis_url: str, args: argparse.Namespace) -> list[float]:
    out = subprocess.run(
        [sys.executable, SELF, "--child", "--root", root, "--redis", redis_url, "--players", str(args.players),
         "--batch", str(args.batch), "--rounds", str(args.rounds), "--regions", str(args.regions),
         "--guilds", str(args.guilds)],
        cwd=root, capture_output=True, text=True, check=True, timeout=600)
    rounds = json.loads(out.stdout.strip().splitlines()[-1])["ms_per_standing"]
    return rounds[2:]  # the first rounds put the players on the boards and warm the scripts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", help="another checkout to measure beside this one")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--players", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--guilds", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    trees = {"this tree": str(ROOT)}
    if args.peer:
        trees["peer"] = str(Path(args.peer).resolve())
    medians: dict[str, list[float]] = {name: [] for name in trees}
    tmp = Path(tempfile.mkdtemp(prefix="flush-"))
    procs = Processes(tmp)
    try:
        redis_url, _ = start_redis(procs, redis_server)
        print(f"flush alone: {args.batch} standings per flush of {args.players} players over {args.regions} "
              f"regions and {args.guilds} guilds, {args.rounds} rounds per run, {args.runs} runs per tree, "
              "alternated, one redis-server", flush=True)
        for run in range(args.runs):
            for name, root in trees.items():
                rounds = run_tree(root, redis_url, args)
                medians[name].append(statistics.median(rounds))
                print(f"  run {run + 1} {name}: {medians[name][-1]:.4f} ms per standing "
                      f"(rounds {min(rounds):.4f}-{max(rounds):.4f})", flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    ours = statistics.median(medians["this tree"])
    line = f"this tree: {ours:.4f} ms per standing (median of {args.runs} runs' medians)"
    if args.peer:
        peer = statistics.median(medians["peer"])
        line += f"; peer: {peer:.4f}; ratio this/peer {ours / peer:.2f}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
