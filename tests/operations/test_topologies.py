"""The deployments operators run, each started once for this module (issue 15): a fixture per
topology, module-scoped, and the tests that play and watch through it.

nginx: the shipped deploy/nginx.conf in front of two `python -m app` instances with
TRUSTED_PROXIES=127.0.0.1. Clients connect from loopback addresses of their own
(127.0.N.M, one /24 each, as ip_hash keys IPv4), so that the proxy and the instances see
distinct client addresses and the test can choose which instance each client hashes to.

Redis Sentinel: a master, one replica and three sentinels, started once for this
module, and two `python -m app` instances on `REDIS_URL=redis+sentinel://…/<service>`.

Under traffic the master is killed with SIGKILL. Just before, the replica is made to miss the
master's last writes, as asynchronous replication can: it is paused (SIGSTOP, shorter than the
sentinels' down-after, so that it stays a candidate) and its link cut (CLIENT KILL TYPE replica),
and a quiet player completes one action that lands on the master only and then plays no more.
After the replica is promoted: completions are credited again and deltas flow again within 15 s;
a room's seq never repeats or goes back (a gap is allowed: PROTOCOL.md 6); no acknowledged
point is lost or doubled in MongoDB; and the boards, the quiet player's included, agree with
MongoDB within 10 s of the switch.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

import aiohttp
import pytest
import redis
import socketio
from pymongo import AsyncMongoClient
from redis.asyncio.cluster import RedisCluster

from app.anticheat.proof import solve
from app.clock import iso, now_ms
from app.embedded import free_port
from tests.processes import DocumentStoreProcess, Instance, RedisProcess, stop, wait_for_port
from tests.support import (
    OPERATOR_KEY,
    Client,
    Operator,
    Spectator,
    cluster_run,
    create_session,
    eventually,
    kill_9_run,
    stack_settings,
)

NGINX = Path("/usr/sbin/nginx")  # Debian's package (make setup installs it); /usr/sbin is not on every PATH
NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
API_KEY = "topology-api-key-0123456789"
PROXY = "127.0.0.1"  # nginx connects to the instances from here: their TRUSTED_PROXIES
UPSTREAM_SERVER = re.compile(r"^(?P<indent>[ \t]*)server 127\.0\.0\.1:\d+(?P<options>[^;\n]*;)[ \t]*\n", re.M)
LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen 80;", re.M)


def ip_hash_peer(address: str, peers: int) -> int:
    """The upstream line (0-based) nginx's ip_hash picks for an IPv4 client when all `peers`
    are up with equal weights: its hash of the first three octets (ngx_http_upstream_ip_hash_module.c).
    Only used to choose client addresses; where they really landed is checked from the access log."""
    hash_ = 89
    for octet in address.split(".")[:3]:
        hash_ = (hash_ * 113 + int(octet)) % 6271
    return hash_ % peers


def address_for(peer: int, peers: int, taken: set[str]) -> str:
    """A loopback address of a /24 not yet used that ip_hash sends to upstream line `peer`."""
    for third in range(1, 255):
        address = f"127.0.{third}.7"
        if address not in taken and ip_hash_peer(address, peers) == peer:
            taken.add(address)
            return address
    raise AssertionError(f"no 127.0.x.7 address hashes to peer {peer}")


def render_site(ports: list[int], listen: int) -> str:
    """deploy/nginx.conf with only its marked lines changed: the upstream's instance lines
    (one per port, options kept) and the listen port (on loopback)."""
    text = NGINX_CONF.read_text()
    found = list(UPSTREAM_SERVER.finditer(text))
    assert found, f"{NGINX_CONF}: no `server 127.0.0.1:<port> ...;` lines in the upstream"
    first = found[0]
    lines = "".join(f"{first['indent']}server 127.0.0.1:{port}{first['options']}\n" for port in ports)
    text = text[:first.start()] + lines + UPSTREAM_SERVER.sub("", text[first.end():])
    text, count = LISTEN.subn(rf"\g<indent>listen 127.0.0.1:{listen};", text)
    assert count == 1, f"{NGINX_CONF}: expected one `listen 80;` line, found {count}"
    return text


def main_conf(site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around a conf.d file, confined to the
    prefix directory (-p): pid, logs and temp files there, in the foreground."""
    # A root master hands requests to workers running as `user` (nobody by default), which
    # could not reach temp files under a private test directory; as any other user the
    # workers run as that user and the directive would only warn.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path temp_{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"daemon off;\n{user}worker_processes 1;\npid nginx.pid;\nerror_log error.log warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    log_format topology '$remote_addr $upstream_addr $status \"$request\"';\n"
        "    access_log access.log topology;\n"
        f"{temp}"
        f"    include {site};\n"
        "}\n"
    )


