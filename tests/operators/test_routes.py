"""What every operator route answers to bad input: 401 without the key whatever the path or
body, 400 invalid_payload for a bad cursor, limit or query key, 404 not_found for a player that
never existed; and nothing sent to them moves a point."""

from __future__ import annotations

import pytest

from tests.support import Operator

ROUTES = [
    ("GET", "/api/v1/admin/players/{pid}/actions"),
    ("GET", "/api/v1/admin/players/{pid}/export"),
    ("DELETE", "/api/v1/admin/players/{pid}"),
    ("GET", "/api/v1/admin/suspects"),
    ("GET", "/api/v1/admin/stats"),
    ("PUT", "/api/v1/players/{pid}/suspension"),
]
WRONG_KEYS = [None, "Bearer wrong", "Basic b3BlcmF0b3I=", "Bearer", "operator-key-0123456789"]


@pytest.mark.parametrize(("method", "path"), [
    *ROUTES,
    ("GET", "/api/v1/admin/nothing/here"),
    ("POST", "/api/v1/admin/players/x/actions"),
    ("GET", "/api/v1/admin"),
    ("GET", "/api/v1/admin/players/x"),
])
async def test_without_the_key_every_operator_path_is_401_whatever_the_body(operator: Operator, player, method,
                                                                           path):
    session, _ = await player()
    pid = session["player"]["player_id"]
    for auth in WRONG_KEYS:
        headers = {"Authorization": auth} if auth else {}
        for body in (None, b"{not json", b'{"suspended": true, "hidden": true}'):
            status, reply = await operator.call(method, path.format(pid=pid) + "?limit=0&junk=1", key=False,
                                                headers=headers, data=body)
            assert status == 401, (method, path, auth, body, status, reply)
            assert reply["error"]["code"] == "unauthorized"
    # Nothing was done: the player is as it was.
    profile = await operator.ok("GET", f"/api/v1/players/{pid}")
    assert profile["player"]["player_id"] == pid


async def test_with_the_key_an_unknown_path_is_404_and_a_wrong_method_405(operator: Operator):
    status, reply = await operator.call("GET", "/api/v1/admin/nothing/here")
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, reply = await operator.call("GET", "/api/v1/admin/players/x")
    assert status == 405 and reply["error"]["code"] == "method_not_allowed"
    status, reply = await operator.call("POST", "/api/v1/admin/stats")
    assert status == 405


@pytest.mark.parametrize("query", [
    "limit=0", "limit=201", "limit=-1", "limit=abc", "limit=1.5", "limit=1&limit=2",
    "cursor=nonsense", "cursor=12.zz", "cursor=" + "9" * 300, "cursor=2.0~bob", "cursor=nan~bob",
    "cursor=0.5~bad%20id", "junk=1",
])
@pytest.mark.parametrize("path", ["/api/v1/admin/players/{pid}/actions", "/api/v1/admin/suspects"])
async def test_a_bad_cursor_limit_or_query_key_is_400(operator: Operator, player, query, path):
    session, _ = await player()
    pid = session["player"]["player_id"]
    status, reply = await operator.call("GET", path.format(pid=pid) + "?" + query)
    assert status == 400, (path, query, status, reply)
    assert reply["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize("path", ["/api/v1/admin/players/{pid}/export", "/api/v1/admin/stats"])
async def test_routes_without_a_query_refuse_one(operator: Operator, player, path):
    session, _ = await player()
    status, reply = await operator.call("GET", path.format(pid=session["player"]["player_id"]) + "?limit=5")
    assert status == 400 and reply["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/admin/players/{pid}/actions", None),
    ("GET", "/api/v1/admin/players/{pid}/export", None),
    ("DELETE", "/api/v1/admin/players/{pid}", None),
    ("PUT", "/api/v1/players/{pid}/suspension", {"suspended": True, "hidden": True}),
])
@pytest.mark.parametrize("pid", ["nobody-ever", "bad%20id", "x" * 65])
async def test_a_player_that_never_existed_is_404(operator: Operator, method, path, body, pid):
    status, reply = await operator.call(method, path.format(pid=pid), json=body)
    assert status == 404, (method, path, pid, status, reply)
    assert reply["error"]["code"] == "not_found"


@pytest.mark.parametrize("body", [{}, {"suspended": "yes"}, {"suspended": True, "hidden": 1},
                                  {"suspended": True, "hidden": None}, {"suspended": True, "extra": 1}, []])
async def test_a_bad_suspension_body_is_400_and_changes_nothing(operator: Operator, player, body):
    session, client = await player()
    pid = session["player"]["player_id"]
    status, reply = await operator.call("PUT", f"/api/v1/players/{pid}/suspension", json=body)
    assert status == 400 and reply["error"]["code"] == "invalid_payload"
    _, ack = await client.play()
    assert ack["ok"], ack


async def test_no_operator_call_credits_or_takes_a_point(operator: Operator, player, drained):
    session, client = await player()
    pid = session["player"]["player_id"]
    for _ in range(3):
        assert (await client.play())[1]["ok"]
    await drained()
    calls = [
        ("GET", f"/api/v1/admin/players/{pid}/actions", None),
        ("GET", f"/api/v1/admin/players/{pid}/export", None),
        ("GET", "/api/v1/admin/suspects", None),
        ("GET", "/api/v1/admin/stats", None),
        ("PUT", f"/api/v1/players/{pid}/suspension", {"suspended": True, "hidden": True}),
        ("PUT", f"/api/v1/players/{pid}/suspension", {"suspended": False, "hidden": False}),
        ("PUT", f"/api/v1/players/{pid}/suspension", {"suspended": False}),
    ]
    for method, path, body in calls * 2:
        await operator.ok(method, path, json=body)
    await drained()
    profile = await operator.ok("GET", f"/api/v1/players/{pid}")
    assert profile["score"]["total"] == 30 and profile["ranks"]["global"] == 1
    assert await operator.board("global") == [pid]
