"""SECRET_KEY rotation (PROTOCOL.md 2, v1.1) on real servers: the first key signs, every listed
key verifies, so adding a new key first logs nobody out, and dropping the old one ends its tokens."""

from __future__ import annotations

from app.anticheat.proof import solve
from app.config import Secret
from tests.support import connect_refusal, create_session, open_client

KEY_A = "rotation-key-A-0123456789"
KEY_B = "rotation-key-B-0123456789"


async def plays(url: str, token: str) -> None:
    client = await open_client(url, token)
    try:
        _, ack = await client.play("quick")
        assert ack["ok"], ack
    finally:
        await client.sio.disconnect()


async def test_rotating_the_secret_key(start_app, settings, http):
    on_a = await start_app(settings, secret_key=Secret(KEY_A))
    rotated = await start_app(settings, secret_key=(Secret(KEY_B), Secret(KEY_A)))
    on_b = await start_app(settings, secret_key=Secret(KEY_B))

    # A session from before the rotation still plays on the rotated server.
    old = await create_session(http, on_a.url)
    await plays(rotated.url, old["token"])
    # A challenge signed under A is completed on the rotated server.
    client = await open_client(on_a.url, old["token"])
    try:
        started = await client.call("action:start", {"action": "quick"})
        assert started["ok"], started
    finally:
        await client.sio.disconnect()
    challenge = started["challenge"]
    client = await open_client(rotated.url, old["token"])
    try:
        ack = await client.call("action:complete", {"token": challenge["token"],
                                                    "proof": solve(challenge["token"], challenge["difficulty"])})
        assert ack["ok"] and ack["duplicate"] is False, ack
    finally:
        await client.sio.disconnect()

    # New sessions are signed with B: the B-only server takes them, an A-only one does not.
    new = await create_session(http, rotated.url)
    await plays(on_b.url, new["token"])
    assert await connect_refusal(on_a.url, {"token": new["token"]}) == {"message": "token_invalid"}

    # Once A is dropped, its tokens are refused.
    assert await connect_refusal(on_b.url, {"token": old["token"]}) == {"message": "token_invalid"}
