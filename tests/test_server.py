"""What the server logs of its store URLs: never a password, token or key."""

from __future__ import annotations

import pytest

from app.server import _redact


@pytest.mark.parametrize(("url", "logged"), [
    ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
    ("redis://:hunter2@redis.internal:6379/0", "redis://****@redis.internal:6379/0"),
    ("mongodb://app:hunter2@m1:27017,m2:27017/game?replicaSet=rs0&authSource=admin",
     "mongodb://****@m1:27017,m2:27017/game?replicaSet=rs0&authSource=admin"),
    # An unescaped "@" or "/" in the password.
    ("redis://app:hun@ter/2@redis.internal:6379/0", "redis://****@redis.internal:6379/0"),
    ("redis://redis.internal:6379/0?password=hunter2", "redis://redis.internal:6379/0?password=****"),
    ("mongodb://m1/game?authSource=admin&authPassword=hunter2&w=majority",
     "mongodb://m1/game?authSource=admin&authPassword=****&w=majority"),
    ("redis+sentinel://:hunter2@s1:26379,s2:26379/mymaster?sentinel_password=hunter3",
     "redis+sentinel://****@s1:26379,s2:26379/mymaster?sentinel_password=****"),
    ("redis://r/0?client_secret=a&session_token=b&apiKey=c&tlsCertificateKeyFilePassword=d&db=1",
     "redis://r/0?client_secret=****&session_token=****&apiKey=****&tlsCertificateKeyFilePassword=****&db=1"),
    ("mongodb://m1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:hunter2",
     "mongodb://m1/?authMechanism=MONGODB-AWS&authMechanismProperties=****"),
    ("redis://r/0?PASS%57ORD=hunter2", "redis://r/0?PASS%57ORD=****"),  # names compared decoded, any case
])
def test_redact_hides_credentials(url: str, logged: str) -> None:
    assert _redact(url) == logged
    assert "hunter" not in _redact(url)
