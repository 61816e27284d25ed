"""MongoDB down or hanging: completions answer `unavailable` quickly, credit nothing twice, and
recover alone."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from app.anticheat.proof import solve
from tests.processes import DocumentStoreProcess
from tests.support import Client, bad_proof


@dataclass
class Rig:
    store: DocumentStoreProcess
    url: str
    player_id: str
    client: Client
    completion: dict  # a live challenge's token and proof

    async def complete(self) -> dict:
        return await self.client.call("action:complete", self.completion)


@pytest.fixture
async def rig(tmp_path, start_app, settings, new_session, connect) -> AsyncIterator[Rig]:
    """An app on a document store of its own (stopped and paused by the tests), and a player with
    one challenge ready to complete."""
    store = DocumentStoreProcess(tmp_path / "own-store")
    try:
        app = await start_app(settings, mongodb_url=store.url, store_timeout_ms=1000)
        session = await new_session(url=app.url)
        client = await connect(session["token"], url=app.url)
        challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
        proof = solve(challenge["token"], challenge["difficulty"])
        yield Rig(store, app.url, session["player"]["player_id"], client, {"token": challenge["token"], "proof": proof})
    finally:
        if store.proc and store.proc.poll() is None:
            store.proc.send_signal(signal.SIGCONT)
        store.stop()


async def assert_unavailable_then_not_ready(rig: Rig, http, within_s: float) -> None:
    started = time.monotonic()
    reply = await rig.complete()
    assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
    assert time.monotonic() - started < within_s
    async with http.get(f"{rig.url}/readyz") as resp:
        assert resp.status == 503
        assert "mongodb" in (await resp.json())["error"]["message"]


async def test_store_down_answers_unavailable_then_recovers(rig, http):
    rig.store.stop()
    await assert_unavailable_then_not_ready(rig, http, within_s=5)

    rig.store.start()
    reply = await rig.complete()
    assert reply["ok"] and reply["duplicate"] is False and reply["score"]["total"] == 10
    async with http.get(f"{rig.url}/readyz") as resp:
        assert resp.status == 200


async def test_store_that_hangs_answers_unavailable_within_the_timeout_and_a_retry_credits_once(rig, http):
    """A store that stops answering (paused, not refused) must not hang the ack past STORE_TIMEOUT_MS.
    What it wrote before pausing may land later: the retry then finishes that credit, once."""
    rig.store.proc.send_signal(signal.SIGSTOP)
    await assert_unavailable_then_not_ready(rig, http, within_s=3)

    rig.store.proc.send_signal(signal.SIGCONT)
    reply = await rig.complete()
    assert reply["ok"] and reply["points"] == 10 and reply["score"]["total"] == 10, reply
    again = await rig.complete()
    assert again["duplicate"] is True and again["score"] == reply["score"], again
    async with http.get(f"{rig.url}/api/v1/players/{rig.player_id}") as resp:
        assert (await resp.json())["score"]["total"] == 10


async def test_proof_is_checked_before_any_store_read(rig):
    """Admission control: a completion that cannot show the work costs no store round trip, so
    a flood of junk proofs is refused at once even while the store is away."""
    rig.store.stop()
    started = time.monotonic()
    junk = bad_proof(rig.completion["token"], 4)  # the test catalogue's "quick": a fixed string would pass 1 in 16
    reply = await rig.client.call("action:complete", {"token": rig.completion["token"], "proof": junk})
    assert reply["ok"] is False and reply["error"]["code"] == "proof_invalid", reply
    assert time.monotonic() - started < 0.5
