"""Two kinds of input that are legal JSON but that a JSON decoder may stumble on, fuzzed on their
own so that each failure points at one cause:

- integer literals of 100 to 5,000 digits (Python refuses to turn more than 4,300 digits into an
  int; engine.io's decoder refuses more than 100): a JSON number of any length is still a JSON
  number, so the answer is the usual one for a wrong or out-of-range value;
- strings holding a lone UTF-16 surrogate, written as the JSON escape `\\ud800` (what a JS client
  sends for a string cut inside an emoji): such a string is no valid Unicode text, so
  invalid_payload is always allowed, and otherwise the usual answer. Never `unavailable`, never a
  5xx, never a missing ack.

The properties are those of test_socket_fuzz.py and test_http_fuzz.py; each `@example` is an
input these tests found failing, kept as a regression case.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from tests.fuzz.harness import API_KEY, budget
from tests.fuzz.oracle import INVALID, body_verdict, session_verdict, suspension_verdict
from tests.fuzz.sockets import ROLES, STATIC_ARGS, assert_total, exchange
from tests.fuzz.strategies import big_literals, keys, lone_surrogate_texts
from tests.fuzz.test_http_fuzz import common, expected_body_status
from tests.fuzz.wire import KNOWN_EVENTS, BigLiteral, dumps, request, show

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

GOOD_SESSION = {"player_id": "edge_player", "name": "Edge", "region": "eu", "guild": "edges"}


@st.composite
def with_value(draw, args: list, value_strategy: st.SearchStrategy) -> list:
    """`args` with one value of its payload replaced by a drawn value, or one key added with it,
    or the drawn value as the whole payload."""
    value = draw(value_strategy)
    if args and isinstance(args[0], dict) and args[0] and draw(st.integers(0, 3)):
        payload = dict(args[0])
        key = draw(st.sampled_from(sorted(payload)))
        if isinstance(payload[key], list) and draw(st.booleans()):
            payload[key] = [*payload[key], value]
        else:
            payload[key] = value
        return [payload, *args[1:]]
    if args and isinstance(args[0], dict) and draw(st.booleans()):
        return [{**args[0], draw(keys()): value}, *args[1:]]
    return [value]


@st.composite
def with_key(draw, args: list, key_strategy: st.SearchStrategy) -> list:
    if not args or not isinstance(args[0], dict):
        return args
    return [{**args[0], draw(key_strategy): 1}, *args[1:]]


# -------------------------------------------------------------------------------------------------
# integer literals of any length
# -------------------------------------------------------------------------------------------------


EVENTS_AND_ARGS = st.sampled_from([*KNOWN_EVENTS, "nope"]).flatmap(
    lambda e: st.tuples(st.just(e), STATIC_ARGS.get(e, STATIC_ARGS["watch"])))
BIG_101 = BigLiteral("1" + "0" * 100)


@budget(60)
@given(role=ROLES, event_and_args=EVENTS_AND_ARGS.flatmap(
    lambda t: st.tuples(st.just(t[0]), with_value(t[1], big_literals()))))
# Found by this test: no ack at all for an integer literal over 100 characters (engine.io's JSON
# decoder refuses it and drops the whole packet before any handler runs).
@example(role="player", event_and_args=("leaderboard:get", [{"board": "global", "limit": BIG_101}]))
@example(role="spectator", event_and_args=("watch", [{"room": BIG_101}]))
async def test_socket_integer_literals_of_any_length(role, event_and_args, actors):
    event, args = event_and_args
    await exchange(actors, role, event, args)
    if event.startswith("action:"):
        await assert_total(actors, f"{event} {show(args)}")


@budget(30)
@given(big=big_literals(), target=st.sampled_from(["session", "suspension"]),
       field=st.sampled_from(["player_id", "name", "region", "guild", "suspended", "(extra)", "(whole body)"]))
# Found by this test: 503 unavailable for an integer literal over 4,300 digits (json.loads raises a
# plain ValueError, which the body reader does not turn into invalid_payload).
@example(big=BigLiteral("1" + "0" * 4300), target="session", field="player_id")
async def test_http_integer_literals_of_any_length(big, target, field, server, http):
    if target == "session":
        value: object = dict(GOOD_SESSION)
        url, method, headers = f"{server.url}/api/v1/sessions", "POST", {}
    else:
        value = {"suspended": True}
        owner = next(iter(server.registry.players), None) or "edge_player"
        url, method, headers = f"{server.url}/api/v1/players/{owner}/suspension", "PUT", \
            {"Authorization": f"Bearer {API_KEY}"}
    if field == "(whole body)":
        value = big
    elif field == "(extra)":
        value[f"n{len(big.digits)}"] = big
    elif field in value:
        value[field] = big
    else:
        value[field] = [big]
    body = dumps(value).encode()
    verdict, _ = body_verdict(body, session_verdict if target == "session" else suspension_verdict)
    allowed = expected_body_status(len(body), verdict, 201 if target == "session" else 200)
    if target == "suspension" and not server.registry.players:
        allowed |= {404}
    where = f"{method} {url.removeprefix(server.url)} body={show(body)}"
    reply = await request(http, method, url, data=body, headers=headers)
    await common(server, http, reply, where, method)
    assert reply.status in allowed, f"{where}: {reply!r}; PROTOCOL.md allows {sorted(allowed)}"
    if reply.status == 201:
        server.registry.add_player(value["player_id"])


# -------------------------------------------------------------------------------------------------
# lone surrogates
# -------------------------------------------------------------------------------------------------


def strings_replaced(args: list) -> st.SearchStrategy[list]:
    """`args` with one string value of its payload (or a key) turned into one with a lone surrogate."""
    surrogate = lone_surrogate_texts()
    if args and isinstance(args[0], dict):
        payload = args[0]
        strings = sorted(k for k, v in payload.items() if isinstance(v, str))
        if strings:
            def replace(t):
                key, text, where = t
                old = payload[key]
                cut = where % (len(old) + 1)
                return [{**payload, key: old[:cut] + text + old[cut:]}, *args[1:]]
            return st.one_of(st.tuples(st.sampled_from(strings), surrogate, st.integers(0, 100)).map(replace),
                             with_key(args, surrogate))
        return with_key(args, surrogate)
    return st.just(args)


@pytest.mark.parametrize("event", KNOWN_EVENTS)
@budget(16)
@given(data=st.data(), role=ROLES)
async def test_socket_lone_surrogates(event, role, data, actors):
    """Any event, a lone surrogate in one of its strings or keys (live tokens and proofs too)."""
    base = data.draw(actors.strategies[event], label="payload")
    args = data.draw(strings_replaced(base), label="with a lone surrogate")
    await exchange(actors, role, event, args, also=frozenset({"invalid_payload"}))
    if event.startswith("action:"):
        await assert_total(actors, f"{event} {show(args)}")


@budget(20)
@given(challenge=st.integers(0, 4), text=lone_surrogate_texts(), keep_proof=st.booleans())
# Found by this test: `unavailable` (an unexpected error on the server: UnicodeEncodeError while
# hashing) for a lone surrogate in the proof of a live challenge.
@example(challenge=0, text="\ud800", keep_proof=False)
async def test_socket_lone_surrogate_in_a_live_challenges_proof(challenge, text, keep_proof, actors):
    """The player's own live challenge with a proof holding a lone surrogate: no such proof has
    UTF-8 bytes to hash (section 5), so it is never valid: proof_invalid or invalid_payload."""
    token, proof = actors.pool.tokens[challenge], actors.pool.proofs[challenge]
    args = [{"token": token, "proof": (proof + text) if keep_proof else text}]
    await exchange(actors, "player", "action:complete", args, also=frozenset({"invalid_payload"}))
    await assert_total(actors, f"action:complete {show(args)}")


@budget(30)
@given(field=st.sampled_from(["player_id", "name", "region", "guild", "(key)"]), text=lone_surrogate_texts())
async def test_http_lone_surrogates(field, text, server, http):
    body_value = dict(GOOD_SESSION)
    if field == "(key)":
        body_value[text] = "x"
    else:
        body_value[field] = body_value[field][:2] + text
    body = dumps(body_value).encode()
    verdict, _ = body_verdict(body, session_verdict)
    assert verdict == INVALID  # no such text is a valid id, printable name or region
    where = f"POST /api/v1/sessions body={show(body)}"
    reply = await request(http, "POST", f"{server.url}/api/v1/sessions", data=body)
    await common(server, http, reply, where, "POST")
    assert reply.status == 400, f"{where}: {reply!r}; PROTOCOL.md: invalid_payload"
