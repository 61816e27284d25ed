"""The tournament service on a real document store and a clock the test turns: changes until
the start, states, joins, which credits count, and the award at the end."""

from __future__ import annotations

import asyncio

import pytest

from app.anticheat.tokens import SessionClaims
from app.errors import ProtocolError
from tests.tournaments.support import HOUR, MINUTE, Clock, Stack, loaded


def claims(player_id: str, region: str = "eu") -> SessionClaims:
    return SessionClaims(player_id, player_id, region, None, 0)


async def code_of(call) -> str:
    with pytest.raises(ProtocolError) as caught:
        await call
    return caught.value.code


async def test_a_tournament_changes_until_it_starts_then_conflicts(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    start, end = clock.ms + HOUR, clock.ms + 2 * HOUR
    created = await service.put("cup", loaded(start, end, max_players=10))
    assert created["state"] == "upcoming" and created["players"] == 0 and created["max_players"] == 10
    changed = await service.put("cup", loaded(start, end, title="Renamed", actions=["quick"]))
    assert (changed["title"], changed["actions"], changed["max_players"]) == ("Renamed", ["quick"], None)

    clock.ms = start  # it starts: start_at is inside the window
    assert await code_of(service.put("cup", loaded(start, end, title="Too late"))) == "conflict"
    # The same PUT again (a client retrying one it lost the answer to) is no change.
    again = await service.put("cup", loaded(start, end, title="Renamed", actions=["quick"]))
    assert again["state"] == "running" and again["title"] == "Renamed"
    assert (await service.get("cup"))["title"] == "Renamed"


async def test_bad_tournaments_are_invalid_payload(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    start, end = clock.ms + MINUTE, clock.ms + HOUR
    for tid, doc in [
        ("cup", loaded(end, start)),  # ends before it starts
        ("cup", loaded(start, start)),  # an empty window
        ("cup", loaded(clock.ms - HOUR, clock.ms - MINUTE)),  # over already
        ("cup", loaded(start, end, actions=["quick", "fly"])),  # not in the catalogue
        ("cup", loaded(start, end, regions=["eu", "mars"])),  # not in REGIONS
        ("no spaces", loaded(start, end)),
        ("x" * 65, loaded(start, end)),
    ]:
        assert await code_of(service.put(tid, doc)) == "invalid_payload", (tid, doc)
    assert (await service.listed())["tournaments"] == []


async def test_max_players_cannot_go_below_those_who_joined(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    start, end = clock.ms + HOUR, clock.ms + 2 * HOUR
    await service.put("cup", loaded(start, end, max_players=5))
    for pid in ("ann", "bob", "cy"):
        await service.join(claims(pid), "cup")
    assert await code_of(service.put("cup", loaded(start, end, max_players=2))) == "conflict"
    assert (await service.put("cup", loaded(start, end, max_players=3)))["max_players"] == 3
    assert await code_of(service.join(claims("dee"), "cup")) == "tournament_full"


async def test_states_and_the_list_follow_the_server_clock(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock, history_days=2)
    t0 = clock.ms
    await service.put("later", loaded(t0 + 2 * HOUR, t0 + 3 * HOUR))
    await service.put("soon", loaded(t0 + HOUR, t0 + 3 * HOUR))
    assert [(t["tournament_id"], t["state"]) for t in (await service.listed())["tournaments"]] == [
        ("soon", "upcoming"), ("later", "upcoming")]

    clock.ms = t0 + 2 * HOUR
    assert (await service.get("soon"))["state"] == "running"
    assert (await service.get("later"))["state"] == "running"  # start_at itself is inside
    clock.ms = t0 + 3 * HOUR
    assert [t["state"] for t in (await service.listed())["tournaments"]] == ["ended", "ended"]
    clock.ms = t0 + 3 * HOUR + 2 * 24 * HOUR - 1
    assert len((await service.listed())["tournaments"]) == 2
    clock.ms += 1  # BOARD_HISTORY_DAYS after its end: out of the list
    assert (await service.listed())["tournaments"] == []
    assert (await service.get("soon"))["state"] == "ended"  # still readable by id
    assert await code_of(service.get("nope")) == "not_found"
    assert await code_of(service.get("bad id")) == "not_found"


async def test_joins_closed_ended_rejoin(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    t0 = clock.ms
    await service.put("eu-cup", loaded(t0 + HOUR, t0 + 2 * HOUR, regions=["eu"]))
    assert await code_of(service.join(claims("ann"), "nope")) == "not_found"
    assert await code_of(service.join(claims("ann", "na"), "eu-cup")) == "tournament_closed"
    joined = await service.join(claims("ann"), "eu-cup")  # before the start: allowed
    assert joined["tournament"]["players"] == 1 and joined["tournament"]["state"] == "upcoming"
    assert (await service.join(claims("ann"), "eu-cup"))["tournament"]["players"] == 1  # twice: ok, once counted
    clock.ms = t0 + HOUR + 1
    assert (await service.join(claims("bob"), "eu-cup"))["tournament"]["players"] == 2  # while it runs
    clock.ms = t0 + 2 * HOUR
    assert await code_of(service.join(claims("cy"), "eu-cup")) == "tournament_closed"
    assert (await service.get("eu-cup"))["players"] == 2


async def test_racing_joins_never_pass_max_players(stack: Stack, clock: Clock) -> None:
    here, there = stack.service(clock), stack.service(clock)  # two instances' services
    await here.put("cup", loaded(clock.ms + HOUR, clock.ms + 2 * HOUR, max_players=4))
    pids = [f"p{i}" for i in range(12)]
    # Every player twice (two tabs), on both instances at once.
    results = await asyncio.gather(
        *(svc.join(claims(pid), "cup") for pid in pids for svc in (here, there)), return_exceptions=True)
    ok = {pids[i // 2] for i, r in enumerate(results) if isinstance(r, dict)}
    refused = [r for r in results if isinstance(r, ProtocolError)]
    assert len(ok) == 4, results
    assert {r.code for r in refused} <= {"tournament_full"} and len(refused) >= 16
    assert (await here.get("cup"))["players"] == 4
    assert await stack.db["tournament_entrants"].count_documents({"tournament_id": "cup"}) == 4


async def test_credit_boards_window_action_region_entrant(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    t0 = clock.ms
    start, end = t0 + HOUR, t0 + 2 * HOUR
    await service.put("quick-eu", loaded(start, end, actions=["quick"], regions=["eu"]))
    await service.put("any", loaded(start, end))
    await service.join(claims("ann"), "quick-eu")
    await service.join(claims("ann"), "any")
    await service.join(claims("bob"), "any")

    assert await service.credit_boards("ann", "eu", "quick", start - 1) == []  # before the start
    assert await service.credit_boards("ann", "eu", "quick", start) == ["any", "quick-eu"]  # by start, then id
    assert await service.credit_boards("ann", "eu", "big", start) == ["any"]  # not its action
    assert await service.credit_boards("ann", "na", "quick", start) == ["any"]  # not its region
    assert await service.credit_boards("bob", "eu", "quick", end - 1) == ["any"]  # not an entrant of the other
    assert await service.credit_boards("cy", "eu", "quick", start) == []  # no entrant at all
    assert await service.credit_boards("ann", "eu", "quick", end) == []  # end_at itself is outside


async def test_credit_boards_reads_nothing_unless_a_running_tournament_matches(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    t0 = clock.ms
    await service.put("later", loaded(t0 + HOUR, t0 + 2 * HOUR))
    await service.put("quick-only", loaded(t0, t0 + HOUR, actions=["quick"]))
    await service.join(claims("ann"), "quick-only")
    stack.commands.sent.clear()
    for _ in range(50):
        assert await service.credit_boards("ann", "eu", "big", t0 + 1) == []
    assert stack.commands.sent == []  # no running tournament of that action: no store read
    assert await service.credit_boards("ann", "eu", "quick", t0 + 1) == ["quick-only"]
    assert stack.commands.sent == ["find"]  # one matches: one read of the player's entrant documents


async def test_credit_boards_sees_a_tournament_put_on_another_instance_at_its_next_refresh(
        stack: Stack, clock: Clock) -> None:
    here, there = stack.service(clock), stack.service(clock)
    await here.refresh()
    await there.put("cup", loaded(clock.ms, clock.ms + HOUR))
    await there.join(claims("ann"), "cup")
    assert await there.credit_boards("ann", "eu", "quick", clock.ms) == ["cup"]  # its own change: at once
    assert await here.credit_boards("ann", "eu", "quick", clock.ms) == []  # not read yet
    await here.refresh()
    assert await here.credit_boards("ann", "eu", "quick", clock.ms) == ["cup"]


async def test_credit_boards_never_fails_a_credit(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    await service.put("cup", loaded(clock.ms, clock.ms + HOUR))
    await service.join(claims("ann"), "cup")
    # A document the service cannot read (written by hand, or by a later version): the credit
    # goes on, counted toward no tournament, and the list is not read again on every credit.
    await stack.db["tournaments"].insert_one({"_id": "broken", "end_ms": clock.ms + HOUR})
    fresh = stack.service(clock)
    stack.commands.sent.clear()
    assert await fresh.credit_boards("ann", "eu", "quick", clock.ms) == []
    assert await fresh.credit_boards("ann", "eu", "quick", clock.ms) == []
    assert stack.commands.sent == ["find"]


async def test_the_first_three_are_awarded_once_by_racing_finishers(stack: Stack, clock: Clock) -> None:
    here, there = stack.service(clock), stack.service(clock)
    t0 = clock.ms
    await here.put("cup", loaded(t0, t0 + HOUR))
    await here.put("open", loaded(t0, t0 + 3 * HOUR))
    boards = {"cup": ["ann", "bob", "cy", "dee"]}
    reads: list[str] = []

    async def final_top(tid: str) -> list[str]:
        reads.append(tid)
        await asyncio.sleep(0.01)
        return boards[tid]

    clock.ms = t0 + HOUR + 500  # ended, but within settle_ms: its last credits may still be on their way
    assert await here.finish_due(clock.ms, final_top) == []
    clock.ms = t0 + HOUR + 1000
    done = await asyncio.gather(here.finish_due(clock.ms, final_top), there.finish_due(clock.ms, final_top))
    assert sorted(done) == [[], ["cup"]] and reads == ["cup"]
    assert sorted(stack.announced, key=lambda a: a[0]) == [
        ("ann", {"id": "tournament_1", "name": "Tournament winner", "description": "Finish first in a tournament.",
                 "unlocked_at": stack.announced[0][1]["unlocked_at"]}),
        ("bob", {**stack.announced[1][1], "id": "tournament_2"}),
        ("cy", {**stack.announced[2][1], "id": "tournament_3"}),
    ]
    got = {(d["player_id"], d["achievement"]) async for d in stack.db["achievements"].find()}
    assert got == {("ann", "tournament_1"), ("bob", "tournament_2"), ("cy", "tournament_3")}
    # Later finishers (a restart, the next lease holder) find it done.
    clock.ms += HOUR
    assert await stack.service(clock).finish_due(clock.ms, final_top) == []
    assert reads == ["cup"] and len(stack.announced) == 3


async def test_a_finisher_that_died_mid_award_is_taken_over_once(stack: Stack, clock: Clock) -> None:
    t0 = clock.ms
    dying, taking_over = stack.service(clock), stack.service(clock)
    await dying.put("cup", loaded(t0, t0 + HOUR))
    clock.ms = t0 + 2 * HOUR

    async def dies_after_the_first(tid: str) -> list[str]:
        return ["ann", "bob"]

    # It claimed the tournament and unlocked the winner's achievement, then died before marking it.
    assert await stack.store.claim_award("cup", clock.ms, 10_000)
    assert await stack.repo.unlock("ann", "tournament_1", clock.ms)
    assert await taking_over.finish_due(clock.ms, dies_after_the_first) == []  # the claim still holds
    clock.ms += 10_001
    assert await taking_over.finish_due(clock.ms, dies_after_the_first) == ["cup"]
    assert [(pid, p["id"]) for pid, p in stack.announced] == [("bob", "tournament_2")]  # ann's was unlocked before
    assert await stack.db["achievements"].count_documents({}) == 2


async def test_a_join_that_died_midway_is_taken_over_by_the_next(stack: Stack, clock: Clock) -> None:
    service = stack.service(clock)
    await service.put("cup", loaded(clock.ms + HOUR, clock.ms + 2 * HOUR, max_players=1))
    # An instance inserted ann's pending entrant and was killed before taking a seat.
    assert await stack.store.add_entrant("cup", "ann", "eu", clock.ms - 20_000, "dead-join")
    assert await service.credit_boards("ann", "eu", "quick", clock.ms + HOUR) == []  # pending counts for nothing
    joined = await service.join(claims("ann"), "cup")
    assert joined["tournament"]["players"] == 1
    assert await service.credit_boards("ann", "eu", "quick", clock.ms + HOUR) == ["cup"]
    assert await code_of(service.join(claims("bob"), "cup")) == "tournament_full"
