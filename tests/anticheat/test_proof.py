"""Proof of work: SHA-256 of the UTF-8 bytes of token + ":" + proof (PROTOCOL.md section 5)."""

from __future__ import annotations

import hashlib

import pytest

from app.anticheat.proof import leading_zero_bits, proof_ok, solve


def bits(token: str, proof: str) -> int:
    """An independent count of leading zero bits, by string formatting."""
    digest = hashlib.sha256((token + ":" + proof).encode("utf-8")).digest()
    binary = "".join(f"{b:08b}" for b in digest)
    return len(binary) - len(binary.lstrip("0"))


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        (bytes(32), 256),
        (b"\xff" + bytes(31), 0),
        (b"\x80" + bytes(31), 0),
        (b"\x7f" + bytes(31), 1),
        (b"\x01" + bytes(31), 7),
        (b"\x00\x80" + bytes(30), 8),
        (b"\x00\x01" + bytes(30), 15),
        (b"\x00\x00\x0f" + bytes(29), 20),
        (bytes(31) + b"\x01", 255),
        (b"\x00", 8),
        (b"\x10", 3),
    ],
)
def test_leading_zero_bits_of_known_digests(digest: bytes, expected: int) -> None:
    assert leading_zero_bits(digest) == expected


def test_leading_zero_bits_of_real_sha256_digests() -> None:
    for n in range(300):
        digest = hashlib.sha256(f"t:{n}".encode()).digest()
        assert leading_zero_bits(digest) == bits("t", str(n))


def find_proof(token: str, wanted: int, candidates) -> str:
    for p in candidates:
        if bits(token, p) == wanted:
            return p
    raise AssertionError("no candidate found")


def test_proof_ok_true_and_false_around_the_difficulty() -> None:
    token = "tok.en-123"
    proof = find_proof(token, 6, (str(n) for n in range(100_000)))
    assert proof_ok(token, proof, 0)
    assert proof_ok(token, proof, 5)
    assert proof_ok(token, proof, 6)
    assert not proof_ok(token, proof, 7)
    assert not proof_ok(token, proof, 256)


def test_proof_ok_with_difficulty_zero_accepts_anything() -> None:
    assert proof_ok("t", "whatever", 0)


def test_proof_ok_agrees_with_an_independent_count() -> None:
    token = "abc"
    for n in range(500):
        counted = bits(token, str(n))
        for difficulty in (1, 2, 3, 4):
            assert proof_ok(token, str(n), difficulty) is (counted >= difficulty)


@pytest.mark.parametrize("difficulty", [0, 1, 4, 8, 12])
def test_solve_finds_a_valid_proof(difficulty: int) -> None:
    token = f"challenge-{difficulty}"
    proof = solve(token, difficulty)
    assert 1 <= len(proof) <= 64
    assert proof_ok(token, proof, difficulty)
    assert bits(token, proof) >= difficulty


def test_unicode_proofs_are_hashed_as_utf8() -> None:
    token = "tøken-ü"
    candidates = (f"é{n}☃" for n in range(100_000))
    proof = find_proof(token, 5, candidates)
    assert proof_ok(token, proof, 5)
    assert not proof_ok(token, proof, 6)
    digest = hashlib.sha256(f"{token}:{proof}".encode()).digest()
    assert leading_zero_bits(digest) == 5
    # Another encoding of the same text gives another digest: it is UTF-8 that counts.
    latin = hashlib.sha256(f"{token}:{proof}".encode("utf-16-le")).digest()
    assert latin != digest


def test_emoji_proof_outside_the_bmp() -> None:
    token = "t"
    proof = find_proof(token, 4, (f"😀{n}" for n in range(100_000)))
    assert proof_ok(token, proof, 4)
    assert not proof_ok(token, proof, 5)
