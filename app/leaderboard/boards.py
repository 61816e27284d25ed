"""Sorted sets per board and period; knows Redis keys, nothing of rooms or sockets.

A board holds `score = -points` and `member = "<reached_ms:013>:<player_id>"`, so Redis's
own order (score, then member bytes) is: most points first, then who reached that score
first. Entries are absolute totals stamped with a version (the player's credited-action
count); an entry only replaces an older version, which makes applying the same update
twice, or out of order, a no-op.

Placement (which region and guild boards a player is on) is ordered the same way by the
player's `moves` count: a standing with more moves than the stored placement takes the player
off its old region's and guild's current boards first; one with fewer moves was written before
a move already applied and never puts the player back on an old board. So a player is on one
region board and at most one guild board per period, whatever order standings arrive in.

Hidden and erased players (PROTOCOL.md 9) are kept off the boards by the same script that puts
players on them, so no standing, however late, brings one back: a standing of a player in
HIDDEN_KEY, or of a player erased after the document it was read from was created (ERASED_KEY
holds player -> erased_ms; the standing carries the document's `created_ms`), takes the player
off every current board (global, its region, its guild; all-time, today, this week) and touches
its rooms, so their watchers see the rows below move up. A player created again after its
erasure has a later `created_ms` and goes on the boards as a new player. MongoDB holds the
truth of both (the `hidden` flag, the `erasures` collection); a rebuild marks them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from app.leaderboard import keys
from app.leaderboard.keys import (
    ERASED_KEY,
    EVERY_FAMILY,
    GENERATION_KEY,
    GLOBAL_FAMILY,
    HIDDEN_KEY,
    NAMES_KEY,
    PLACE_KEY,
)
from app.leaderboard.periods import ALL, DAILY, STANDARD, WEEKLY, PeriodPoints, PeriodTable, Totals
from app.lua import register, source
from app.pipelined import run_each
from app.rooms.names import tournament_board


def script(name: str) -> str:
    """A board script: apply.lua's functions followed by `name`'s body."""
    return source(__file__, "apply.lua") + source(__file__, name)


@dataclass(frozen=True)
class Standing:
    """A player's absolute totals after one credit: what the read model needs, nothing more."""

    player_id: str
    name: str
    region: str
    guild: str | None
    version: int
    totals: Totals
    at_ms: int
    # How many times the player's region or guild had changed (the player document's `moves`):
    # orders standings about placement, as `version` orders them about points.
    moves: int = 0
    # When the player document was created: a standing of a document older than the player's
    # erasure is never applied (ERASED_KEY). 0: unknown, as old as can be.
    created_ms: int = 0
    # Points on boards of ended periods, from a rebuild (app/leaderboard/rebuild.py): put on a
    # board only where the player has no entry yet, so a rebuild never reorders a final board.
    history: tuple[PeriodPoints, ...] = ()
    # board -> when its keys expire (ms), for extra boards (totals.boards) that end: a tournament's.
    expiry: Mapping[str, int] = field(default_factory=dict)
    # board -> when its score was reached, for extra boards taken over from an older standing
    # of one batch (with_boards_of); the others' is `at_ms`. Never queued: the flusher's own.
    reached: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.totals.total

    def rooms(self) -> list[str]:
        out = [f"region:{self.region}"]
        if self.guild:
            out.append(f"guild:{self.guild}")
        return out

    @classmethod
    def from_player(cls, doc: dict, now_ms: int, periods: PeriodTable = STANDARD,
                    tournaments: Mapping[str, int] | None = None) -> Standing:
        """The standing of a MongoDB player document, for the periods holding `now_ms`, and on
        the boards of `tournaments` (id -> when their keys expire, 0: as they are) with the
        document's scores in them (`tournaments.<id>`)."""
        scores = doc.get("tournaments") or {}
        wanted = tournaments or {}
        return cls(
            player_id=doc["_id"],
            name=doc["name"],
            region=doc["region"],
            guild=doc.get("guild"),
            version=int(doc.get("actions", 0)),
            totals=Totals.of(doc, periods, now_ms,
                             {tournament_board(tid): int(scores[tid]) for tid in wanted if tid in scores}),
            at_ms=int(doc.get("last_ms", 0)),
            moves=int(doc.get("moves", 0)),
            created_ms=int(doc.get("created_ms") or 0),
            expiry={tournament_board(tid): at for tid, at in wanted.items() if tid in scores and at},
        )

    def to_fields(self) -> dict[str, str]:
        out = {
            "p": self.player_id, "n": self.name, "r": self.region, "g": self.guild or "",
            "v": str(self.version), "t": str(self.total), "at": str(self.at_ms), "m": str(self.moves),
            "c": str(self.created_ms),
            "P": json.dumps([[e.name, e.key, e.points] for e in self.totals.periods], separators=(",", ":")),
        }
        if self.totals.boards:
            out["B"] = json.dumps(self.totals.boards, separators=(",", ":"))
        if self.expiry:
            out["X"] = json.dumps(self.expiry, separators=(",", ":"))
        if self.history:
            out["H"] = json.dumps([[e.name, e.key, e.points] for e in self.history], separators=(",", ":"))
        # Read by instances of the release before the period table, during a rolling upgrade.
        out["d"], out["w"] = str(self.totals.points(DAILY.name)), str(self.totals.points(WEEKLY.name))
        return out

    @classmethod
    def from_fields(cls, f: dict[bytes, bytes]) -> Standing:
        s = {k.decode(): v.decode() for k, v in f.items()}
        at = int(s["at"])
        if "P" in s:
            periods = tuple(PeriodPoints(name, key, int(points)) for name, key, points in json.loads(s["P"]))
        else:  # queued by the release before the period table: daily and weekly, of the standing's time
            periods = (PeriodPoints(DAILY.name, DAILY.period_key(at), int(s["d"])),
                       PeriodPoints(WEEKLY.name, WEEKLY.period_key(at), int(s["w"])))
        totals = Totals(int(s["t"]), periods, json.loads(s["B"]) if "B" in s else {})
        # "m" and "c" may be absent: entries queued by a release that did not count moves or
        # know erasures.
        history = tuple(PeriodPoints(name, key, int(points)) for name, key, points in json.loads(s.get("H", "[]")))
        return cls(s["p"], s["n"], s["r"], s["g"] or None, int(s["v"]), totals, at,
                   int(s.get("m", "0")), int(s.get("c", "0")), history, json.loads(s.get("X", "{}")))

    def with_boards_of(self, older: Standing) -> Standing:
        """This standing, also carrying the extra boards of an older one of the same player it
        replaces in a batch: a credit that counted toward a tournament, then one that did not
        (whose standing names no tournament board), flushed together, still put the first on
        its board, with the moment it reached that score."""
        missing = {board: score for board, score in older.totals.boards.items() if board not in self.totals.boards}
        if not missing or older.created_ms != self.created_ms:
            return self
        return replace(
            self, totals=replace(self.totals, boards={**self.totals.boards, **missing}),
            expiry={**self.expiry, **{b: older.expiry[b] for b in missing if b in older.expiry}},
            reached={**self.reached, **{b: older.reached.get(b, older.at_ms) for b in missing}})

    def script_value(self, table: PeriodTable) -> dict:
        """The standing as apply.lua reads it."""
        pk: list[list] = [[ALL, ALL, self.total, 0]]
        for e in self.totals.periods:
            # A period this instance's table does not hold (another instance's, during a change
            # of the table) is left alone.
            period = table.find(e.name)
            if period is not None:
                pk.append([e.name, e.key, e.points, table.expire_at(period, self.at_ms)])
        for e in self.history:
            period = table.find(e.name)
            if period is not None:
                # Version 0: below any entry already there. Reached: the period's last moment
                # (MongoDB keeps points per period, not when they were reached).
                end = period.end(period.start(e.key.split(":", 1)[1]))
                pk.append([e.name, e.key, e.points, table.expire_at(period, end - 1), 0, str(end - 1)])
        return {"p": self.player_id, "r": self.region, "g": self.guild or "", "v": self.version,
                "at": str(self.at_ms), "m": self.moves, "c": str(self.created_ms), "pk": pk,
                "b": [[board, score, self.expiry.get(board, 0), str(self.reached.get(board, self.at_ms))]
                      for board, score in self.totals.boards.items()]}


