"""Hypothesis strategies: arbitrary JSON values, near-valid payloads for every Socket.IO event
and HTTP endpoint of PROTOCOL.md, and the pieces of HTTP requests (paths, queries, headers, bodies).

Near-valid means: the event's or endpoint's own field set, and either all of it valid or some of
it mutated: each field valid, close to valid (boundaries, case, separators), any JSON value or
missing, plus sometimes extra keys. Values only the running server can give (live challenge
tokens with their proofs, player ids) come from a `Pool` the test fills before it draws; tests
that pin inputs with `@example` use `STATIC_POOL` instead.

Text is surrogate-free everywhere except in `lone_surrogate_texts`, which the wire-edge tests use.
Note `weighted`: hypothesis' `one_of` ignores a strategy given twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz.wire import KNOWN_EVENTS, PERIODS, REGIONS, BigLiteral, dumps


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """one_of with weights. (`st.one_of(a, a, b)` is not 2:1: one_of drops repeated strategies.)"""
    return st.one_of(*[strategy.map(lambda v: v) for weight, strategy in choices for _ in range(weight)])


CATALOGUE = ("quick", "big", "slow", "brief", "limited", "hard")  # tests/conftest.py TEST_ACTIONS
RESERVED_EVENTS = ("connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener",
                   "message", "error")

# -------------------------------------------------------------------------------------------------
# scalars
# -------------------------------------------------------------------------------------------------

ODD_TEXT = [
    "", " ", "  ", "\t", "\n", "\r\n", "\x00", "a\x00b", "\x1b[31m", "\x7f", "\x85", "\xa0", "\u200b", "\u200d",
    "\u2028", "\u202e", "\ufeff", "\ufffd", "\uffff", "\U0010ffff", "é", "e\u0301", "ǅ", "ß", "İ", "١٢٣", "５",
    "𝟙", "🙂", "👩\u200d👩\u200d👧", "null", "true", "false", "0", "-1", "1e309", "NaN", "Infinity", "[]", "{}",
    '"', "\\", "%00", "%ff", "../", "..", ".", "/", "?", "#", "&", "=", ":", "{", "}", "{x}", "<script>",
    "' OR 1=1 --", '{"$ne": 1}', "$where", "$gt", "__proto__", "constructor", "toString", "region:eu", "guild:owls",
    "global", "player:p1", "quick", "all", "Bearer", "🙂" * 17,
]
# Lengths at and around the limits PROTOCOL.md and common sense give: ids 64, names 32, rooms.
BOUNDARY_LENGTHS = [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 79, 80, 81, 100, 101, 2047, 2048, 2049]
EDGE_INTS = [0, 1, -1, 2, 9, 10, 11, 99, 100, 101, 1000, 1_000_000, 1_000_001, 2**31 - 1, 2**31, -(2**31) - 1,
             2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**30),
             10**99 - 1, -(10**98)]


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode text, surrogate-free: hypothesis' own text, odd characters, boundary lengths."""
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(ODD_TEXT),
        st.text(st.sampled_from("aZ09_-:. é\x00🙂"), max_size=max_size),
        st.builds(lambda n, c: c * n, st.sampled_from(BOUNDARY_LENGTHS), st.sampled_from("ag_é🙂 ")),
    )


def ints() -> st.SearchStrategy[int]:
    """Integers, huge included (at most 99 digits: longer literals are the wire-edge tests' domain)."""
    return st.one_of(st.integers(-1000, 1000), st.integers(), st.sampled_from(EDGE_INTS),
                     st.integers(-(10**40), 10**40))


def floats(nonfinite: bool = True) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(allow_nan=nonfinite, allow_infinity=nonfinite),
                     st.sampled_from([0.0, -0.0, 1.0, 10.0, 1.5, 1e308, 5e-324, 100.0, 1e-7]))


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def json_values(nonfinite: bool = True, max_leaves: int = 10) -> st.SearchStrategy[object]:
    """Arbitrary JSON: None, bools, ints (huge too), floats (NaN and +-Infinity as Python's JSON
    writes them when `nonfinite`), unicode text, lists and objects, nested, and deep nesting."""
    scalars = st.one_of(st.none(), st.booleans(), ints(), floats(nonfinite), texts())
    tree = st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(keys(), inner, max_size=4)),
        max_leaves=max_leaves,
    )
    return weighted((9, tree), (1, st.integers(2, 120).map(nested)))


