"""The play clock (PROTOCOL.md 5, v1.1): a player's credited completions of one action are at
least `min_ms` apart however many challenges it holds open and on however many instances; the
others answer too_fast with retry_after_ms, and their challenges stay valid."""

from __future__ import annotations

import asyncio

from app.anticheat.proof import solve
from tests.support import Client

MIN_MS = 400  # the test catalogue's "slow"


async def open_challenges(client: Client, count: int) -> list[dict]:
    started = await asyncio.gather(*(client.call("action:start", {"action": "slow"}) for _ in range(count)))
    assert all(reply["ok"] for reply in started), started
    return [{"token": r["challenge"]["token"], "proof": solve(r["challenge"]["token"], r["challenge"]["difficulty"])}
            for r in started]


async def settle_one_at_a_time(clients: list[Client], refused: list[dict]) -> list[dict]:
    """Retry each refused challenge after the wait it was told: every one is credited in turn."""
    acks = []
    for i, payload in enumerate(refused):
        reply = await clients[i % len(clients)].call("action:complete", payload)
        while not reply["ok"]:
            assert reply["error"]["code"] == "too_fast", reply
            await asyncio.sleep(reply["error"]["retry_after_ms"] / 1000 + 0.02)
            reply = await clients[i % len(clients)].call("action:complete", payload)
        acks.append(reply)
    return acks


async def check_clock(clients: list[Client]) -> None:
    payloads = await open_challenges(clients[0], 5)
    await asyncio.sleep(MIN_MS / 1000 + 0.05)  # every challenge is past its own min_ms
    replies = await asyncio.gather(*(clients[i % len(clients)].call("action:complete", p)
                                     for i, p in enumerate(payloads)))
    credited = [r for r in replies if r["ok"]]
    refused = [(p, r) for p, r in zip(payloads, replies, strict=True) if not r["ok"]]
    assert len(credited) == 1, replies
    assert credited[0]["score"]["total"] == 50
    for _, reply in refused:
        assert reply["error"]["code"] == "too_fast", reply
        # Measured from each attempt's own time: one sent a moment before the credited one waits a little longer.
        assert 0 < reply["error"]["retry_after_ms"] <= MIN_MS + 100
    acks = await settle_one_at_a_time(clients, [p for p, _ in refused])
    assert [ack["score"]["total"] for ack in acks] == [100, 150, 200, 250]
    assert all(not ack["duplicate"] for ack in acks)


async def test_five_open_challenges_credit_one_at_a_time_on_one_instance(player):
    _, client = await player()
    await check_clock([client])


async def test_five_open_challenges_credit_one_at_a_time_across_two_instances(start_app, settings, new_session,
                                                                              connect):
    one, two = await start_app(settings), await start_app(settings)
    session = await new_session(url=one.url)
    clients = [await connect(session["token"], url=one.url), await connect(session["token"], url=two.url)]
    await check_clock(clients)


async def test_other_actions_have_clocks_of_their_own(player):
    _, client = await player()
    slow = await open_challenges(client, 1)
    quick = (await client.call("action:start", {"action": "quick"}))["challenge"]
    await asyncio.sleep(MIN_MS / 1000 + 0.05)
    assert (await client.call("action:complete", slow[0]))["ok"]
    reply = await client.call("action:complete", {"token": quick["token"], "proof": solve(quick["token"], 4)})
    assert reply["ok"] and reply["score"]["total"] == 60, reply
