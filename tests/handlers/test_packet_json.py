"""The JSON of Socket.IO packets (app/handlers/sockets.py PacketJson): orjson where it gives the
standard library's answer, the standard library (with the long-integer rule) everywhere else."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from app.handlers.sockets import PacketJson


def standard(text: str) -> object:
    """What PacketJson read before orjson: the standard library, integers over 100 digits as floats."""
    return json.loads(text, parse_int=lambda digits: int(digits) if len(digits) <= 100 else float(digits))


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_json_reads_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value)
    assert same(PacketJson.loads(text), standard(text))
    assert same(PacketJson.loads(PacketJson.dumps(value, separators=(",", ":"))), standard(text))


@pytest.mark.parametrize("text", [
    "[" + "9" * 25 + "]",  # past 64 bits: an int for the standard library, a float for orjson
    "[" + "9" * 101 + "]",  # over 100 digits: a float
    "[" + "9" * 400 + "]",  # past 1e308: inf, which orjson refuses
    "[NaN, Infinity, -Infinity]",
    '["\\ud800"]',  # a lone surrogate
    '{"a": 1, "a": 2}',
    "[" * 200 + "]" * 200,
])
def test_texts_orjson_reads_otherwise_read_as_before(text: str) -> None:
    assert same(PacketJson.loads(text), standard(text))


@pytest.mark.parametrize("text", ["", "[1,]", "{'a': 1}", "[1] x", "\x00", "[" * 100_000])
def test_what_the_standard_library_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        PacketJson.loads(text)


def test_written_json_is_the_same_value_whatever_the_writer() -> None:
    for value in ([{"ok": True, "name": "Zoë 😀", "n": 10**30, 3: "int key"}], {"a": [1.5, None, "x"]}):
        assert json.loads(PacketJson.dumps(value)) == json.loads(json.dumps(value))
