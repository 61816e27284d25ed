"""MongoDB down: completions answer `unavailable` quickly, credit nothing, and recover alone."""

from __future__ import annotations

import signal
import time

from app.anticheat.proof import solve
from tests.conftest import DocumentStoreProcess


async def test_store_down_answers_unavailable_then_recovers(tmp_path, start_app, settings, new_session, connect, http):
    store = DocumentStoreProcess(tmp_path / "own-store")
    try:
        app = await start_app(settings, mongodb_url=store.url, store_timeout_ms=1000)
        session = await new_session(url=app.url)
        client = await connect(session["token"], url=app.url)
        challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
        proof = solve(challenge["token"], challenge["difficulty"])

        store.stop()
        started = time.monotonic()
        reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
        assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
        assert time.monotonic() - started < 5
        async with http.get(f"{app.url}/readyz") as resp:
            assert resp.status == 503
            assert "mongodb" in (await resp.json())["error"]["message"]

        store.start()
        reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
        assert reply["ok"] and reply["duplicate"] is False and reply["score"]["total"] == 10
        async with http.get(f"{app.url}/readyz") as resp:
            assert resp.status == 200
    finally:
        store.stop()


async def test_store_that_hangs_answers_unavailable_within_the_timeout_and_a_retry_credits_once(
        tmp_path, start_app, settings, new_session, connect, http):
    """A store that stops answering (paused, not refused) must not hang the ack past STORE_TIMEOUT_MS.
    What it wrote before pausing may land later: the retry then finishes that credit, once."""
    store = DocumentStoreProcess(tmp_path / "own-store")
    try:
        app = await start_app(settings, mongodb_url=store.url, store_timeout_ms=1000)
        session = await new_session(url=app.url)
        client = await connect(session["token"], url=app.url)
        challenge = (await client.call("action:start", {"action": "quick"}))["challenge"]
        proof = solve(challenge["token"], challenge["difficulty"])

        store.proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
        assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
        assert time.monotonic() - started < 3
        async with http.get(f"{app.url}/readyz") as resp:
            assert resp.status == 503 and "mongodb" in (await resp.json())["error"]["message"]

        store.proc.send_signal(signal.SIGCONT)
        reply = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
        assert reply["ok"] and reply["points"] == 10 and reply["score"]["total"] == 10, reply
        again = await client.call("action:complete", {"token": challenge["token"], "proof": proof})
        assert again["duplicate"] is True and again["score"] == reply["score"], again
        async with http.get(f"{app.url}/api/v1/players/{session['player']['player_id']}") as resp:
            assert (await resp.json())["score"]["total"] == 10
    finally:
        if store.proc and store.proc.poll() is None:
            store.proc.send_signal(signal.SIGCONT)
        store.stop()
