"""MongoDB down: completions answer `unavailable` quickly, credit nothing, and recover alone."""

from __future__ import annotations

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