@dataclass
class NginxTopology:
    url: str  # nginx's listen address
    instances: list[Instance]  # in the order of the upstream's lines
    access_log: Path
    top_n: int

    def instance_named(self, name: str) -> int:
        """The index of the instance an audit entry names (`host:pid:...`)."""
        pid = int(name.split(":")[1])
        return next(i for i, instance in enumerate(self.instances) if instance.proc.pid == pid)

    def upstreams_of(self, address: str) -> list[str]:
        """The instance address of each /socket.io/ request nginx logged for a client address."""
        seen = []
        for line in self.access_log.read_text().splitlines():
            remote, upstream, _status, request = line.split(" ", 3)
            if remote == address and "/socket.io/" in request:
                seen.append(upstream)
        return seen


@pytest.fixture(scope="module")
def nginx_topology(tmp_path_factory: pytest.TempPathFactory, redis_proc: RedisProcess,
                   mongo_proc: DocumentStoreProcess, actions_file: Path) -> Iterator[NginxTopology]:
    """deploy/nginx.conf in front of two instances sharing the session's Redis and store."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"nginx is not installed ({NGINX}): `make setup` installs Debian's nginx package")
    prefix = tmp_path_factory.mktemp("nginx")
    settings = stack_settings(redis_proc, mongo_proc, actions_file, tmp_path_factory.mktemp("nginx-data"),
                              db_prefix="nginx")
    instances = [Instance(settings, TRUSTED_PROXIES=PROXY, API_KEY=API_KEY) for _ in range(2)]
    proc: subprocess.Popen | None = None
    try:
        for instance in instances:
            asyncio.run(instance.ready())  # a loop of its own: the fixture is module-scoped, hence sync
        listen = free_port()
        site = prefix / "live-scoreboard.conf"
        site.write_text(render_site([instance.port for instance in instances], listen))
        conf = prefix / "nginx.conf"
        conf.write_text(main_conf(site))
        with (prefix / "stderr.log").open("wb") as stderr:
            proc = subprocess.Popen([str(NGINX), "-p", f"{prefix}/", "-c", str(conf)], stderr=stderr)
        try:
            wait_for_port(listen, proc, timeout=15)
        except RuntimeError as exc:
            logs = "".join(p.read_text() for p in (prefix / "stderr.log", prefix / "error.log") if p.exists())
            raise AssertionError(f"nginx did not start on {NGINX_CONF}: {exc}\n{logs}") from exc
        yield NginxTopology(url=f"http://127.0.0.1:{listen}", instances=instances,
                            access_log=prefix / "access.log", top_n=settings.top_n)
    finally:
        if proc is not None:
            proc.terminate()  # nginx's fast shutdown: it does not wait for open long-polls
            proc.wait(15)
        for instance in instances:
            instance.stop()


class ClientFrom(Client):
    """tests.support's Client whose HTTP requests and transports leave from `address` (127.0.N.M)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
        self.sio = socketio.AsyncClient(reconnection=False, http_session=self.http)
        self.events: dict[str, list] = {}

        @self.sio.on("*")
        async def record(event: str, data: object = None) -> None:
            self.events.setdefault(event, []).append(data)

    async def session(self, url: str) -> dict:
        player_id = f"n{uuid.uuid4().hex[:10]}"
        body = {"player_id": player_id, "name": player_id, "region": "eu"}
        async with self.http.post(f"{url}/api/v1/sessions", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return await resp.json()

    async def close(self) -> None:
        # Not a Socket.IO disconnect: python-engineio's polling client waits for its pending
        # long-poll to end (up to the 25 s ping interval) before it returns from one.
        await self.sio.eio.disconnect(abort=True)
        await self.http.close()


def apply_deltas(snapshot: dict, deltas: list[dict], top_n: int) -> dict[str, int]:
    """The all-time board a watcher holds after the deltas (PROTOCOL.md 6): player -> score."""
    rows = {row["rank"]: row for row in snapshot["boards"]["all"]}
    for delta in deltas:
        for row in delta["boards"].get("all", []):
            rows[row["rank"]] = row
    return {row["player_id"]: row["score"] for rank, row in rows.items() if rank <= top_n}


async def audit_of(url: str, player_id: str) -> list[dict]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{url}/api/v1/admin/players/{player_id}/actions", params={"limit": "100"},
            headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["entries"]


ROUNDS = 5


async def test_websocket_and_polling_players_and_a_polling_spectator_through_nginx(nginx_topology):
    topo = nginx_topology
    peers = len(topo.instances)
    taken: set[str] = set()
    # The two players on different instances, the spectator on the websocket player's other:
    # every credit it sees of that player crossed instances through the Redis fan-out.
    spectator = ClientFrom(address_for(1, peers, taken))
    ws_player = ClientFrom(address_for(0, peers, taken))
    polling_player = ClientFrom(address_for(1, peers, taken))
    try:
        await spectator.sio.connect(topo.url, transports=["polling"], wait_timeout=10)
        watched = await spectator.call("watch", {"room": "region:eu"})
        assert watched["ok"], watched
        snapshot = watched["snapshot"]

        ws_session = await ws_player.session(topo.url)
        # A forged X-Forwarded-For from the client: nginx appends the real peer, and the
        # instances take the right-most entry that is not their trusted proxy.
        await ws_player.sio.connect(topo.url, auth={"token": ws_session["token"]}, transports=["websocket"],
                                    headers={"X-Forwarded-For": "198.51.100.7"}, wait_timeout=10)
        polling_session = await polling_player.session(topo.url)
        await polling_player.sio.connect(topo.url, auth={"token": polling_session["token"]},
                                         transports=["polling"], wait_timeout=10)
        assert ws_player.sio.transport() == "websocket" and polling_player.sio.transport() == "polling"

        acked = {ws_session["player"]["player_id"]: 0, polling_session["player"]["player_id"]: 0}
        for _ in range(ROUNDS):
            for player, session in ((ws_player, ws_session), (polling_player, polling_session)):
                _, ack = await player.play("quick")
                assert ack["ok"] and not ack["duplicate"], ack
                acked[session["player"]["player_id"]] += ack["points"]
                assert ack["score"]["total"] == acked[session["player"]["player_id"]]
        assert all(points == ROUNDS * 10 for points in acked.values())

        async def board_shows_both() -> list[dict]:
            deltas = spectator.events.get("leaderboard:delta", [])
            assert apply_deltas(snapshot, deltas, topo.top_n) == acked, deltas
            return deltas

        deltas = await eventually(board_shows_both)
        seqs = [delta["seq"] for delta in deltas]
        assert seqs == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(seqs))), seqs
        assert {delta["room"] for delta in deltas} == {"region:eu"}

        # The instances saw each player's own address, not the proxy's nor the forged one, and
        # each player's completions reached the instance ip_hash sends it to.
        for player, session, peer in ((ws_player, ws_session, 0), (polling_player, polling_session, 1)):
            async def audited(pid: str = session["player"]["player_id"]) -> list[dict]:
                entries = await audit_of(topo.url, pid)
                assert len(entries) == ROUNDS, entries
                return entries

            entries = await eventually(audited)
            assert {e["client"] for e in entries} == {player.address}, entries
            assert {e["outcome"] for e in entries} == {"credited"}
            assert {topo.instance_named(e["instance"]) for e in entries} == {peer}, (
                f"{player.address} did not stay on instance {peer}: {[e['instance'] for e in entries]}")
    finally:
        for client in (spectator, ws_player, polling_player):
            await client.close()

    # Sticky: every request of each client went to one instance, the one predicted. (Were a
    # poll to reach the other instance, its sid would be unknown there and the session, hence
    # the calls above, would have failed.) nginx logs a websocket once it is closed.
    async def sticky() -> None:
        for client, peer in ((spectator, 1), (polling_player, 1), (ws_player, 0)):
            upstreams = topo.upstreams_of(client.address)
            expected = f"127.0.0.1:{topo.instances[peer].port}"
            assert upstreams and set(upstreams) == {expected}, f"{client.address}: {upstreams}"

    await eventually(sticky)
    polls = len(topo.upstreams_of(polling_player.address))
    assert polls >= 4 * ROUNDS, f"only {polls} polling requests logged for the polling player"