def keys() -> st.SearchStrategy[str]:
    known = ["room", "action", "token", "proof", "board", "period", "limit", "offset", "around", "player_id",
             "name", "region", "guild", "suspended", "points", "score", "ok", "error", "duplicate", "action_id",
             "difficulty", "min_ms", "Room", "ROOM", "room ", "", "__proto__", "$set"]
    return st.one_of(st.sampled_from(known), texts(max_size=12))


# -------------------------------------------------------------------------------------------------
# near-valid objects
# -------------------------------------------------------------------------------------------------

MISSING = object()


@dataclass(frozen=True)
class Field:
    """One field of a payload: a strategy for valid values and one for values near them."""

    valid: st.SearchStrategy
    near: st.SearchStrategy
    required: bool = True


@st.composite
def near_valid(draw, fields: dict[str, Field]) -> dict:
    """Either a valid payload (each optional field present or not), or one with mutations: each
    field valid, near-valid, any JSON value or missing; sometimes extra keys or another key order.
    Shrinks toward the valid payload."""
    obj: dict = {}
    mutate = draw(st.booleans())
    for name, spec in fields.items():
        if not mutate:
            if spec.required or draw(st.booleans()):
                obj[name] = draw(spec.valid)
            continue
        value = draw(weighted((3, spec.valid), (2, spec.near), (1, json_values()),
                              (1 if spec.required else 3, st.just(MISSING))))
        if value is not MISSING:
            obj[name] = value
    if mutate and draw(st.integers(0, 3)) == 0:
        for key, value in draw(st.dictionaries(keys(), json_values(max_leaves=4), min_size=1, max_size=2)).items():
            obj.setdefault(key, value)
    if obj and draw(st.integers(0, 9)) == 0:  # same fields, another order
        obj = dict(reversed(list(obj.items())))
    return obj


VALID_ID = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


def ids() -> st.SearchStrategy[str]:
    """Strings close to `[A-Za-z0-9_-]{1,64}`: valid ones, and ones just outside."""
    return st.one_of(VALID_ID, st.sampled_from(["a" * 64, "a" * 65, "", "a b", "a\n", "a:b", "ä", "a.b", "A-_9"]),
                     texts(max_size=70))


def valid_rooms(guild: str | None = None) -> st.SearchStrategy[str]:
    own = [f"guild:{guild}"] if guild else []
    return weighted((3, st.sampled_from([f"region:{r}" for r in REGIONS] + own)),
                    (1, VALID_ID.map(lambda g: f"guild:{g}")))


def near_rooms() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda g: f"guild:{g}", ids()),
        st.builds(lambda kind, rest: f"{kind}{rest}", st.sampled_from(["region:", "guild:", "Region:", "region",
                                                                       "player:", "global:", ":", "REGION:"]),
                  st.one_of(st.sampled_from(list(REGIONS) + ["EU", "eu ", " eu", "mars", ""]), texts(max_size=12))),
        st.sampled_from(["global", "region:eu:x", "guild:a:b", "region:eu\x00", "guild:" + "g" * 64,
                         "guild:" + "g" * 65]),
        texts(),
    )


def valid_boards(guild: str | None = None) -> st.SearchStrategy[str]:
    return st.one_of(st.just("global"), valid_rooms(guild))


def near_boards() -> st.SearchStrategy[str]:
    return st.one_of(near_rooms(), st.sampled_from(["Global", "GLOBAL", " global", "global ", "all", "region",
                                                     "guild", "{board}", "guild:{x}", "region:{eu}"]))


def near_periods() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["ALL", "Daily", "yearly", "", " all", "all\n"]), texts(max_size=10))


