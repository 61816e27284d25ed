"""Fan-out benchmark: N JS watchers in one regional room while players complete actions.

Starts its own redis-server and MongoDB-wire store (SecantusDB), measures the store's
own ceiling for the writes of a completion, then starts the server instance(s) as
`python -m app`, connects N socket.io-client watchers (one node process,
bench/watchers.mjs) to `region:eu`, and drives completions from python-socketio
players in region eu. Prints:

- RSS per connection: the servers' VmRSS after the watchers joined, minus before, over N;
- delta lag: for each `leaderboard:delta`, the last watcher's receive time minus the
  delta's `at`; p50 and p99 over the deltas (and p50 over every single receipt);
- completions per second while watched, against 1,000/s and against the store's
  ceiling for the same writes measured alone in the same run;
- the flush per standing: alone, before the servers start (bench/flush.py's rounds on the
  same Redis: 1,000 standings a flush, no watchers), and in the run (the lease holder's
  flush time, emit to the watchers included, over the standings credited).

Everything runs on this machine: the clients share its cores with the server.

`--redis cluster` runs the same on a Redis Cluster of three masters it starts
(REDIS_URL=redis+cluster://…/); `--redis both` runs on one Redis, then on the cluster, and
prints the cluster's completions per second and delta lag as ratios of one Redis's.

usage: python bench/fanout.py [--watchers 5000] [--seconds 20] [--instances 1]
                              [--players 50] [--flush-ms 1000] [--redis single|cluster|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import socketio
from flush import measure as flush_alone
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

ROOM_REGION = "eu"
ROOM = f"region:{ROOM_REGION}"
LAG_TARGET_MS = 250
RATE_TARGET = 1000
CEILING_SHARE = 0.8
SELF = str(Path(__file__).resolve())  # this script, run again as each driver process


# ---------------------------------------------------------------- the store's ceiling

async def store_ceiling(mongodb_url: str, players: int, seconds: float) -> dict[str, float]:
    """The writes of one completion, straight to the store, with `players` completions in
    flight at once: (a) one by one, as a batch of one each (credit_many([rec]) + finish) (log insert,
    totals update, read-back, ack update); (b) group committed, as the server does them
    (BatchedCredits over credit_many/finish_many). Journaled (j=True, the repository's
    write concern), through the server's own repository code, without the server; the
    ceiling is the better of the two."""
    return {mode: await _ceiling_run(mongodb_url, players, seconds, batched=mode == "batched")
            for mode in ("one by one", "batched")}


async def _ceiling_run(mongodb_url: str, players: int, seconds: float, batched: bool) -> float:
    from app.anticheat.tokens import new_action_id
    from app.clock import now_ms
    from app.players.store import PlayerStore
    from app.scores.batching import BatchedCredits
    from app.scores.repository import CreditRecord, ScoreRepository, open_database

    client, db = open_database(mongodb_url, f"ceiling_{uuid.uuid4().hex[:8]}", 10_000)
    repo = ScoreRepository(db)
    writes = BatchedCredits(repo)
    try:
        await repo.ensure_indexes()
        ids = [f"c{i:04d}" for i in range(players)]
        for pid in ids:
            await PlayerStore(db).create(pid, pid, ROOM_REGION, None, now_ms(), None)
        if batched:
            writes.start()
        async def credit_one(rec: CreditRecord):
            return (await repo.credit_many([rec]))[0]

        async def finish_one(action_id: str, ack: dict):
            return await repo.finish(action_id, ack, now_ms())

        credit = writes.credit if batched else credit_one
        finish = writes.finish if batched else finish_one

        async def loop(pid: str, deadline: float) -> int:
            done = 0
            while time.monotonic() < deadline:
                rec = CreditRecord(new_action_id(), pid, ACTION, 1, now_ms())
                outcome = await credit(rec)
                assert outcome.after is not None, outcome
                ack = {"action_id": rec.action_id, "points": rec.points, "score": {"total": outcome.after["total"]},
                       "achievements": []}
                await finish(rec.action_id, ack)
                if time.monotonic() <= deadline:
                    done += 1
            return done

        # A short warm-up, then the timed run.
        warm = time.monotonic() + min(1.0, seconds / 4)
        await asyncio.gather(*(loop(pid, warm) for pid in ids))
        started = time.monotonic()
        done = sum(await asyncio.gather(*(loop(pid, started + seconds) for pid in ids)))
        return done / (time.monotonic() - started)
    finally:
        await writes.stop()
        await client.drop_database(db.name)
        await client.close()


# ---------------------------------------------------------------- players (a child process each)

async def drive(urls: list[str], players: int, prefix: str, seconds: float) -> None:
    """Hidden mode `--drive`: connect `players` players, print {"ready"}, wait for "go" on
    stdin, complete actions for `seconds`, print the counts."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[socketio.AsyncClient] = []
    async with aiohttp.ClientSession() as http:
        for i in range(players):
            url = urls[i % len(urls)]
            pid = f"{prefix}{i:04d}"
            body = {"player_id": pid, "name": pid, "region": ROOM_REGION}
            async with http.post(f"{url}/api/v1/sessions", json=body) as resp:
                assert resp.status == 201, await resp.text()
                token = (await resp.json())["token"]
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
            clients.append(sio)
    print(json.dumps({"ready": len(clients)}), flush=True)
    if not await reader.readline():
        return  # the benchmark went away before "go"

    credited = 0
    errors: dict[str, int] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    async def play(sio: socketio.AsyncClient) -> None:
        nonlocal credited
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                reply = await sio.call("action:start", {"action": ACTION}, timeout=30)
                if not reply.get("ok"):
                    code = reply["error"]["code"]
                    errors[code] = errors.get(code, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                challenge = reply["challenge"]
                proof = solve(challenge["token"], challenge["difficulty"])
                ack = await sio.call("action:complete", {"token": challenge["token"], "proof": proof}, timeout=30)
            except socketio.exceptions.TimeoutError:
                errors["timeout"] = errors.get("timeout", 0) + 1
                continue
            t1 = time.monotonic()
            if not ack.get("ok"):
                code = ack["error"]["code"]
                errors[code] = errors.get(code, 0) + 1
            elif ack.get("duplicate"):
                errors["duplicate"] = errors.get("duplicate", 0) + 1
            elif t1 <= deadline:
                credited += 1
                latencies.append(t1 - t0)

    await asyncio.gather(*(play(sio) for sio in clients))
    elapsed = min(time.monotonic(), deadline) - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "credited": credited, "seconds": elapsed, "errors": errors, "latencies": latencies,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }), flush=True)
    for sio in clients:
        await sio.disconnect()


