"""Load with faults (issue 5): under steady traffic on two instances, stop and restart Redis,
then the MongoDB-wire server; afterwards every acknowledged point is in MongoDB and on the
boards, none twice, and deltas flow again without restarting anything.

The failure model under test (DESIGN.md): MongoDB down -> completions answer `unavailable`,
nothing is credited, recovery needs no restart. Redis down -> completions still credit in
MongoDB and are acknowledged; deltas pause; Redis comes back empty, the read model is
rebuilt from MongoDB and deltas resume.

Recovery means without a restart and at once: when /readyz says 200 again, a burst of
concurrent reads succeeds and no request is refused any more.

Clients behave as PROTOCOL.md asks: a completion is retried with the same token and proof
until it is acknowledged (on `unavailable`, a lost ack or a dropped connection); a refused
start is retried later. Every started challenge is completed, so the action log must hold
exactly the acknowledged action ids.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace

import aiohttp
import socketio
from pymongo import AsyncMongoClient

from app.anticheat.proof import solve
from tests.processes import DocumentStoreProcess, Instance, RedisProcess
from tests.support import Spectator, eventually

N_PLAYERS = 10
REGIONS = ("eu", "na")
GUILD = "owls"
ACTION = "quick"
POINTS = 10

WARMUP_S = 3.0
REDIS_DOWN_S = 3.0
BETWEEN_S = 5.0
MONGO_DOWN_S = 3.0
TAIL_S = 3.0
CALL_TIMEOUT_S = 8.0
RETRY_PAUSE_S = 0.2
SETTLE_S = 20.0
BURST = 30  # concurrent reads per url in a burst


def now() -> float:
    return time.monotonic()


_WALL_OFFSET = time.time() - time.monotonic()


def wall(t: float) -> str:
    """A monotonic time as UTC wall-clock, to line up with the instances' logs."""
    wall_s = t + _WALL_OFFSET
    return time.strftime("%H:%M:%S", time.gmtime(wall_s)) + f".{int(wall_s * 1000) % 1000:03d}"


@dataclass
class Reply:
    event: str
    sent: float
    received: float
    body: dict


@dataclass
class Player:
    """A player on one instance: loops action:start, play, action:complete (retried until acked)."""

    pid: str
    region: str
    guild: str | None
    url: str
    token: str
    sio: socketio.AsyncClient | None = None
    replies: list[Reply] = field(default_factory=list)
    oks: list[Reply] = field(default_factory=list)  # ok acks of action:complete
    challenges: list[dict] = field(default_factory=list)  # every challenge started ok
    lost: int = 0  # calls that timed out or met a dropped connection
    reconnects: int = 0
    problems: list[str] = field(default_factory=list)

    async def connect(self) -> None:
        if self.sio is not None:
            try:
                await self.sio.disconnect()
            except Exception:  # noqa: BLE001 - the old socket may be half gone
                pass
            self.reconnects += 1
        self.sio = socketio.AsyncClient(reconnection=False)
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()

    async def call(self, event: str, data: dict, hard_deadline: float) -> Reply | None:
        """One request; None when the ack was lost (timeout, disconnect): the caller retries."""
        sent = now()
        try:
            if self.sio is None or not self.sio.connected:
                await self.connect()
            assert self.sio is not None
            timeout = max(0.5, min(CALL_TIMEOUT_S, hard_deadline - now()))
            body = await self.sio.call(event, data, timeout=timeout)
        except (TimeoutError, socketio.exceptions.SocketIOError, aiohttp.ClientError, OSError):
            self.lost += 1
            await asyncio.sleep(RETRY_PAUSE_S)
            return None
        reply = Reply(event, sent, now(), body)
        self.replies.append(reply)
        return reply

    async def start_challenge(self, traffic_stop: asyncio.Event, hard_deadline: float) -> dict | None:
        while not traffic_stop.is_set() and now() < hard_deadline:
            reply = await self.call("action:start", {"action": ACTION}, hard_deadline)
            if reply is None:
                continue
            if reply.body.get("ok"):
                self.challenges.append(reply.body["challenge"])
                return reply.body["challenge"]
            error = reply.body["error"]
            if error["code"] not in ("unavailable", "rate_limited"):
                self.problems.append(f"action:start answered {reply.body}")
                return None
            await asyncio.sleep(max(RETRY_PAUSE_S, error.get("retry_after_ms", 0) / 1000))
        return None

    async def complete(self, challenge: dict, hard_deadline: float) -> None:
        """Same token and proof until an ok ack, however long the stores are away."""
        data = {"token": challenge["token"], "proof": solve(challenge["token"], challenge["difficulty"])}
        while now() < hard_deadline:
            reply = await self.call("action:complete", data, hard_deadline)
            if reply is None:
                continue
            if reply.body.get("ok"):
                if reply.body["action_id"] != challenge["action_id"]:
                    self.problems.append(f"ack for {challenge['action_id']} names another action: {reply.body}")
                self.oks.append(reply)
                return
            if reply.body["error"]["code"] != "unavailable":
                self.problems.append(f"action:complete of {challenge['action_id']} answered {reply.body}")
                return
            await asyncio.sleep(RETRY_PAUSE_S)
        self.problems.append(f"no ack for {challenge['action_id']} before the test's deadline")

    async def run(self, traffic_stop: asyncio.Event, hard_deadline: float) -> None:
        while not traffic_stop.is_set():
            challenge = await self.start_challenge(traffic_stop, hard_deadline)
            if challenge is None:
                return
            await asyncio.sleep(random.uniform(0.2, 0.8))  # playing
            await self.complete(challenge, hard_deadline)
            await asyncio.sleep(random.uniform(0.05, 0.15))