async def test_polling_upgrades_to_websocket_through_nginx(nginx_topology):
    client = ClientFrom(address_for(0, len(nginx_topology.instances), set()))
    try:
        await client.sio.connect(nginx_topology.url, transports=["polling", "websocket"], wait_timeout=10)

        async def upgraded() -> None:
            assert client.sio.transport() == "websocket"

        await eventually(upgraded)
        watched = await client.call("watch", {"room": "region:eu"})
        assert watched["ok"], watched
    finally:
        await client.close()


async def test_operations_routes_through_nginx(nginx_topology):
    """Liveness and the pages are public; readiness only from the proxy's own host; metrics never."""
    outside = ClientFrom("127.0.200.7")
    try:
        for path, status in (("/healthz", 200), ("/readyz", 403), ("/metrics", 403), ("/admin", 200),
                             ("/", 200), ("/static/vendor/socket.io.min.js", 200)):
            async with outside.http.get(f"{nginx_topology.url}{path}") as resp:
                assert resp.status == status, f"{path}: {resp.status}"
                await resp.read()
    finally:
        await outside.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{nginx_topology.url}/readyz") as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"{nginx_topology.url}/metrics") as resp:
            assert resp.status == 403


# Redis Sentinel

SERVICE = "scores"
ACTION, POINTS = "quick", 10
N_PLAYERS = 6
ROOM = "region:eu"
WARMUP_S = 3.0
AFTER_SWITCH_S = 5.0  # traffic goes on this long after the switch
CALL_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.2
RECOVERY_S = 15.0  # credits and deltas again within this of the kill (issue 15)
AGREE_S = 10.0  # boards agree with MongoDB within this of the switch (issue 15)


