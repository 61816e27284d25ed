"""One server process for the whole fuzz package, many hypothesis examples against it.

Starting an app per example is too slow, so `python -m app` runs as its own process (the
`Instance` of tests/processes.py) for the package and every test drives it over real sockets.
The tests are async `@given` tests: pytest-asyncio runs each example in the test's event loop,
so one set of connections (function-scoped fixtures) serves all examples of a test.

Budget: each test has a fixed `max_examples` and a per-example deadline; examples are
derandomized and no example database is kept, so CI (`make test`, clean clone) runs the same
inputs every time. FUZZ_SCALE=10 runs ten times the examples; FUZZ_RANDOM=1 draws new ones.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from app.config import Settings
from tests.fuzz.harness import API_KEY, Server
from tests.fuzz.oracle import Registry
from tests.fuzz.sockets import Actors, new_session, put_tournaments, start_challenge
from tests.fuzz.strategies import Pool, socket_args, socket_payloads
from tests.fuzz.wire import KNOWN_EVENTS, RawSocket
from tests.processes import Instance
from tests.support import stack_settings


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
