"""Fuzzing every Socket.IO event of PROTOCOL.md (sections 1, 4-6, 10) against one running server.

For each example, one event packet goes out over a raw websocket, from a player or a spectator.
Properties, checked on every example:
- exactly one ack comes back, with one argument: `{"ok": true, ...}` in the event's shape, or
  `{"ok": false, "error": {"code", "message"}}` with a documented code;
- the outcome is one PROTOCOL.md allows for that input (`oracle.socket_outcomes`): a wrong type,
  a missing or unknown field is invalid_payload, a valid payload is not; never `unavailable`
  while both stores are up (the socket side of "no 5xx");
- the connection stays connected and still answers a valid `leaderboard:get`;
- nothing is credited unless the input was a genuinely valid completion of one of the player's
  own live challenges, and then exactly once: the profile total is what the valid completions add
  up to;
- the server process is alive.

An `@example` is an input this suite once found failing, kept as a regression case; hypothesis
runs it first, and a failing one is reported at once, without shrinking.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from tests.fuzz.harness import budget
from tests.fuzz.sockets import ROLES, STATIC_ARGS, assert_total, exchange
from tests.fuzz.strategies import (
    ENDED,
    FULL,
    OTHER_REGION,
    RUNNING,
    UPCOMING,
    board_read_cases,
    json_values,
    unknown_event_names,
)
from tests.fuzz.wire import KNOWN_EVENTS, show
from tests.support import eventually

# A failing example's arguments can hold a few 2,000-character strings; hypothesis warns about
# printing them, and the suite turns warnings into errors.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")


@pytest.mark.parametrize("event", KNOWN_EVENTS)
@budget(50)
@given(data=st.data(), role=ROLES)
async def test_known_event_near_valid_payloads(event, role, data, actors):
    """Each event's own field set, fields valid, near-valid, any JSON or missing, extra keys;
    sometimes no argument, several, or one that is not an object."""
    args = data.draw(actors.strategies[event], label="args")
    await exchange(actors, role, event, args)
    if event.startswith("action:"):
        await assert_total(actors, f"{event} {show(args)}")


@budget(60)
@given(data=st.data(), role=ROLES, event=st.sampled_from(KNOWN_EVENTS))
async def test_any_json_to_any_event(event, role, data, actors):
    """Arguments that are any JSON at all, for every event."""
    args = data.draw(st.lists(json_values(), max_size=3), label="args")
    await exchange(actors, role, event, args)
    if event.startswith("action:"):
        await assert_total(actors, f"{event} {show(args)}")




@budget(60)
@given(role=ROLES, event=unknown_event_names(),
       args=st.one_of(st.sampled_from(KNOWN_EVENTS).flatmap(STATIC_ARGS.__getitem__),
                      st.lists(json_values(max_leaves=4), max_size=2)))
# Found by this test: an event named "*" with no argument got no ack (python-socketio finds the
# catch-all handler under the name "*" and calls it without the event name in front).
@example(role="player", event="*", args=[])
@example(role="spectator", event="*", args=[{"room": "region:eu"}])
async def test_unknown_events(event, role, args, actors):
    """Names no handler has, with the payloads of real events or anything: invalid_payload."""
    await exchange(actors, role, event, args)


@budget(40)
@given(data=st.data())
async def test_interleaved_sequences(data, actors):
    """Short sequences of events from both connections, in any order: the properties hold after
    every step, whatever came before (rooms watched, challenges completed, limits reached)."""
    steps = data.draw(st.lists(st.tuples(ROLES, st.sampled_from(KNOWN_EVENTS)), min_size=2, max_size=6),
                      label="steps")
    for role, event in steps:
        args = data.draw(actors.strategies[event], label=f"{role} {event}")
        await exchange(actors, role, event, args)
    await assert_total(actors, f"after {steps}")


# The answers section 10 gives a player of region eu (the fuzz players'), for each fuzz tournament.
JOINS = {RUNNING: "ok", UPCOMING: "ok", OTHER_REGION: "tournament_closed", ENDED: "tournament_closed",
         FULL: "tournament_full", "fz_no_such_cup": "not_found", "fz running": "invalid_payload",
         f"tournament:{RUNNING}": "invalid_payload", "t" * 65: "invalid_payload"}


# The tests below draw nothing: `given` runs each case as one hypothesis example, which
# `exchange` needs (it notes events, and keeps oversize messages out with `assume`).
@pytest.mark.parametrize("tournament", list(JOINS))
@budget(1)
@given(data=st.data())
async def test_tournament_join_answers(tournament, data, actors):
    """Each answer of tournament:join is reached, and is the one PROTOCOL.md states; joining
    twice is ok too; a spectator, who never acts, is not_a_player."""
    payload = {"tournament": tournament}
    assert await exchange(actors, "player", "tournament:join", [payload]) == JOINS[tournament]
    assert await exchange(actors, "player", "tournament:join", [payload]) == JOINS[tournament]
    # For a bad id, which of the two is checked first is unsaid.
    spectator = {"not_a_player", "invalid_payload"} if JOINS[tournament] == "invalid_payload" else {"not_a_player"}
    assert await exchange(actors, "spectator", "tournament:join", [payload]) in spectator


@pytest.mark.parametrize("case", list(board_read_cases()))
@budget(1)
@given(data=st.data())
async def test_board_read_answers(case, data, actors):
    """Ended days and weeks, and tournament boards (sections 6, 10): the answer PROTOCOL.md states."""
    board, params, expected = board_read_cases()[case]
    assert await exchange(actors, "spectator", "leaderboard:get", [{"board": board, **params}]) == expected



@budget(1)
@given(data=st.data())
async def test_credits_count_toward_running_tournaments(data, actors):
    """Section 10: after joining, a credit counts toward the running tournament (its ack lists the
    player's score there, and the board has it), never toward the upcoming one."""
    for tournament in (RUNNING, UPCOMING):
        assert await exchange(actors, "player", "tournament:join", [{"tournament": tournament}]) == "ok"
    for token, proof in zip(actors.pool.tokens[:2], actors.pool.proofs[:2], strict=True):  # two of "quick"
        # the ack's `tournaments` is checked against what the player was credited since it joined
        assert await exchange(actors, "player", "action:complete", [{"token": token, "proof": proof}]) == "ok"
    spectator = await actors.connection("spectator")
    read = {"board": f"tournament:{RUNNING}", "around": actors.player_id, "limit": 1}

    async def on_the_board() -> None:  # once the flusher has applied the credits
        reply = await spectator.call("leaderboard:get", read)
        assert reply.get("ok") is True and [(row["player_id"], row["score"]) for row in reply["entries"]] == \
            [(actors.player_id, 20)], f"leaderboard:get {read}: {reply}"

    await eventually(on_the_board)
    await assert_total(actors, "after two completions in a tournament")
