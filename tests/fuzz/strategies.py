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
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz.wire import BOARD_HISTORY_DAYS, KNOWN_EVENTS, PERIODS, REGIONS, BigLiteral, dumps


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """one_of with weights. (`st.one_of(a, a, b)` is not 2:1: one_of drops repeated strategies.)"""
    return st.one_of(*[strategy.map(lambda v: v) for weight, strategy in choices for _ in range(weight)])


CATALOGUE = ("quick", "big", "slow", "brief", "limited", "hard")  # tests/support.py TEST_ACTIONS
# The tournaments the fuzz fixtures put (sockets.put_tournaments), one per answer tournament:join
# has for a player of region eu (section 10): ok (running, and upcoming), tournament_closed (not
# open to eu, and ended), tournament_full.
RUNNING, UPCOMING, OTHER_REGION, FULL, ENDED = "fz_running", "fz_upcoming", "fz_na_only", "fz_full", "fz_ended"
TOURNAMENTS = (RUNNING, UPCOMING, OTHER_REGION, FULL, ENDED)
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
             "difficulty", "min_ms", "day", "week", "tournament", "tournaments", "Room", "ROOM", "room ", "",
             "__proto__", "$set"]
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


def valid_rooms(guild: str | None = None, tournaments: list[str] | tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Region rooms and the own guild's; any guild's; the tournaments' and any tournament's."""
    own = [f"guild:{guild}"] if guild else []
    known = [(1, st.sampled_from([f"tournament:{t}" for t in tournaments]))] if tournaments else []
    return weighted((5, st.sampled_from([f"region:{r}" for r in REGIONS] + own)),
                    (1, VALID_ID.map(lambda g: f"guild:{g}")), *known,
                    (1, VALID_ID.map(lambda t: f"tournament:{t}")))


def near_rooms() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda g: f"guild:{g}", ids()),
        st.builds(lambda t: f"tournament:{t}", ids()),
        st.builds(lambda kind, rest: f"{kind}{rest}", st.sampled_from(["region:", "guild:", "Region:", "region",
                                                                       "player:", "global:", ":", "REGION:",
                                                                       "tournament", "Tournament:", "tournaments:"]),
                  st.one_of(st.sampled_from(list(REGIONS) + ["EU", "eu ", " eu", "mars", ""]), texts(max_size=12))),
        st.sampled_from(["global", "region:eu:x", "guild:a:b", "region:eu\x00", "guild:" + "g" * 64,
                         "guild:" + "g" * 65, "tournament:", f"tournament:{RUNNING}:x", f"tournament:{RUNNING} ",
                         "tournament:" + "t" * 65, f"TOURNAMENT:{RUNNING}"]),
        texts(),
    )


def valid_boards(guild: str | None = None, tournaments: list[str] | tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    return st.one_of(st.just("global"), valid_rooms(guild, tournaments))


def near_boards() -> st.SearchStrategy[str]:
    return st.one_of(near_rooms(), st.sampled_from(["Global", "GLOBAL", " global", "global ", "all", "region",
                                                     "guild", "{board}", "guild:{x}", "region:{eu}"]))


def near_periods() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["ALL", "Daily", "yearly", "", " all", "all\n"]), texts(max_size=10))


# -------------------------------------------------------------------------------------------------
# ended boards: `day` and `week` (v1.1, section 6)
# -------------------------------------------------------------------------------------------------


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def _weeks_ago(n: int) -> str:
    return iso_week(datetime.now(UTC).date() - timedelta(weeks=n))


def days() -> st.SearchStrategy[str]:
    """Well-formed days: ended ones still kept, around BOARD_HISTORY_DAYS ago, today and the next
    days, any day of years 1-9999, and the calendar's edges."""
    return weighted(
        (4, st.integers(-2, BOARD_HISTORY_DAYS + 3).map(_days_ago)),
        (1, st.dates().map(date.isoformat)),
        (1, st.sampled_from(["0001-01-01", "1970-01-01", "2000-02-29", "2024-02-29", "9999-12-30", "9999-12-31"])),
    )


def weeks() -> st.SearchStrategy[str]:
    """Well-formed ISO weeks, as `days`: recent, around BOARD_HISTORY_DAYS ago, this one and the
    next, any week of years 1-9999, and 53rd weeks."""
    return weighted(
        (4, st.integers(-2, BOARD_HISTORY_DAYS // 7 + 2).map(_weeks_ago)),
        (1, st.dates().map(iso_week)),
        (1, st.sampled_from(["0001-W01", "1970-W01", "2004-W53", "2020-W53", "2026-W53", "9999-W51", "9999-W52"])),
    )


def board_read_cases() -> dict[str, tuple[str, dict[str, str], str]]:
    """Board reads whose answer PROTOCOL.md states (sections 6, 10): name -> (board, parameters,
    outcome). Built when called: the days are counted back from today. A day is kept for
    BOARD_HISTORY_DAYS after its end, the next midnight: the day that many days ago is the oldest
    still kept (until tonight)."""
    yesterday = _days_ago(1)
    return {
        "yesterday": ("global", {"period": "daily", "day": yesterday}, "ok"),
        "last week": ("region:eu", {"period": "weekly", "week": _weeks_ago(1)}, "ok"),
        "the oldest day kept": ("global", {"period": "daily", "day": _days_ago(BOARD_HISTORY_DAYS)}, "ok"),
        "a day no longer kept": ("global", {"period": "daily", "day": _days_ago(BOARD_HISTORY_DAYS + 1)}, "not_found"),
        "a week no longer kept": ("global", {"period": "weekly", "week": _weeks_ago(BOARD_HISTORY_DAYS // 7 + 2)},
                                  "not_found"),
        "tomorrow": ("global", {"period": "daily", "day": _days_ago(-1)}, "not_found"),
        "the calendar's last day": ("global", {"period": "daily", "day": "9999-12-31"}, "not_found"),
        "the calendar's last week": ("global", {"period": "weekly", "week": "9999-W52"}, "not_found"),
        "the calendar's first day": ("global", {"period": "daily", "day": "0001-01-01"}, "not_found"),
        "the calendar's first week": ("global", {"period": "weekly", "week": "0001-W01"}, "not_found"),
        "a day that is not": ("global", {"period": "daily", "day": "2026-11-31"}, "invalid_payload"),
        "a 53rd week of a year of 52": ("global", {"period": "weekly", "week": "2025-W53"}, "invalid_payload"),
        "a day with weekly": ("global", {"period": "weekly", "day": yesterday}, "invalid_payload"),
        "a day without a period": ("global", {"day": yesterday}, "invalid_payload"),
        "a day and a week": ("global", {"period": "daily", "day": yesterday, "week": _weeks_ago(1)},
                             "invalid_payload"),
        "a tournament's board by day": (f"tournament:{RUNNING}", {"period": "daily", "day": yesterday},
                                        "invalid_payload"),
        "a tournament's weekly board": (f"tournament:{RUNNING}", {"period": "weekly"}, "invalid_payload"),
        "an ended tournament's board": (f"tournament:{ENDED}", {}, "ok"),
        "an unknown tournament's board": ("tournament:fz_no_such_cup", {}, "not_found"),
    }


def near_days() -> st.SearchStrategy[str]:
    """Strings that are no day: impossible dates, other layouts, other digits, a week."""
    return st.one_of(
        mutated(days()),
        st.sampled_from(["2026-11-31", "2025-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-11-00",
                         "0000-01-01", "10000-01-01", "2026-1-5", "26-11-30", "2026/11/30", "20261130",
                         "2026-11-30T00:00:00Z", "2026-11-30 ", " 2026-11-30", "+2026-11-30", "-001-01-01",
                         "２０２６-11-30", "٢٠٢٦-١١-٣٠", "2026-W48", "yesterday", ""]),
        weeks(),
        texts(max_size=20),
    )


def near_weeks() -> st.SearchStrategy[str]:
    """Strings that are no ISO week: a 53rd week of a year of 52, week 0, other layouts, a day."""
    return st.one_of(
        mutated(weeks()),
        st.sampled_from(["2026-W54", "2025-W53", "2026-W00", "2026-W1", "2026W48", "2026-w48", "2026-W48-1",
                         "2026-48", "0000-W01", "10000-W01", "２０２６-W48", "2026-W٤٨", "last week", ""]),
        days(),
        texts(max_size=20),
    )


@dataclass
class Pool:
    """Values only the running server can give: challenge tokens and their proofs, player ids."""

    tokens: list[str] = field(default_factory=list)
    proofs: list[str] = field(default_factory=list)
    players: list[str] = field(default_factory=list)
    guild: str | None = None
    tournaments: list[str] = field(default_factory=list)


# For tests whose inputs must not depend on the running server (so that `@example` can pin
# inputs): well-formed tokens this server never signed, and ids no player has; the fixtures'
# tournaments have fixed ids.
STATIC_POOL = Pool(tokens=["WyJ4Il0.aw5XXg.forged-signature", "eyJhbGciOiJub25lIn0.e30."], proofs=["1", "42"],
                   players=["nobody_here", "p1"], guild="owls", tournaments=list(TOURNAMENTS))


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
        return board_reads(pool)
    if event == "tournament:join":
        known = st.sampled_from(pool.tournaments) if pool.tournaments else VALID_ID
        return near_valid({"tournament": Field(
            weighted((4, known), (1, VALID_ID)),
            st.one_of(ids(), mutated(known), known.map(lambda t: f"tournament:{t}"), st.sampled_from(["", "*"])))})
    raise AssertionError(event)


def board_reads(pool: Pool) -> st.SearchStrategy[dict]:
    """leaderboard:get payloads (sections 6, 10): live boards, and ended ones by `day` or `week`,
    now and then with both."""
    around = st.sampled_from(pool.players) if pool.players else VALID_ID
    board = Field(valid_boards(pool.guild, pool.tournaments), near_boards())
    page = {
        "limit": Field(st.integers(1, 100), st.one_of(st.sampled_from([0, 101, -1, 10.0, "10", True]), ints()),
                       required=False),
        "offset": Field(st.integers(0, 50), st.one_of(st.sampled_from([-1, 0.0, "0", False]), ints()),
                        required=False),
        "around": Field(st.one_of(around, VALID_ID), ids(), required=False),
    }
    near_period = st.one_of(st.sampled_from(PERIODS), near_periods())

    def ended(period: str, param: str, valid: st.SearchStrategy[str], near: st.SearchStrategy[str]):
        return near_valid({"board": board, "period": Field(st.just(period), near_period),
                           param: Field(valid, near), **page})

    daily, weekly = ended("daily", "day", days(), near_days()), ended("weekly", "week", weeks(), near_weeks())
    return weighted(
        (4, near_valid({"board": board, "period": Field(st.sampled_from(PERIODS), near_periods(), required=False),
                        **page})),
        (2, daily), (2, weekly),
        (1, st.tuples(st.one_of(daily, weekly), days(), weeks()).map(lambda t: {**t[0], "day": t[1], "week": t[2]})),
    )


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


QUERY_KEYS = ("period", "limit", "offset", "around", "day", "week")


def query_items(players: list[str]) -> st.SearchStrategy[list[tuple[Part, Part]]]:
    """key=value pairs for the leaderboard query: its keys with valid and invalid values, unknown
    keys, repeats; an ended board's `period` with its `day` or `week`."""
    def value_for(key: str) -> st.SearchStrategy[str]:
        if key == "period":
            return weighted((2, st.sampled_from(PERIODS)), (1, near_periods()))
        if key == "day":
            return weighted((2, days()), (1, near_days()))
        if key == "week":
            return weighted((2, weeks()), (1, near_weeks()))
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
    page = {"limit": st.integers(1, 100).map(str), "offset": st.integers(0, 50).map(str),
            "around": st.sampled_from(players) if players else VALID_ID}
    valid = st.one_of(
        st.fixed_dictionaries({}, optional={"period": st.sampled_from(PERIODS), **page}),
        st.fixed_dictionaries({"period": st.just("daily"), "day": days()}, optional=page),
        st.fixed_dictionaries({"period": st.just("weekly"), "week": weeks()}, optional=page),
    ).map(lambda d: [(Part(text=k), Part(text=v)) for k, v in d.items()])
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
PATH_WORDS = ("api", "v1", "v2", "sessions", "leaderboards", "players", "actions", "suspension", "tournaments",
              "healthz", "readyz", "metrics", "static", "vendor", "socket.io.min.js", "index.html", "app.js", "global",
              "region:eu", "p1", RUNNING, "API", "V1", "", "..", ".", "%", "admin", ".env", "socket.io.js")


def path_parts() -> st.SearchStrategy[list[Part]]:
    return st.lists(parts(st.one_of(st.sampled_from(PATH_WORDS), texts(max_size=16))), min_size=0, max_size=6)