def now() -> float:
    return time.monotonic()


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run make setup"
    return binary


class SentinelTopology:
    """A master, a replica of it, and three sentinels monitoring SERVICE with a quorum of 2."""

    def __init__(self, root: Path) -> None:
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        base = [_redis_server(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.master = subprocess.Popen([*base, "--port", str(self.master_port)], stdout=subprocess.DEVNULL)
        self.replica = subprocess.Popen([*base, "--port", str(self.replica_port),
                                         "--replicaof", "127.0.0.1", str(self.master_port)],
                                        stdout=subprocess.DEVNULL)
        self.sentinels = []
        for port in self.sentinel_ports:
            conf = root / f"sentinel-{port}.conf"  # written to by the sentinel: its own file
            conf.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {root}",
                "sentinel resolve-hostnames no",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000",
                f"sentinel parallel-syncs {SERVICE} 1", "",
            ]))
            self.sentinels.append(subprocess.Popen([_redis_server(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL))
        for port, proc in [(self.master_port, self.master), (self.replica_port, self.replica),
                           *zip(self.sentinel_ports, self.sentinels, strict=True)]:
            wait_for_port(port, proc)

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{SERVICE}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until every sentinel knows the replica and the other two (it can then vote a failover)."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for port in self.sentinel_ports:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    state = sentinel.sentinel_master(SERVICE)
                    states.append((state["num-slaves"], state["num-other-sentinels"]))
            with redis.Redis(port=self.replica_port, socket_timeout=1) as replica:
                link = replica.info("replication").get("master_link_status")
            if all(s == (1, 2) for s in states) and link == "up":
                return
            assert time.monotonic() < deadline, f"sentinels not ready: {states}, replica link {link}"
            time.sleep(0.2)

    def master_address(self) -> tuple[str, int] | None:
        """What the sentinels answer now (the first that answers)."""
        for port in self.sentinel_ports:
            try:
                with redis.Redis(port=port, socket_timeout=0.5, decode_responses=True) as sentinel:
                    host, master = sentinel.sentinel_get_master_addr_by_name(SERVICE)
                    return str(host), int(master)
            except redis.RedisError:
                continue
        return None

    def stop(self) -> None:
        for proc in [*self.sentinels, self.replica, self.master]:
            if proc.poll() is None:
                with_signal(proc, signal.SIGCONT)
            stop(proc)


def with_signal(proc: subprocess.Popen, sig: int) -> None:
    os.kill(proc.pid, sig)


class Topology(Protocol):
    """Redis servers of a test module's own, started by the constructor."""

    def wait_ready(self) -> None: ...

    def stop(self) -> None: ...


T = TypeVar("T", bound=Topology)


def running(topology: T) -> Iterator[T]:
    """A module fixture's body: the topology once ready; stopped after, or when it never gets ready."""
    try:
        topology.wait_ready()
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="module")
def sentinel_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    yield from running(SentinelTopology(tmp_path_factory.mktemp("sentinel")))


@dataclass
class Ack:
    sent: float
    received: float
    body: dict


@dataclass
class Player:
    """Loops action:start, play, action:complete (the same token and proof until acknowledged)."""

    pid: str
    url: str
    token: str
    sio: socketio.AsyncClient | None = None
    acks: list[Ack] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    async def call(self, event: str, data: dict) -> dict | None:
        try:
            if self.sio is None or not self.sio.connected:
                self.sio = socketio.AsyncClient(reconnection=False)
                await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"],
                                       wait_timeout=10)
            return await self.sio.call(event, data, timeout=CALL_TIMEOUT_S)
        except (TimeoutError, socketio.exceptions.SocketIOError, aiohttp.ClientError, OSError):
            await asyncio.sleep(RETRY_PAUSE_S)
            return None

    async def start(self, deadline: float) -> dict | None:
        while now() < deadline:
            reply = await self.call("action:start", {"action": ACTION})
            if reply is not None and reply.get("ok"):
                self.started.add(reply["challenge"]["action_id"])
                return reply["challenge"]
            if reply is not None and reply["error"]["code"] not in ("unavailable", "rate_limited"):
                self.problems.append(f"action:start answered {reply}")
                return None
            await asyncio.sleep(RETRY_PAUSE_S)
        return None

    async def complete(self, challenge: dict, deadline: float) -> Ack | None:
        data = {"token": challenge["token"], "proof": solve(challenge["token"], challenge["difficulty"])}
        while now() < deadline:
            sent = now()
            reply = await self.call("action:complete", data)
            if reply is not None and reply.get("ok"):
                ack = Ack(sent, now(), reply)
                self.acks.append(ack)
                return ack
            if reply is not None and reply["error"]["code"] != "unavailable":
                self.problems.append(f"action:complete answered {reply}")
                return None
            await asyncio.sleep(RETRY_PAUSE_S)
        self.problems.append(f"no ack for {challenge['action_id']} before the deadline")
        return None

    async def play(self, deadline: float) -> Ack | None:
        challenge = await self.start(deadline)
        return await self.complete(challenge, deadline) if challenge else None

    async def run(self, stop_at: asyncio.Event, deadline: float) -> None:
        while not stop_at.is_set() and now() < deadline:
            challenge = await self.start(deadline)
            if challenge is None:
                return
            await asyncio.sleep(random.uniform(0.1, 0.4))
            await self.complete(challenge, deadline)

    @property
    def total(self) -> int:
        return POINTS * len({a.body["action_id"] for a in self.acks})

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()