async def all_ready(http: aiohttp.ClientSession, nodes: list[Instance]) -> None:
    for node in nodes:
        status, body = await get_json(http, f"{node.url}/readyz")
        assert status == 200, body


async def read_burst(http: aiohttp.ClientSession, urls: list[str], per_url: int = BURST) -> list[str]:
    """`per_url` concurrent GETs of each url; the failures, as text."""

    async def one(url: str) -> str | None:
        try:
            async with http.get(url) as resp:
                if resp.status != 200:
                    return f"{url}: {resp.status} {(await resp.text())[:200]}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{url}: {exc!r}"
        return None

    results = await asyncio.gather(*(one(url) for url in urls for _ in range(per_url)))
    return [r for r in results if r is not None]


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_every_acknowledged_point_survives_redis_and_mongodb_restarts_under_load(settings, tmp_path):
    test_started = now()
    redis_srv = RedisProcess()
    store = DocumentStoreProcess(tmp_path / "own-documents")
    config = replace(settings, redis_url=redis_srv.url, mongodb_url=store.url, store_timeout_ms=1000)
    nodes: list[Instance] = []
    players: list[Player] = []
    spectators: list[Spectator] = []
    traffic: list[asyncio.Task] = []
    mongo = AsyncMongoClient(store.url, serverSelectionTimeoutMS=5000, tz_aware=True)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        nodes = [Instance(config, STORE_TIMEOUT_MS="1000") for _ in range(2)]
        await asyncio.gather(*(node.ready() for node in nodes))

        # Players spread over both instances, both regions; the first four share a guild.
        for i in range(N_PLAYERS):
            node = nodes[i % 2]
            pid = f"lf{i}-{uuid.uuid4().hex[:6]}"
            region = REGIONS[(i // 2) % 2]
            guild = GUILD if i < 4 else None
            body = {"player_id": pid, "name": f"Load {i}", "region": region, **({"guild": guild} if guild else {})}
            async with http.post(f"{node.url}/api/v1/sessions", json=body) as resp:
                assert resp.status == 201, await resp.text()
                token = (await resp.json())["token"]
            players.append(Player(pid, region, guild, node.url, token))
        await asyncio.gather(*(p.connect() for p in players))
        # One spectator per instance, watching all through the faults.
        spectators = [Spectator(node.url) for node in nodes]
        for spectator in spectators:
            await spectator.watch("region:eu")

        # Steady traffic, with the faults injected from here. The stores' stop and start
        # block (process wait, port polling): run them off the event loop so traffic goes on.
        hard_deadline = now() + 40.0
        traffic_stop = asyncio.Event()
        traffic = [asyncio.create_task(p.run(traffic_stop, hard_deadline)) for p in players]

        # A burst of concurrent reads on each instance, as a crowd of spectators makes: it
        # also opens many pooled connections to both stores, which the restarts then cut.
        board_urls = [f"{node.url}/api/v1/leaderboards/global?limit=100" for node in nodes]
        profile_urls = [f"{node.url}/api/v1/players/{players[i].pid}" for i, node in enumerate(nodes)]
        await asyncio.sleep(1.0)
        warm_failures = await read_burst(http, board_urls + profile_urls)
        await asyncio.sleep(WARMUP_S - 1.0)

        async def outage(server: RedisProcess | DocumentStoreProcess, down_s: float) -> tuple[float, ...]:
            """Stop the server off the event loop (traffic goes on), start it again after down_s,
            wait until both instances say they are ready; the times of stopping, down, back, ready."""
            stopping = now()
            await asyncio.to_thread(server.stop)
            down = now()
            await asyncio.sleep(down_s)
            back = now()
            await asyncio.to_thread(server.start)
            await eventually(lambda: all_ready(http, nodes), timeout=10, interval=0.1)
            return stopping, down, back, now()

        # Once both instances say they are ready again, reads succeed again.
        redis_stopping, redis_down, redis_back, redis_ready = await outage(redis_srv, REDIS_DOWN_S)
        redis_burst_failures = await read_burst(http, board_urls)
        await asyncio.sleep(max(0.0, BETWEEN_S - (now() - redis_back)))

        mongo_stopping, mongo_down, mongo_back, mongo_ready = await outage(store, MONGO_DOWN_S)
        mongo_burst_failures = await read_burst(http, profile_urls)
        await asyncio.sleep(max(0.0, TAIL_S - (now() - mongo_back)))
        traffic_stop.set()
        # Every started challenge is completed (retried until acked) before a player stops.
        await asyncio.wait_for(asyncio.gather(*traffic), timeout=max(1.0, hard_deadline - now() + 5))
        traffic_done = now()

        problems = [f"{p.pid}: {msg}" for p in players for msg in p.problems]
        assert problems == [], problems

        # What the clients were told.
        acks: dict[str, list[dict]] = {}
        owner: dict[str, str] = {}
        for p in players:
            for reply in p.oks:
                acks.setdefault(reply.body["action_id"], []).append(reply.body)
                owner[reply.body["action_id"]] = p.pid
        started_ids = {c["action_id"] for p in players for c in p.challenges}
        assert set(acks) == started_ids, "a started challenge was never acknowledged"
        # (4) one first ack per action; a repeat is marked duplicate and carries the same ack.
        for action_id, seen in acks.items():
            firsts = [a for a in seen if a["duplicate"] is False]
            assert len(firsts) <= 1, f"{action_id} acknowledged as new {len(firsts)} times: {seen}"
            assert all(a["points"] == POINTS for a in seen), seen
            bare = [{k: v for k, v in a.items() if k != "duplicate"} for a in seen]
            assert all(b == bare[0] for b in bare), f"acks of {action_id} differ: {seen}"
        expected = {p.pid: POINTS * len({r.body["action_id"] for r in p.oks}) for p in players}
        counts = {p.pid: len({r.body["action_id"] for r in p.oks}) for p in players}

        # (5) the faults really met traffic.
        ok_while_redis_down = [r for p in players for r in p.oks if r.sent >= redis_down and r.received <= redis_back]
        assert ok_while_redis_down, "no completion was acknowledged while Redis was down: the test proved nothing"
        unavailable_while_mongo_down = [
            r for p in players for r in p.replies
            if r.event == "action:complete" and not r.body.get("ok") and r.body["error"]["code"] == "unavailable"
            and r.sent >= mongo_down and r.received <= mongo_back
        ]
        assert unavailable_while_mongo_down, "no completion met the MongoDB outage: the test proved nothing"
        ok_while_mongo_down = [r.body for p in players for r in p.oks
                               if r.sent >= mongo_down and r.received <= mongo_back]
        assert ok_while_mongo_down == [], f"acknowledged while MongoDB was down: {ok_while_mongo_down}"
        oks_after_mongo = [r for p in players for r in p.oks if r.sent >= mongo_back]
        assert oks_after_mongo, "nothing was acknowledged after MongoDB came back"

        # (1) MongoDB totals equal the distinct acknowledged points, per player.
        db = mongo[config.mongodb_db]
        docs = {d["_id"]: d async for d in db["players"].find({}, projection={"total": 1, "actions": 1})}
        assert {pid: d.get("total", 0) for pid, d in docs.items()} == expected
        assert {pid: d.get("actions", 0) for pid, d in docs.items()} == counts
        # (2) the action log: exactly one entry per acknowledged action id, and none else.
        log = [d async for d in db["actions"].find({}, projection={"player_id": 1, "points": 1, "state": 1, "ack": 1})]
        logged = Counter(d["_id"] for d in log)
        assert set(logged) == set(acks), (
            f"logged but never acked: {sorted(set(logged) - set(acks))}; "
            f"acked, not logged: {sorted(set(acks) - set(logged))}")
        assert all(n == 1 for n in logged.values())
        for d in log:
            assert d["player_id"] == owner[d["_id"]] and d["points"] == POINTS, d
            assert d.get("state") == "done" and d.get("ack", {}).get("action_id") == d["_id"], d

        # (6) both instances lived through it, and say they are ready again.
        for node in nodes:
            assert node.proc.poll() is None, f"instance on {node.url} exited with {node.proc.returncode}"

        await eventually(lambda: all_ready(http, nodes), timeout=10)

        # (3) the boards, read from either instance, equal MongoDB's totals.
        boards = {
            "global": expected,
            **{f"region:{r}": {p.pid: expected[p.pid] for p in players if p.region == r} for r in REGIONS},
            f"guild:{GUILD}": {p.pid: expected[p.pid] for p in players if p.guild == GUILD},
        }

        async def boards_match() -> None:
            for node in nodes:
                for board, want in boards.items():
                    status, body = await get_json(http, f"{node.url}/api/v1/leaderboards/{board}?limit=100")
                    assert status == 200, body
                    got = {row["player_id"]: row["score"] for row in body["entries"]}
                    assert got == want, f"{board} on {node.url}: {got} != {want}"
                    assert body["total_players"] == len(want), body

        await eventually(boards_match, timeout=SETTLE_S, interval=0.2)
        settled = now()

        # A fresh spectator's snapshot shows the rebuilt board.
        fresh = Spectator(nodes[0].url)
        spectators.append(fresh)
        eu = boards["region:eu"]

        async def snapshot_matches() -> None:
            snap = await fresh.sio.call("watch", {"room": "region:eu"}, timeout=10)
            assert snap["ok"], snap
            assert {r["player_id"]: r["score"] for r in snap["snapshot"]["boards"]["all"]} == eu, snap

        await fresh.watch("region:eu")
        await eventually(snapshot_matches, timeout=10, interval=0.2)

        # (7) deltas resume without a restart: a new completion reaches watchers on both instances.
        scorer = next(p for p in players if p.region == "eu" and p.url == nodes[1].url)
        mark = now()
        challenge = await scorer.start_challenge(asyncio.Event(), now() + 10)
        assert challenge is not None, scorer.problems
        await scorer.complete(challenge, now() + 10)
        assert scorer.problems == [] and scorer.oks[-1].body["score"]["total"] == expected[scorer.pid] + POINTS
        new_total = expected[scorer.pid] + POINTS

        async def delta_seen() -> None:
            for spectator in spectators:
                rows = [row for at, d in spectator.deltas if at >= mark for row in d["boards"].get("all", [])]
                assert {"player_id": scorer.pid, "score": new_total} in [
                    {"player_id": r["player_id"], "score": r["score"]} for r in rows
                ], f"no delta with {scorer.pid} at {new_total} on {spectator.url}"

        await eventually(delta_seen, timeout=10, interval=0.1)

        # The long-lived watchers: never dropped, deltas before and after the Redis outage,
        # and a room's seq only ever went up, across Redis coming back empty.
        for spectator in spectators[:2]:
            assert spectator.disconnects == 0 and spectator.sio.connected
            times = [at for at, _ in spectator.deltas]
            assert any(t < redis_down for t in times) and any(t > redis_back for t in times), times
            seqs = spectator.seqs("region:eu")
            assert all(a < b for a, b in itertools.pairwise(seqs)), f"seq went back or repeated: {seqs}"

        # (8) recovery without a restart, checked last since everything above holds without it:
        # once /readyz says 200 again, a burst of reads succeeds, and no request made while
        # both stores were up (not overlapping stop..ready) was refused.
        assert warm_failures == [], warm_failures
        assert redis_burst_failures == [], (
            f"{len(redis_burst_failures)} of {BURST * len(board_urls)} board reads failed after Redis came back "
            f"and both instances said ready: {redis_burst_failures[:3]}")
        assert mongo_burst_failures == [], (
            f"{len(mongo_burst_failures)} of {BURST * len(profile_urls)} profile reads failed after MongoDB came back "
            f"and both instances said ready: {mongo_burst_failures[:3]}")
        refusals = [r for p in players for r in p.replies if not r.body.get("ok")]
        assert {r.body["error"]["code"] for r in refusals} <= {"unavailable"}, Counter(
            r.body["error"]["code"] for r in refusals)
        # A request overlaps an outage when it was still unanswered once the store began stopping,
        # and was sent before both instances said ready again.
        outside = [
            f"{r.event} sent {wall(r.sent)}, answered {wall(r.received)}: {r.body['error']}" for r in refusals
            if not (r.received >= redis_stopping and r.sent <= redis_ready
                    or r.received >= mongo_stopping and r.sent <= mongo_ready)
        ]
        assert outside == [], f"refused while both stores were up: {outside[:5]}"

        print(
            f"\nwindows: redis down {wall(redis_down)}..{wall(redis_back)} "
            f"(ready {redis_ready - redis_back:.1f} s after), "
            f"mongo down {wall(mongo_down)}..{wall(mongo_back)} (ready {mongo_ready - mongo_back:.1f} s after)"
        )
        print(
            f"\nload-with-faults: {sum(counts.values())} actions acked by {N_PLAYERS} players "
            f"({len(ok_while_redis_down)} while Redis was down, {len(unavailable_while_mongo_down)} unavailable "
            f"while MongoDB was down, {sum(len(v) - 1 for v in acks.values())} repeat acks, "
            f"{sum(p.lost for p in players)} lost calls, {sum(p.reconnects for p in players)} reconnects); "
            f"traffic {traffic_done - test_started:.1f} s, boards settled {settled - traffic_done:.1f} s after, "
            f"total {now() - test_started:.1f} s"
        )
    finally:
        for task in traffic:
            task.cancel()
        await asyncio.gather(*traffic, return_exceptions=True)
        for spectator in spectators:
            await spectator.close()
        for p in players:
            await p.close()
        await http.close()
        await mongo.close()
        for node in nodes:
            node.stop()
        redis_srv.stop()
        store.stop()
