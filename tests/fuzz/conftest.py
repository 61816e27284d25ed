"""One server process for the whole fuzz package, many hypothesis examples against it.

Starting an app per example is too slow, so `python -m app` runs as its own process (the
`Instance` of tests/conftest.py) for the package and every test drives it over real sockets.
The tests are async `@given` tests: pytest-asyncio runs each example in the test's event loop,
so one set of connections (function-scoped fixtures) serves all examples of a test.

Budget: each test has a fixed `max_examples` and a per-example deadline; examples are
derandomized and no example database is kept, so CI (`make test`, clean clone) runs the same
inputs every time. FUZZ_SCALE=10 runs ten times the examples; FUZZ_RANDOM=1 draws new ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, settings as hsettings

from app.config import Settings
from tests.conftest import Instance, stack_settings
from tests.fuzz.oracle import Registry
from tests.fuzz.sockets import Actors, new_session, put_tournaments, start_challenge
from tests.fuzz.strategies import Pool, socket_args, socket_payloads
from tests.fuzz.wire import KNOWN_EVENTS, RawSocket, request

API_KEY = "fuzz-operator-key-0123456789"

SCALE = float(os.environ.get("FUZZ_SCALE", "1") or 1)
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")


def budget(examples: int) -> hsettings:
    return hsettings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=timedelta(seconds=10),  # a hang fails; any real answer comes well within
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much, HealthCheck.data_too_large],
        report_multiple_bugs=True,
        # No explain phase: it replays a failure many times over the network, and adds nothing to
        # the minimal input the shrinker reports.
        phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    )


class Server:
    """One `python -m app` process of the fuzz package (a plain class, for a short repr).
    Its JSON log lines go to `log_path`; the error lines a test caused are added to its report."""

    def __init__(self, instance: Instance, registry: Registry, log_path: Path) -> None:
        self.instance = instance
        self.registry = registry
        self.log_path = log_path
        self._read = 0

    def new_errors(self) -> list[str]:
        """Error lines logged since the last call: logger, message, last line of the traceback."""
        with self.log_path.open("rb") as log:
            log.seek(self._read)
            data = log.read()
        self._read += len(data)
        lines = []
        for raw in data.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                lines.append(raw[:300])  # not a JSON log line: print() or a crash
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                exc = (entry.get("exc") or "").strip().splitlines()
                lines.append(f"{entry.get('logger')}: {entry.get('msg')}" + (f" | {exc[-1]}" if exc else ""))
        return lines

    def __repr__(self) -> str:
        return f"<Server {self.url}>"

    @property
    def url(self) -> str:
        return self.instance.url

    def assert_alive(self) -> None:
        code = self.instance.proc.poll()
        assert code is None, f"the server process exited with {code}"

    async def assert_healthy(self, http: aiohttp.ClientSession) -> None:
        """Section 8: /healthz is 200 while the process runs; /readyz 200 while both stores answer."""
        self.assert_alive()
        reply = await request(http, "GET", f"{self.url}/healthz")
        assert reply.status == 200, f"/healthz: {reply!r}"


@pytest.fixture(scope="package")
def fuzz_settings(redis_proc, mongo_proc, actions_file, tmp_path_factory) -> Settings:
    return stack_settings(redis_proc, mongo_proc, actions_file, tmp_path_factory.mktemp("fuzz"), db_prefix="fuzz")


@pytest.fixture(scope="package")
def registry() -> Registry:
    return Registry()


STARTED: list[Server] = []


def _start(settings: Settings, registry: Registry, name: str, **env: str) -> Iterator[Server]:
    log_path = settings.data_dir / f"{name}.log"
    # No abuse limits (stack_settings); port and log_path named, so that env cannot fill them.
    instance = Instance(settings, port=None, log_path=log_path, API_KEY=API_KEY, **env)
    server = Server(instance, registry, log_path)
    STARTED.append(server)
    try:
        asyncio.run(instance.ready(timeout=60.0))  # a loop of its own: the fixture is package-scoped, hence sync
        yield server
        alive = instance.proc.poll() is None
    finally:
        instance.stop()
        STARTED.remove(server)
    assert alive, f"the fuzz server died during the fuzz tests; its log: {log_path}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing fuzz test's report gets the error lines its server logged meanwhile (the
    traceback behind an `unavailable` ack or a 5xx is there, not in the reply)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    for server in STARTED:
        errors = server.new_errors()
        if errors and report.failed:
            report.sections.append((f"fuzz server {server.url} logged", "\n".join(errors[-20:])))


@pytest.fixture(scope="package")
def server(fuzz_settings: Settings, registry: Registry) -> Iterator[Server]:
    """Guest sessions on (the default without a key), API_KEY set for the operator endpoint."""
    yield from _start(fuzz_settings, registry, "guests", ALLOW_GUEST_SESSIONS="1")


@pytest.fixture(scope="package")
def keyed_server(fuzz_settings: Settings, registry: Registry, server: Server) -> Iterator[Server]:
    """A second instance of the same service with guest sessions off: only the key makes sessions."""
    yield from _start(fuzz_settings, registry, "keyed", ALLOW_GUEST_SESSIONS="0")


@pytest.fixture
async def tournaments(server: Server, http: aiohttp.ClientSession) -> list[str]:
    """The fuzz tournaments (sockets.put_tournaments): put on first use, kept by the package's server."""
    return await put_tournaments(http, server, API_KEY)


@pytest.fixture
async def actors(server: Server, http: aiohttp.ClientSession, tournaments: list[str]) -> AsyncIterator[Actors]:
    """A player with live challenges and a spectator, connected to the fuzz server."""
    guild = f"g{uuid.uuid4().hex[:8]}"
    session = await new_session(http, server, guild=guild)
    me = Actors(server, http, session["player"]["player_id"], guild, session["token"])
    player = await me.connection("player")
    await me.connection("spectator")
    # The player's own challenges: three of 10 points, one with a minimum play time, one that
    # lives 1 s; and another player's, which is never this player's to complete.
    mine = [await start_challenge(player, me.player_id, action, me.registry)
            for action in ("quick", "quick", "quick", "slow", "brief")]
    other = await new_session(http, server)
    other_conn = await RawSocket.open(http, server.url, {"token": other["token"]})
    theirs = await start_challenge(other_conn, other["player"]["player_id"], "quick", me.registry)
    await other_conn.close()
    me.pool = Pool(tokens=[c.token for c in [*mine, theirs]], proofs=[c.proof for c in [*mine, theirs]],
                   players=[me.player_id, other["player"]["player_id"]], guild=guild, tournaments=tournaments)
    me.strategies = {event: socket_args(socket_payloads(event, me.pool)) for event in KNOWN_EVENTS}
    yield me
    for conn in me.conns.values():
        await conn.close()