async def session(http: aiohttp.ClientSession, url: str, pid: str) -> str:
    async with http.post(f"{url}/api/v1/sessions", json={"player_id": pid, "name": pid, "region": "eu"}) as resp:
        assert resp.status == 201, await resp.text()
        return (await resp.json())["token"]


async def board_scores(client: socketio.AsyncClient, board: str) -> dict[str, int]:
    reply = await client.call("leaderboard:get", {"board": board, "period": "all", "limit": 100}, timeout=5)
    assert reply["ok"], reply
    return {row["player_id"]: row["score"] for row in reply["entries"]}


async def test_a_master_killed_under_traffic_is_followed_and_nothing_acknowledged_is_lost(
        sentinel_topology, settings, tmp_path):
    topology = sentinel_topology
    config = replace(settings, redis_url=topology.url, flush_ms=200)
    nodes: list[Instance] = []
    players: list[Player] = []
    spectators: list[Spectator] = []
    traffic: list[asyncio.Task] = []
    quiet: Player | None = None
    reader = socketio.AsyncClient(reconnection=False)
    mongo = AsyncMongoClient(config.mongodb_url, serverSelectionTimeoutMS=5000)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        nodes = [Instance(config, log_path=tmp_path / f"instance-{i}.log", STORE_TIMEOUT_MS="1000") for i in range(2)]
        await asyncio.gather(*(node.ready() for node in nodes))
        for i in range(N_PLAYERS):
            pid = f"sn{i}-{uuid.uuid4().hex[:6]}"
            players.append(Player(pid, nodes[i % 2].url, await session(http, nodes[i % 2].url, pid)))
        quiet_pid = f"quiet-{uuid.uuid4().hex[:6]}"
        quiet = Player(quiet_pid, nodes[0].url, await session(http, nodes[0].url, quiet_pid))
        spectators = [Spectator(node.url) for node in nodes]
        for spectator in spectators:
            await spectator.watch(ROOM)
        await reader.connect(nodes[1].url, transports=["websocket"], wait_timeout=10)

        deadline = now() + 60.0
        assert await quiet.play(deadline), quiet.problems
        stop_traffic = asyncio.Event()
        traffic = [asyncio.create_task(p.run(stop_traffic, deadline)) for p in players]
        await asyncio.sleep(WARMUP_S)
        assert all(s.seqs(ROOM) for s in spectators), "no delta before the failover: the test proves nothing"

        # The replica misses what follows: paused (for less than the sentinels' down-after),
        # its link cut. The quiet player's second action lands on the master only.
        before = quiet.total
        with_signal(topology.replica, signal.SIGSTOP)
        paused = now()
        with redis.Redis(port=topology.master_port) as master:
            master.client_kill_filter(_type="replica")
        challenge = await quiet.start(deadline)
        assert challenge and await quiet.complete(challenge, deadline), quiet.problems

        async def on_the_old_master() -> None:
            assert (await board_scores(reader, "global")).get(quiet_pid) == before + POINTS

        # Flushed onto the old master's boards, most often; if not in time, it is lost with the
        # old master's queue instead, which the boards must recover from all the same.
        with suppress(AssertionError):
            await eventually(on_the_old_master, timeout=max(0.05, 0.6 - (now() - paused)), interval=0.02)
        seq_before_kill = max(max(s.seqs(ROOM), default=0) for s in spectators)
        killed = now()
        topology.master.kill()
        topology.master.wait()
        with_signal(topology.replica, signal.SIGCONT)
        paused_s = now() - paused

        async def promoted() -> float:
            assert await asyncio.to_thread(topology.master_address) == ("127.0.0.1", topology.replica_port)
            return now()

        switched = await eventually(promoted, timeout=RECOVERY_S, interval=0.05)

        # Credits again: a completion sent after the switch, acknowledged.
        async def credited_after_switch() -> float:
            acks = [a.received for p in players for a in p.acks if a.sent >= switched]
            assert acks, "no completion acknowledged after the switch"
            return min(acks)

        credited = await eventually(credited_after_switch, timeout=RECOVERY_S - (now() - killed), interval=0.05)

        # Deltas again, on both instances, with a seq newer than any before the kill.
        async def deltas_again() -> float:
            firsts = []
            for spectator in spectators:
                newer = [at for at, d in spectator.deltas if at >= killed and d["seq"] > seq_before_kill]
                assert newer, f"no newer delta on {spectator.url}"
                firsts.append(min(newer))
            return max(firsts)

        delta_again = await eventually(deltas_again, timeout=RECOVERY_S - (now() - killed), interval=0.05)

        # The boards put right: the quiet player's lost credit is back (it plays no more).
        async def quiet_restored() -> float:
            assert (await board_scores(reader, "global")).get(quiet_pid) == quiet.total
            return now()

        restored = await eventually(quiet_restored, timeout=AGREE_S - (now() - switched), interval=0.1)

        await asyncio.sleep(max(0.0, switched + AFTER_SWITCH_S - now()))
        stop_traffic.set()
        await asyncio.wait_for(asyncio.gather(*traffic), timeout=max(1.0, deadline - now() + 5))
        traffic_done = now()
        problems = [f"{p.pid}: {m}" for p in [*players, quiet] for m in p.problems]
        assert problems == [], problems

        # No acknowledged point lost or doubled: MongoDB holds each acked action once, and nothing else.
        everyone = [*players, quiet]
        expected = {p.pid: p.total for p in everyone}
        db = mongo[config.mongodb_db]
        docs = {d["_id"]: d.get("total", 0) async for d in db["players"].find({}, projection={"total": 1})}
        assert docs == expected
        acked = {a.body["action_id"] for p in everyone for a in p.acks}
        assert acked == {a for p in everyone for a in p.started}, "a started challenge was never acknowledged"
        logged = Counter([d["_id"] async for d in db["actions"].find({}, projection={"_id": 1})])
        assert set(logged) == acked and set(logged.values()) == {1}

        # The boards agree with MongoDB, read from either instance, within AGREE_S of the switch.
        async def boards_agree() -> float:
            for node in nodes:
                for board in ("global", ROOM):
                    async with http.get(f"{node.url}/api/v1/leaderboards/{board}?limit=100") as resp:
                        body = await resp.json()
                    assert resp.status == 200, body
                    got = {row["player_id"]: row["score"] for row in body["entries"]}
                    assert got == expected, f"{board} on {node.url}: {got} != {expected}"
            return now()

        agreed = await eventually(boards_agree, timeout=max(0.5, switched + AGREE_S - now()), interval=0.1)

        # A room's seq never repeated nor went back, across the failover (a gap is allowed).
        for spectator in spectators:
            seqs = spectator.seqs(ROOM)
            assert all(a < b for a, b in itertools.pairwise(seqs)), f"seq repeated or went back: {seqs}"
            assert spectator.disconnects == 0 and spectator.sio.connected
        for node in nodes:
            assert node.proc.poll() is None, f"instance on {node.url} exited with {node.proc.returncode}"

        acks_after_kill = [a for p in players for a in p.acks if a.sent >= killed and a.received <= switched]
        print(
            f"\nsentinel failover: replica paused {paused_s:.2f} s; after kill -9 of the master: "
            f"switch {switched - killed:.1f} s, credits again {credited - killed:.1f} s "
            f"({len(acks_after_kill)} acks while no master), deltas again {delta_again - killed:.1f} s, "
            f"quiet player's lost credit back {restored - killed:.1f} s, boards agree {agreed - killed:.1f} s "
            f"(traffic stopped {traffic_done - killed:.1f} s); "
            f"{sum(len(p.acks) for p in everyone)} acks in all"
        )
    finally:
        for task in traffic:
            task.cancel()
        await asyncio.gather(*traffic, return_exceptions=True)
        for spectator in spectators:
            await spectator.close()
        for p in [*players, *([quiet] if quiet else [])]:
            await p.close()
        if reader.connected:
            await reader.disconnect()
        await http.close()
        await mongo.close()
        for node in nodes:
            node.stop()