@dataclass
class Pool:
    """Values only the running server can give: challenge tokens and their proofs, player ids."""

    tokens: list[str] = field(default_factory=list)
    proofs: list[str] = field(default_factory=list)
    players: list[str] = field(default_factory=list)
    guild: str | None = None


# For tests whose inputs must not depend on the running server (so that `@example` can pin
# inputs): well-formed tokens this server never signed, and ids no player has.
STATIC_POOL = Pool(tokens=["WyJ4Il0.aw5XXg.forged-signature", "eyJhbGciOiJub25lIn0.e30."], proofs=["1", "42"],
                   players=["nobody_here", "p1"], guild="owls")


def mutated(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A string a step away from a valid one."""
    return st.one_of(
        base.map(lambda s: s[:-1]), base.map(lambda s: s + "x"), base.map(lambda s: s.upper()),
        base.map(lambda s: " " + s), base.map(lambda s: s + "\n"), base.map(lambda s: s[::-1]),
        st.tuples(base, st.integers(0, 2048), st.characters(exclude_categories=["Cs"])).map(
            lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) + 1:]),
    )


def socket_payloads(event: str, pool: Pool) -> st.SearchStrategy[dict]:
    """Near-valid payloads for one event (sections 4-6 field sets)."""
    if event in ("watch", "unwatch"):
        return near_valid({"room": Field(valid_rooms(pool.guild), near_rooms())})
    if event == "action:start":
        return near_valid({"action": Field(st.sampled_from(CATALOGUE),
                                           st.one_of(mutated(st.sampled_from(CATALOGUE)), texts(max_size=70)))})
    if event == "action:complete":
        # A challenge token and its proof drawn together, so that valid completions happen.
        def payload(pair: tuple[str, str]) -> st.SearchStrategy[dict]:
            token, proof = st.just(pair[0]), st.just(pair[1])
            return near_valid({
                "token": Field(token, st.one_of(mutated(token), st.sampled_from(pool.tokens), texts(max_size=80))),
                "proof": Field(weighted((2, proof), (1, st.integers(0, 10**6).map(str))),
                               st.one_of(st.text(min_size=1, max_size=64), mutated(proof), texts(max_size=80))),
            })
        return st.sampled_from(list(zip(pool.tokens, pool.proofs, strict=True))).flatmap(payload)
    if event == "leaderboard:get":
        around = st.sampled_from(pool.players) if pool.players else VALID_ID
        return near_valid({
            "board": Field(valid_boards(pool.guild), near_boards()),
            "period": Field(st.sampled_from(PERIODS), near_periods(), required=False),
            "limit": Field(st.integers(1, 100), st.one_of(st.sampled_from([0, 101, -1, 10.0, "10", True]), ints()),
                           required=False),
            "offset": Field(st.integers(0, 50), st.one_of(st.sampled_from([-1, 0.0, "0", False]), ints()),
                            required=False),
            "around": Field(st.one_of(around, VALID_ID), ids(), required=False),
        })
    raise AssertionError(event)


def socket_args(payload: st.SearchStrategy) -> st.SearchStrategy[list]:
    """The arguments after the event name: mostly the one payload, sometimes none, several, or
    something that is not an object."""
    return weighted(
        (12, payload.map(lambda p: [p])),
        (1, st.just([])),
        (1, st.tuples(payload, json_values(max_leaves=4)).map(list)),
        (1, json_values().map(lambda v: [v])),
        (1, st.lists(json_values(max_leaves=4), min_size=2, max_size=3)),
    )


def unknown_event_names() -> st.SearchStrategy[object]:
    """Event names no handler has: any text, near misses of the real ones, reserved lifecycle
    names, and scalars that are not strings (an object or array as a name is not an event)."""
    near = st.sampled_from(KNOWN_EVENTS).flatmap(lambda e: mutated(st.just(e)))
    return st.one_of(
        texts().filter(lambda s: s not in KNOWN_EVENTS),
        near.filter(lambda s: s not in KNOWN_EVENTS),
        st.sampled_from(RESERVED_EVENTS),
        st.sampled_from(["action:cancel", "action:credit", "score:set", "leaderboard:delta", "achievement:unlocked",
                         "reserved:connect", "*", "leaderboard:GET"]),
        st.one_of(st.none(), st.booleans(), ints(), floats()),
    )


def lone_surrogate_texts() -> st.SearchStrategy[str]:
    """Text holding a lone UTF-16 surrogate: legal in JSON text as an escape (`"\\ud800"`), and
    what a JS client sends for a string cut in the middle of an emoji."""
    surrogate = st.integers(0xD800, 0xDFFF).map(chr)
    return st.tuples(st.text(max_size=8), surrogate, st.text(max_size=8)).map("".join)


def big_literals() -> st.SearchStrategy[BigLiteral]:
    """Integer literals of 100 to 5,000 digits: legal JSON numbers that a decoder may refuse."""
    return st.tuples(st.sampled_from(["", "-"]), st.sampled_from([100, 101, 200, 4300, 4301, 5000]),
                     st.sampled_from("123456789")).map(lambda t: BigLiteral(t[0] + t[2] + "0" * (t[1] - 1)))


# -------------------------------------------------------------------------------------------------
# HTTP pieces
# -------------------------------------------------------------------------------------------------


def encode_segment(text: str) -> str:
    """A path segment, percent-encoded whole (dots too, so no segment is `.` or `..`)."""
    return quote(text, safe="").replace(".", "%2E")


def raw_segment(data: bytes) -> str:
    """Bytes as a percent-encoded path segment or query item: any byte, UTF-8 or not."""
    return "".join(f"%{b:02X}" for b in data)


@dataclass(frozen=True)
class Part:
    """A path segment or query item: its text, or raw bytes when it is not text."""

    text: str | None = None
    raw: bytes | None = None

    def encoded(self) -> str:
        if self.raw is not None:
            return raw_segment(self.raw)
        assert self.text is not None, "a Part holds text or raw bytes"
        return encode_segment(self.text)

    def decoded(self) -> str | None:
        """What the server reads, when it is UTF-8; None for bytes that are not."""
        if self.raw is None:
            return self.text
        try:
            return self.raw.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def __repr__(self) -> str:
        return repr(self.text) if self.raw is None else f"bytes{self.raw!r}"


def parts(text: st.SearchStrategy[str]) -> st.SearchStrategy[Part]:
    return weighted((4, text.map(lambda t: Part(text=t))),
                    (1, st.binary(min_size=1, max_size=12).map(lambda b: Part(raw=b))))


QUERY_KEYS = ("period", "limit", "offset", "around")


def query_items(players: list[str]) -> st.SearchStrategy[list[tuple[Part, Part]]]:
    """key=value pairs for the leaderboard query: the four keys with valid and invalid values,
    unknown keys, repeats."""
    def value_for(key: str) -> st.SearchStrategy[str]:
        if key == "period":
            return weighted((2, st.sampled_from(PERIODS)), (1, near_periods()))
        if key in ("limit", "offset"):
            return st.one_of(st.integers(-2, 120).map(str), ints().map(str),
                             st.sampled_from(["", "1.5", "1e2", "0x10", "+5", " 5", "5 ", "٥", "５", "010", "true"]),
                             texts(max_size=8))
        return st.one_of(st.sampled_from(players) if players else ids(), ids())

    def item(key: str) -> st.SearchStrategy[tuple[Part, Part]]:
        return st.tuples(st.just(Part(text=key)), parts(value_for(key)))

    known = st.sampled_from(QUERY_KEYS).flatmap(item)
    unknown = st.tuples(parts(st.one_of(keys(), st.sampled_from(["Limit", "limit ", "board", "sort", "", "ok"]))),
                        parts(texts(max_size=10)))
    valid = st.fixed_dictionaries({}, optional={
        "period": st.sampled_from(PERIODS), "limit": st.integers(1, 100).map(str),
        "offset": st.integers(0, 50).map(str), "around": st.sampled_from(players) if players else VALID_ID,
    }).map(lambda d: [(Part(text=k), Part(text=v)) for k, v in d.items()])
    return weighted((1, valid), (1, st.lists(weighted((4, known), (1, unknown)), max_size=5)))


def query_string(items: list[tuple[Part, Part]]) -> str:
    return "&".join(f"{k.encoded()}={v.encoded()}" for k, v in items)


def header_values() -> st.SearchStrategy[str]:
    """Header values aiohttp will send: no control characters."""
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x10FFFF, exclude_characters="\x7f",
                                 exclude_categories=("Cs", "Cc")), max_size=60)


def authorization(key: str, right: int = 1) -> st.SearchStrategy[str | None]:
    """None (no header), the right header (`right` is its weight), near misses, and anything."""
    return weighted(
        (3, st.none()),
        (right, st.just(f"Bearer {key}")),
        (1, st.sampled_from([f"bearer {key}", f"BEARER {key}", f"Bearer  {key}", f"Bearer {key} ", f"Bearer {key}x",
                             f"Bearer {key[:-1]}", f"Basic {key}", key, "Bearer", "Bearer ", "", f"Token {key}",
                             f"Bearer {key.upper()}"])),
        (1, header_values().map(lambda v: "Bearer " + v)),
        (1, header_values()),
    )


def session_bodies(players: list[str] | None = None) -> st.SearchStrategy[dict]:
    """Near-valid POST /api/v1/sessions bodies (section 3)."""
    player_id = st.one_of(VALID_ID, st.sampled_from(players)) if players else VALID_ID
    return near_valid({
        "player_id": Field(player_id, ids()),
        "name": Field(st.from_regex(r"[ -~]{0,31}[!-~]", fullmatch=True),
                      st.one_of(st.text(min_size=1, max_size=33), texts(40))),
        "region": Field(st.sampled_from(REGIONS), st.one_of(st.sampled_from(["EU", "mars", "", "eu ", "region:eu"]),
                                                           texts(10))),
        "guild": Field(VALID_ID, st.one_of(ids(), st.none()), required=False),
    })


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are not JSON, or almost: random bytes, JSON cut short or with a byte flipped,
    JSON in other encodings, a BOM, several documents."""
    doc = json_values(max_leaves=6).map(lambda v: dumps(v).encode("utf-8"))
    return st.one_of(
        st.binary(max_size=64),
        st.tuples(doc, st.integers(0, 200)).map(lambda t: t[0][: t[1]]),
        st.tuples(doc, st.integers(0, 200), st.integers(0, 255)).map(
            lambda t: t[0][: t[1] % (len(t[0]) + 1)] + bytes([t[2]]) + t[0][t[1] % (len(t[0]) + 1) + 1:]),
        doc.map(lambda d: d.decode().encode("utf-16")),
        doc.map(lambda d: b"\xef\xbb\xbf" + d),
        st.tuples(doc, doc).map(lambda t: t[0] + b" " + t[1]),
        st.sampled_from([b"", b" ", b"\n", b"null", b"{}", b"[]", b'"x"', b"{", b"}", b"NaN", b"-Infinity",
                         b"1" * 99, b"01", b"1e999", b"-0", b'{"a":1,}', b"{'a': 1}", b"\x00", b"\xff"]),
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "PROPPATCH", "MKCOL",
           "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE", "LINK", "UNLINK")
PATH_WORDS = ("api", "v1", "v2", "sessions", "leaderboards", "players", "actions", "suspension", "healthz", "readyz",
              "metrics", "static", "vendor", "socket.io.min.js", "index.html", "app.js", "global", "region:eu", "p1",
              "API", "V1", "", "..", ".", "%", "admin", ".env", "socket.io.js")


def path_parts() -> st.SearchStrategy[list[Part]]:
    return st.lists(parts(st.one_of(st.sampled_from(PATH_WORDS), texts(max_size=16))), min_size=0, max_size=6)