def _text(value: bytes | str) -> str:
    # redis-py types replies as bytes or str (decode_responses); this client never decodes.
    return value.decode() if isinstance(value, bytes) else value


def player_of(member: bytes | str) -> str:
    """The player of a board member, `<reached_ms:013>:<player_id>`."""
    return _text(member).split(":", 1)[1]


def row(rank: int, member: bytes | str, score: float, names: Mapping[str, str]) -> dict:
    """A board row as PROTOCOL.md section 6 shows it, from a member and its score (-points);
    `names`: player -> name (BoardStore.name_map)."""
    player = player_of(member)
    return {"rank": rank, "player_id": player, "name": names[player], "score": int(-score)}


_COMPACT = (",", ":")


@dataclass
class Placement:
    """A batch of standings as apply.lua takes them, and the board families each must visit.

    Each family's boards (and its room's rows) are in one hash slot (app/leaderboard/keys.py),
    so a batch is applied by one script run per family: the families of each standing's region,
    guild and extra boards, and of the region and guild `global`'s placement names (a move
    takes the player off those), then `global` last. `global` holds the placements that name
    the families, so until its run succeeded a batch redone after a crash visits the same
    families again; each run is idempotent (absolute, versioned standings; moves ordered by
    count), so redoing one changes nothing."""

    values: list[dict]
    families: dict[str, list[int]] = field(default_factory=dict)  # family -> indexes into values

    def batch(self, family: str) -> str:
        if family in (GLOBAL_FAMILY, EVERY_FAMILY):
            return json.dumps(self.values, separators=_COMPACT)
        return json.dumps([self.values[i] for i in self.families.get(family, [])], separators=_COMPACT)


