"""Proof of work: SHA-256(token + ":" + proof) must start with `difficulty` zero bits."""

from __future__ import annotations

import hashlib
from itertools import count


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def proof_ok(token: str, proof: str, difficulty: int) -> bool:
    try:
        data = f"{token}:{proof}".encode()
    except UnicodeEncodeError:
        return False  # a lone surrogate (JSON "\ud800") has no UTF-8 bytes: no proof holds one
    return leading_zero_bits(hashlib.sha256(data).digest()) >= difficulty


def solve(token: str, difficulty: int) -> str:
    """What a client does; used by tests and benchmarks."""
    for n in count():
        if proof_ok(token, str(n), difficulty):
            return str(n)
    raise AssertionError("unreachable")