# ---- Redis Cluster: three masters, two and three instances on REDIS_URL=redis+cluster://…/


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too, so at most 55535."""
    import socket

    while True:
        port = random.randint(20000, 55535)
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class ClusterTopology:
    """Three masters (no replicas) made one cluster by `redis-cli --cluster create`."""

    def __init__(self, root: Path) -> None:
        self.ports = [cluster_port() for _ in range(3)]
        self.nodes = []
        for port in self.ports:
            node_dir = root / str(port)
            node_dir.mkdir()
            self.nodes.append(subprocess.Popen(
                [_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                 "--dir", str(node_dir)], stdout=subprocess.DEVNULL))
        for port, proc in zip(self.ports, self.nodes, strict=True):
            wait_for_port(port, proc)
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is missing: run make setup"
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for port in self.ports:
                with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as node:
                    states.append(node.cluster("INFO").get("cluster_state"))
            if states == ["ok"] * 3:
                return
            assert time.monotonic() < deadline, f"cluster not ready: {states}"
            time.sleep(0.2)

    def key_counts(self) -> list[int]:
        out = []
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=1) as node:
                out.append(int(node.dbsize()))
        return out

    def flush(self) -> None:
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=1) as node:
                node.flushall()

    def stop(self) -> None:
        for proc in self.nodes:
            stop(proc)


@pytest.fixture(scope="module")
def cluster_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    yield from running(ClusterTopology(tmp_path_factory.mktemp("cluster")))


@pytest.fixture
async def cluster_instances(cluster_topology: ClusterTopology, settings):
    """conftest's `instances`, on the cluster (flushed first) rather than the tests' own Redis."""
    cluster_topology.flush()
    on_cluster = replace(settings, redis_url=cluster_topology.url)
    started: list[Instance] = []

    async def start(**env: str) -> Instance:
        instance = Instance(on_cluster, port=None, log_path=None, **env)
        started.append(instance)
        return await instance.ready()

    yield start, on_cluster
    for instance in started:
        instance.stop()


@pytest.mark.parametrize("n_instances", [2, 3])
async def test_instances_act_as_one_on_a_redis_cluster_and_keys_spread(cluster_topology, cluster_instances,
                                                                       n_instances):
    start, on_cluster = cluster_instances
    await cluster_run(start, on_cluster, n_instances)
    counts = cluster_topology.key_counts()
    assert all(count > 0 for count in counts), f"keys per node: {counts}"


async def test_kill_9_of_the_lease_holder_on_a_redis_cluster(cluster_topology, cluster_instances):
    start, on_cluster = cluster_instances
    r = RedisCluster(host="127.0.0.1", port=cluster_topology.ports[0])
    try:
        await kill_9_run(start, on_cluster, r)
    finally:
        await r.aclose()


async def test_a_tournament_on_a_redis_cluster_is_live_and_its_keys_end_with_it(cluster_topology, cluster_instances):
    """A tournament's board on a cluster: the credit counts, its room gets the delta, and every
    key of its board family (its board, the published rows, the family's copies of the players'
    placements) expires, so an ended tournament leaves nothing behind in Redis."""
    start, _ = cluster_instances
    one = await start(API_KEY=OPERATOR_KEY)
    now = now_ms()
    spectator, client = Spectator(one.url), Client()
    async with aiohttp.ClientSession() as http:
        status, _ = await Operator(http, one.url).put(
            "clustercup", {"title": "Cluster cup", "start_at": iso(now - 60_000), "end_at": iso(now + 600_000)})
        assert status == 200
        session = await create_session(http, one.url)
    try:
        await spectator.watch("tournament:clustercup")
        await client.sio.connect(one.url, auth={"token": session["token"]}, transports=["websocket"])
        assert (await client.call("tournament:join", {"tournament": "clustercup"}))["ok"]
        _, ack = await client.play("quick")
        assert ack["tournaments"] == {"clustercup": 10}, ack

        async def delta_arrived() -> None:
            rows = [(row["player_id"], row["score"]) for _, d in spectator.deltas
                    if d["room"] == "tournament:clustercup" for row in d["boards"]["all"]]
            assert (session["player"]["player_id"], 10) in rows, spectator.deltas

        await eventually(delta_arrived)
    finally:
        await spectator.close()
        await client.sio.disconnect()
    without_expiry = []
    for port in cluster_topology.ports:
        with redis.Redis(port=port, socket_timeout=1) as node:
            for key in node.scan_iter(match="*{tournament:clustercup}*"):
                if node.pttl(key) < 0:
                    without_expiry.append(key)
    assert not without_expiry, f"keys of the tournament's family that never expire: {without_expiry}"