def _context(family: str) -> str:
    return json.dumps({"family": family, "prefixes": keys.SCRIPT_PREFIXES}, separators=_COMPACT)


class BoardStore:
    def __init__(self, redis: Redis, periods: PeriodTable = STANDARD) -> None:
        self._redis = redis
        self.periods = periods
        self._apply = redis.register_script(script("apply_one.lua"))
        self._mark_erased = register(redis, __file__, "mark_erased.lua")
        self._remove_everywhere = register(redis, __file__, "remove_everywhere.lua")

    def key(self, board: str, period: str, now_ms: int) -> str:
        return keys.board(board, self.periods.period_key(period, now_ms))

    async def apply(self, s: Standing) -> int:
        """Put one standing on every board and period it belongs to (taking the player off its
        old region's and guild's boards when it has moved); returns entries changed. The flusher
        does the same for a batch (app/leaderboard/flusher.py)."""
        if s.version <= 0 and s.moves <= 0:
            return 0
        await self.set_name(s.player_id, s.name)
        placement = await self.placement([s])
        results = await self.run_parts(self._apply, placement,
                                       lambda family: [_context(family), placement.batch(family)])
        await self.forget_names([pid for result in results for pid in result.get("erased") or []])
        return sum(int(result["changed"]) for result in results)

    async def run_parts(self, script: AsyncScript, placement: Placement,
                        args: Callable[[str], list[str]]) -> list[dict]:
        """`script` (apply.lua's functions and a body) over a batch; returns each run's decoded
        reply. On one server: one run serving every family (EVERY_FAMILY, with `global`'s keys),
        which reads each standing's state once. On a Redis Cluster, where a run's keys must share
        a slot: one run per family of the placement, at once, then `global`'s, last
        (Placement). `args(family)`: the run's ARGV."""
        if not placement.values and not placement.families:
            return []
        if not isinstance(self._redis, RedisCluster):
            return [json.loads(await script(keys=keys.family_keys(GLOBAL_FAMILY), args=args(EVERY_FAMILY)))]
        replies = await run_each(self._redis, script, [
            (keys.family_keys(family), args(family)) for family in placement.families
        ])
        if placement.values:
            replies.append(await script(keys=keys.family_keys(GLOBAL_FAMILY), args=args(GLOBAL_FAMILY)))
        return [json.loads(reply) for reply in replies]

    async def placement(self, standings: list[Standing]) -> Placement:
        """The standings as apply.lua reads them, with `global`'s hidden and erased marks, and
        the families (other than `global`) each must visit."""
        ids = [s.player_id for s in standings]
        placement = Placement([])
        if not ids:
            return placement
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(PLACE_KEY, ids)
            pipe.smismember(HIDDEN_KEY, ids)
            pipe.hmget(ERASED_KEY, ids)
            places, hidden, erased = await pipe.execute()
        for i, (s, was, is_hidden, erased_at) in enumerate(zip(standings, places, hidden, erased, strict=True)):
            value = s.script_value(self.periods)
            if is_hidden:
                value["h"] = 1
            if erased_at is not None:
                value["e"] = _text(erased_at)
            placement.values.append(value)
            families = {*s.rooms(), *(entry[0] for entry in value["b"])}
            if was is not None:
                value["w"] = _text(was)
                _, region, guild = value["w"].split("|", 2)
                families.add(f"region:{region}")
                if guild:
                    families.add(f"guild:{guild}")
            families.discard(GLOBAL_FAMILY)
            for family in sorted(families):
                placement.families.setdefault(family, []).append(i)
        return placement

    async def forget_names(self, player_ids: list[str]) -> None:
        """Names of players a script took off the boards as erased."""
        if player_ids:
            await self._redis.hdel(NAMES_KEY, *player_ids)

    async def set_name(self, player_id: str, name: str) -> None:
        await self._redis.hset(NAMES_KEY, player_id, name)

    async def set_names(self, names: Mapping[str, str]) -> None:
        """player -> name, in one command."""
        if names:
            fields: dict[FieldT, EncodableT] = {player: name for player, name in names.items()}
            await self._redis.hset(NAMES_KEY, mapping=fields)

    async def set_hidden(self, player_id: str, hidden: bool) -> None:
        """Mark (or unmark) the player hidden; the caller then applies and queues its standing,
        which takes it off the boards (or puts it back) and tells its rooms."""
        if hidden:
            await self._redis.sadd(HIDDEN_KEY, player_id)
        else:
            await self._redis.srem(HIDDEN_KEY, player_id)

    async def hidden(self) -> set[str]:
        """Every player marked hidden (a handful: operators hide cheaters one by one)."""
        return {_text(m) for m in await self._redis.smembers(HIDDEN_KEY)}

    async def mark_erased(self, erased: dict[str, int]) -> None:
        """player -> erased_ms; never moved back (a later erasure of a re-created player wins)."""
        if not erased:
            return
        await run_each(self._redis, self._mark_erased,
                       [([ERASED_KEY], [player_id, at_ms]) for player_id, at_ms in erased.items()])

    async def forget(self, player_id: str) -> None:
        """An erased player: its name, placement and hidden mark go from Redis."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(NAMES_KEY, player_id)
            pipe.hdel(PLACE_KEY, player_id)
            pipe.hdel(GENERATION_KEY, player_id)
            pipe.srem(HIDDEN_KEY, player_id)
            await pipe.execute()

    async def remove_everywhere(self, player_id: str, boards: list[str], period_keys: list[str]) -> int:
        """Take the player's entry off each board for each period key ("all", "d:<day>",
        "w:<week>"), ended periods included; the entries removed. For an erasure, which also
        clears the boards of ended days and weeks that the current-board removal leaves final."""
        if not boards or not period_keys:
            return 0
        removed = await run_each(self._redis, self._remove_everywhere, [
            ([keys.board(board, pk) for pk in period_keys], [player_id, keys.IDX_SUFFIX]) for board in boards
        ])  # one board's keys per call: one family, one hash slot
        return sum(int(n) for n in removed)

    async def name_map(self, ids: list[str]) -> dict[str, str]:
        """player -> name, in one command; a player without one is shown by its id."""
        if not ids:
            return {}
        found = await self._redis.hmget(NAMES_KEY, ids)
        return {pid: _text(name) if name else pid for pid, name in zip(ids, found, strict=True)}

    async def rows(self, members: list[tuple[bytes, float]], first_rank: int) -> list[dict]:
        names = await self.name_map([player_of(m) for m, _ in members])
        return [row(first_rank + i, member, score, names) for i, (member, score) in enumerate(members)]

    def _key(self, board: str, period: str, now_ms: int, period_key: str | None) -> str:
        return keys.board(board, period_key) if period_key else self.key(board, period, now_ms)

    async def page(self, board: str, period: str, offset: int, limit: int, now_ms: int,
                   period_key: str | None = None) -> tuple[list[dict], int]:
        """A page of the board of the period holding `now_ms`, or of the one `period_key` names."""
        key = self._key(board, period, now_ms, period_key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(key, offset, offset + limit - 1, withscores=True)
            pipe.zcard(key)
            members, total = await pipe.execute()
        return await self.rows(members, offset + 1), int(total)

    async def rank(self, board: str, period: str, player_id: str, now_ms: int,
                   period_key: str | None = None) -> int | None:
        """1-based rank, or None when the player has no entry on that board."""
        key = self._key(board, period, now_ms, period_key)
        cur = await self._redis.hget(keys.idx(key), player_id)
        if cur is None:
            return None
        # Without WITHSCORE the reply is the rank alone (redis-py types both shapes).
        rank = cast(int | None, await self._redis.zrank(key, _text(cur).split("|", 1)[1]))
        return None if rank is None else rank + 1

    async def around(self, board: str, period: str, player_id: str, limit: int,
                     now_ms: int, period_key: str | None = None) -> tuple[list[dict], int] | None:
        rank = await self.rank(board, period, player_id, now_ms, period_key)
        if rank is None:
            return None
        total = int(await self._redis.zcard(self._key(board, period, now_ms, period_key)))
        start = max(0, min(rank - 1 - limit // 2, total - limit))
        return await self.page(board, period, start, limit, now_ms, period_key)
