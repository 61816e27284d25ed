"""`watch` while the leaderboard store is down (PROTOCOL.md 4): the answer is `unavailable`, and the
connection is left in exactly the rooms it was in before, not in one more that it does not count."""

from __future__ import annotations

import asyncio

from tests.processes import RedisProcess
from tests.support import create_session, eventually, open_client


async def test_a_watch_that_failed_in_an_outage_leaves_no_room_behind(start_app, settings, http):
    own = RedisProcess()
    clients = []
    try:
        app = await start_app(settings, redis_url=own.url, store_timeout_ms=1000)

        async def client(token: str | None = None):
            clients.append(await open_client(app.url, token))
            return clients[-1]

        failed = await client()  # a spectator whose first watch of region:na meets the outage
        kept = await client()  # a spectator already watching region:eu, watching it again in the outage
        assert (await kept.call("watch", {"room": "region:eu"}))["ok"]
        na_player = await client((await create_session(http, app.url, region="na"))["token"])
        eu_player = await client((await create_session(http, app.url, region="eu"))["token"])

        own.stop()
        for watcher, room in ((failed, "region:na"), (kept, "region:eu"), (na_player, "region:na")):
            reply = await watcher.call("watch", {"room": room})
            assert reply["ok"] is False and reply["error"]["code"] == "unavailable", (room, reply)
        own.start()

        witness = await client()

        async def watches() -> None:
            assert (await witness.call("watch", {"room": "region:na"}))["ok"]

        await eventually(watches, timeout=15)

        async def deltas_flow() -> None:
            """Both players play until their rooms' deltas reach the witness and the eu watcher
            (the fan-out resubscribes within seconds of Redis coming back)."""
            await na_player.play("quick")
            await eu_player.play("quick")
            await witness.wait_event("leaderboard:delta", timeout=3)
            assert "region:eu" in {d["room"] for d in await kept.wait_event("leaderboard:delta", timeout=3)}

        await eventually(deltas_flow, timeout=20)
        await asyncio.sleep(0.5)  # a delta wrongly sent to `failed` would be there by now
        assert "leaderboard:delta" not in failed.events, failed.events["leaderboard:delta"]
        # a home room stays the player's own through a failed watch of it
        assert "region:na" in {d["room"] for d in na_player.events.get("leaderboard:delta", [])}
        # and the failed watch took no place among the connection's eight
        assert (await failed.call("watch", {"room": "region:na"}))["ok"]
        assert (await failed.call("unwatch", {"room": "region:na"})) == {"ok": True}
    finally:
        for c in clients:
            if c.sio.connected:
                await c.sio.disconnect()
        own.stop()