# ---------------------------------------------------------------- the run

def start_cluster(procs: Processes, redis_server: str) -> tuple[str, list[subprocess.Popen]]:
    """Three throwaway masters made one cluster; returns its URL and their processes."""
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port <= 55535 and port not in ports:  # its cluster bus listens 10000 above it
            ports.append(port)
    nodes = []
    for port in ports:
        node_dir = procs.dir / f"cluster-{port}"
        node_dir.mkdir()
        nodes.append(procs.start(f"redis{port}", [
            redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"), "--dir", str(node_dir)]))
        procs.wait_for_port(f"redis{port}", port)
    cli = shutil.which("redis-cli")
    if not cli:
        raise SystemExit("redis-cli is needed for --redis cluster: run make setup")
    subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
                    "--cluster-yes"], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run([cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True).stdout
        if "cluster_state:ok" in out:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the cluster did not come up")
        time.sleep(0.2)
    return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports) + "/", nodes


async def run(args: argparse.Namespace, procs: Processes, tmp: Path) -> dict:
    fd_limit = raise_fd_limit()
    needed = args.watchers + args.players + 1000
    if fd_limit < needed:
        raise SystemExit(f"the fd limit is {fd_limit}; {needed} are needed (raise the hard limit: ulimit -Hn)")
    node = shutil.which("node")
    redis_bin = shutil.which("redis-server")
    if not node or not redis_bin:
        raise SystemExit("node and redis-server are needed: run make setup")

    if args.redis == "cluster":
        redis_url, redis_procs = start_cluster(procs, redis_bin)
    else:
        redis_url, redis_proc = start_redis(procs, redis_bin)
        redis_procs = [redis_proc]
    # The flush alone first (bench/flush.py), on the Redis the server will use (emptied after
    # it), before the store starts: its start-up work would share the cores.
    alone = (await flush_alone(redis_url))["ms_per_standing"][2:]
    mongodb_url, store_proc = start_store(procs)

    print(f"fanout on {'a 3-master Redis Cluster' if args.redis == 'cluster' else 'one Redis'}: "
          f"{args.watchers} watchers in {ROOM}, {args.players} players, {args.instances} instance(s), "
          f"LEADERBOARD_FLUSH_MS={args.flush_ms}, {args.seconds:g} s; {os.cpu_count()} cores shared by the server(s), "
          "redis, the store and every client (node watchers, python players) - all on loopback", flush=True)

    print(f"flush alone (1000 standings a flush of 5000 players, no watchers; bench/flush.py): "
          f"{statistics.median(alone):.3f} ms per standing (rounds {min(alone):.3f}-{max(alone):.3f})", flush=True)
    ceiling = await store_ceiling(mongodb_url, args.players, args.store_seconds)
    print(f"store alone ({args.players} completions in flight, j=True): "
          f"{ceiling['one by one']:.0f}/s one by one (ScoreRepository.credit + finish), "
          f"{ceiling['batched']:.0f}/s group-committed", flush=True)

    actions_file = tmp / "actions.json"
    actions_file.write_text(json.dumps(CATALOGUE))
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    names = [f"instance{i}" for i in range(args.instances)]
    instances = [start_server(procs, name, redis_url, mongodb_url, actions_file, secret, MONGODB_DB="bench",
                              LEADERBOARD_FLUSH_MS=str(args.flush_ms)) for name in names]
    for name, (url, _) in zip(names, instances, strict=True):
        await asyncio.to_thread(procs.wait_ready, name, url)
    urls = [url for url, _ in instances]
    server_pids = [proc.pid for _, proc in instances]
    await asyncio.sleep(1)
    rss_before = sum(rss_kb(pid)["VmRSS"] for pid in server_pids)

    # The watchers: one node process, N websocket connections, opened in batches.
    t0 = time.monotonic()
    watchers = procs.start(
        "watchers", [node, str(ROOT / "bench" / "watchers.mjs"), ",".join(urls), str(args.watchers), ROOM,
                     str(args.batch), "0" if args.no_deflate else "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    ready = await read_json_line(watchers, 600, "the watchers")
    connect_s = time.monotonic() - t0
    if ready["watching"] < args.watchers:
        print(f"warning: only {ready['watching']} of {args.watchers} watchers joined; errors {ready['errors']}")
    await asyncio.sleep(2)  # let the server settle (garbage, buffers) before reading its memory
    rss_after = sum(rss_kb(pid)["VmRSS"] for pid in server_pids)
    per_conn_kb = (rss_after - rss_before) / max(1, ready["watching"])
    print(f"watchers: {ready['watching']} connected (websocket), RSS {per_conn_kb:.1f} KB per connection "
          f"(no target; server RSS {rss_before / 1024:.1f} MB before, {rss_after / 1024:.1f} MB after; "
          f"{'permessage-deflate not offered' if args.no_deflate else 'permessage-deflate offered, as browsers do'}; "
          f"joined in {connect_s:.1f} s)", flush=True)
    if ready["watch_retries"]:
        print(f"  note: {ready['watch_retries']} `watch` calls answered `unavailable` while the watchers joined "
              f"({args.batch} at a time) and were retried; see the instance log (--keep)")

    # The players: child processes, started together once all are connected.
    drivers = []
    per_driver = [args.players // args.driver_procs + (1 if i < args.players % args.driver_procs else 0)
                  for i in range(args.driver_procs)]
    for d, count in enumerate(per_driver):
        proc = procs.start(
            f"driver{d}", [sys.executable, SELF, "--drive", ",".join(urls),
                           "--players", str(count), "--prefix", f"p{d}_", "--seconds", str(args.seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        drivers.append(proc)
    for proc in drivers:
        await read_json_line(proc, 120, "a player process")

    watched = {"server": server_pids, "store": [store_proc.pid], "redis": [p.pid for p in redis_procs],
               "node watchers": [watchers.pid], "players": [p.pid for p in drivers]}
    cpu_before = {name: sum(cpu_s(pid) for pid in pids) for name, pids in watched.items()}
    wall0 = time.monotonic()
    for proc in drivers:
        send_line(proc, "go")
    results = [await read_json_line(proc, args.seconds + 120, "a player process") for proc in drivers]
    wall = time.monotonic() - wall0
    cpu_after = {name: sum(cpu_s(pid) for pid in pids) for name, pids in watched.items()}
    for proc in drivers:
        await asyncio.to_thread(proc.wait, 30)

    # The last flush after the drive still reaches the watchers: wait it out, then ask.
    await asyncio.sleep(2 * args.flush_ms / 1000 + 2)
    send_line(watchers, "stop")
    summary = await read_json_line(watchers, 120, "the watchers")
    await asyncio.to_thread(watchers.wait, 30)

    flushes, flush_s = await scrape(urls)

    # ---- figures
    deltas = summary["deltas"]
    last = [d["last_ms"] for d in deltas]
    p50, p99 = percentile(last, 50), percentile(last, 99)
    short = [d for d in deltas if d["receivers"] < summary["watching"]]
    if deltas:
        print(f"delta lag: p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(deltas)} deltas "
              f"(target p99 < {LAG_TARGET_MS} ms: {p99 / LAG_TARGET_MS:.2f} of target)", flush=True)
        print(f"  lag is `at` to the last of {summary['watching']} watchers; over every single receipt: "
              f"p50 {summary['receipt_p50_ms']:.0f} ms, p99 {summary['receipt_p99_ms']:.0f} ms; "
              f"to the first watcher: p50 {percentile([d['first_ms'] for d in deltas], 50):.0f} ms")
    else:
        print("delta lag: no deltas arrived", flush=True)
    if short or summary["gaps"] or summary["disconnects"]:
        print(f"  missed: {len(short)} deltas reached fewer than all watchers; {summary['gaps']} seq gaps; "
              f"{summary['disconnects']} disconnects; errors {summary['errors']}")

    credited = sum(r["credited"] for r in results)
    seconds = max(r["seconds"] for r in results)
    rate = credited / seconds
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
    latencies = [x for r in results for x in r["latencies"]]
    best = max(ceiling.values())
    share = rate / best if best else 0.0
    verdict = "met" if rate >= RATE_TARGET or share >= CEILING_SHARE else "NOT met"
    print(f"completions: {rate:.0f}/s while watched; store ceiling {best:.0f}/s alone; "
          f"{share:.2f} of the store ceiling, {rate / RATE_TARGET:.2f} of {RATE_TARGET}/s "
          f"(target >= {CEILING_SHARE} of the ceiling or >= {RATE_TARGET}/s: {verdict})", flush=True)
    if latencies:
        print(f"  completion round trip (start + complete): p50 {percentile(latencies, 50) * 1000:.0f} ms, "
              f"p99 {percentile(latencies, 99) * 1000:.0f} ms; {credited} credited; errors {errors or 'none'}")
    cpu = {name: (cpu_after[name] - cpu_before[name]) / wall for name in watched}
    print(f"  CPU while driving (cores of {os.cpu_count()}): "
          + ", ".join(f"{name} {share:.2f}" for name, share in cpu.items()), flush=True)
    print(f"  node watcher process: event-loop lag max {summary['loop_lag_max_ms']:.0f} ms, "
          f"mean {summary['loop_lag_mean_ms']:.1f} ms, RSS {summary['rss_mb']:.0f} MB "
          "(its own delay is inside the lag figures)")
    if flushes:
        # Every credited completion queues one standing, and every standing is applied by one flush.
        print(f"  server: {flushes:.0f} flushes, mean {flush_s / flushes * 1000:.1f} ms each (apply + diff + publish), "
              f"{flush_s * 1000 / max(1, credited):.3f} ms per standing ({credited} standings)", flush=True)
    return {"rate": rate, "p50": p50 if deltas else float("nan"), "p99": p99 if deltas else float("nan")}


async def run_then_stop(args: argparse.Namespace, procs: Processes, tmp: Path) -> dict:
    """Children are stopped before the loop closes, so no reader thread is left waiting on one."""
    try:
        return await run(args, procs, tmp)
    finally:
        procs.stop_all()


async def scrape(urls: list[str]) -> tuple[float, float]:
    """Flushes and their summed seconds, from the instances' /metrics."""
    count = total = 0.0
    async with aiohttp.ClientSession() as http:
        for url in urls:
            try:
                async with http.get(f"{url}/metrics") as resp:
                    text = await resp.text()
            except aiohttp.ClientError:
                continue
            for line in text.splitlines():
                if line.startswith("scoreboard_flush_seconds_count"):
                    count += float(line.split()[-1])
                elif line.startswith("scoreboard_flush_seconds_sum"):
                    total += float(line.split()[-1])
    return count, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--flush-ms", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=200, help="watchers opened at a time")
    parser.add_argument("--store-seconds", type=float, default=5, help="length of each store-ceiling run")
    parser.add_argument("--driver-procs", type=int, default=1, help="processes the players are spread over")
    parser.add_argument("--no-deflate", action="store_true",
                        help="watchers do not offer permessage-deflate (browsers do; for comparison)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, store files) and print it")
    parser.add_argument("--redis", choices=("single", "cluster", "both"), default="single",
                        help="one redis-server, a 3-master Redis Cluster, or one run on each with the ratios")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="p_", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.drive:
        asyncio.run(drive(args.drive.split(","), args.players, args.prefix, args.seconds))
        return 0

    sigterm_as_ctrl_c()  # a kill stops the children too
    figures: dict[str, dict] = {}
    for kind in ("single", "cluster") if args.redis == "both" else (args.redis,):
        tmp = Path(tempfile.mkdtemp(prefix=f"fanout-{kind}-"))
        procs = Processes(tmp)
        try:
            figures[kind] = asyncio.run(run_then_stop(argparse.Namespace(**{**vars(args), "redis": kind}), procs, tmp))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
            if args.keep:
                print(f"logs and store files kept in {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    if len(figures) == 2:
        one, cluster = figures["single"], figures["cluster"]
        print(f"cluster / one Redis ({args.instances} instances): completions {cluster['rate']:.0f}/s vs "
              f"{one['rate']:.0f}/s = {cluster['rate'] / max(one['rate'], 1e-9):.2f}; delta lag p50 "
              f"{cluster['p50']:.0f} vs {one['p50']:.0f} ms = {cluster['p50'] / max(one['p50'], 1e-9):.2f}, p99 "
              f"{cluster['p99']:.0f} vs {one['p99']:.0f} ms = {cluster['p99'] / max(one['p99'], 1e-9):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
