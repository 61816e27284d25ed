"""Tournaments (PROTOCOL.md 10): operators put them, players join them, credits count toward
them while they run, and their first three are awarded once when they end.

Windows are checked on the server's clock: a credit counts toward a tournament when its
`at_ms` (the server's time of the completion) is in [start, end). The credit path asks
`credit_boards` on every completion, so it answers from a per-instance list of the
tournaments not yet ended, refreshed every REFRESH_S and after every change made here:
with no running tournament for the action and region it reads nothing; with one, it reads
the player's entrant documents once. A tournament put on another instance counts here from
the next refresh at the latest.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection

from app.anticheat.tokens import SessionClaims
from app.clock import iso, now_ms
from app.errors import ProtocolError, outage_as_unavailable
from app.rooms.names import ID_PATTERN
from app.scores.achievements import AchievementBook
from app.tasks import stop_task, stopping
from app.tournaments.model import ENDED, UPCOMING, Tournament
from app.tournaments.store import IN, TournamentStore

log = logging.getLogger(__name__)

REFRESH_S = 2.0
# Past this the list is read again on the credit path itself (the refresh loop is not running, or stalled).
STALE_S = 10.0
JOIN_ATTEMPTS = 5
JOIN_WAIT_S = 3.0  # how long a join waits for the player's other join (another tab) to finish
JOIN_POLL_S = 0.02
# A pending entrant this old belongs to a join that died (an instance killed mid-join): taken over.
PENDING_STALE_MS = 15_000
DAY_MS = 86_400_000
PLACES = 3
# The board of an ended tournament is readable for BOARD_HISTORY_DAYS; its Redis keys live this
# much longer, so that a read at the limit still finds them (as the period table's do).
EXPIRE_SLACK_MS = DAY_MS
AWARD_INTERVAL_S = 1.0

Unlock = Callable[[str, str, int], Awaitable[bool]]  # (player_id, achievement_id, at_ms) -> unlocked by this call
Announce = Callable[[str, dict], Awaitable[None]]  # (player_id, achievement:unlocked payload)
FinalTop = Callable[[str], Awaitable[list[str]]]  # tournament_id -> its final board's player ids, best first

_VALID_ID = re.compile(rf"^{ID_PATTERN}\Z")


class TournamentService:
    def __init__(self, *, store: TournamentStore, actions: Collection[str], regions: tuple[str, ...],
                 history_days: int, book: AchievementBook, unlock: Unlock, announce: Announce,
                 settle_ms: int, award_hold_ms: int, clock: Callable[[], int] = now_ms,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`settle_ms`: how long after its end a tournament's board is taken as final (every
        credit of its window flushed); `award_hold_ms`: how long one finisher's claim on an
        award lasts before another may take it over."""
        self._store = store
        self._actions = frozenset(actions)
        self._regions = regions
        self._history_ms = history_days * DAY_MS
        self._book = book
        self._unlock = unlock
        self._announce = announce
        self._settle_ms = settle_ms
        self._award_hold_ms = award_hold_ms
        self._clock = clock
        self._monotonic = monotonic
        self._live: tuple[Tournament, ...] = ()  # not ended when read
        # tournament -> end_ms of every tournament this instance has seen (a handful): a credit's
        # board expiry, also for a credit finished after its tournament left the live list.
        self._ends: dict[str, int] = {}
        self._loaded_at: float | None = None
        self._loading = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ operators and reads

    async def put(self, tournament_id: str, body: dict) -> dict:
        """Create the tournament or change it until it starts (then `conflict`). `body`: the
        shape TournamentSchema checked (title, start_ms, end_ms, actions, regions, max_players)."""
        if not _VALID_ID.match(tournament_id):
            raise ProtocolError("invalid_payload", "a tournament id is 1-64 characters of A-Z a-z 0-9 _ -")
        now = self._clock()
        wanted = self._checked(tournament_id, body, now)
        with outage_as_unavailable("the tournament store"):
            if await self._store.get(tournament_id) is None and await self._store.create(wanted, now):
                result = wanted
            else:
                result = await self._store.change(wanted, now) or await self._unchanged(wanted, now)
        await self._refresh_quietly()
        log.info("tournament put", extra={"tournament_id": tournament_id})
        return result.public(now)

    def _checked(self, tournament_id: str, body: dict, now: int) -> Tournament:
        start, end = body["start_ms"], body["end_ms"]
        if end <= start:
            raise ProtocolError("invalid_payload", "end_at must be after start_at")
        if end <= now:
            raise ProtocolError("invalid_payload", "end_at is in the past")
        actions, regions = _unique(body.get("actions")), _unique(body.get("regions"))
        unknown = [a for a in actions or () if a not in self._actions]
        if unknown:
            raise ProtocolError("invalid_payload", f"no such actions in the catalogue: {unknown}")
        unknown = [r for r in regions or () if r not in self._regions]
        if unknown:
            raise ProtocolError("invalid_payload", f"no such regions: {unknown} (REGIONS: {list(self._regions)})")
        return Tournament(tournament_id=tournament_id, title=body["title"], start_ms=start, end_ms=end,
                          actions=actions, regions=regions, max_players=body.get("max_players"))

    async def _unchanged(self, wanted: Tournament, now: int) -> Tournament:
        """Why a change did not apply; the same PUT again (a client's retry) is no change."""
        current = await self._store.get(wanted.tournament_id)
        if current is None:
            raise ProtocolError("unavailable", "the tournament changed meanwhile; retry")
        if _same(current, wanted):
            return current
        if current.state(now) != UPCOMING:
            raise ProtocolError("conflict", f"the tournament started at {iso(current.start_ms)}: it no longer changes")
        raise ProtocolError("conflict", f"max_players is below the {current.players} players who joined already")

    async def get(self, tournament_id: str) -> dict:
        now = self._clock()
        return (await self._known(tournament_id)).public(now)

    async def listed(self) -> dict:
        """Upcoming, running, and ended within BOARD_HISTORY_DAYS; by start."""
        now = self._clock()
        with outage_as_unavailable("the tournament store"):
            found = await self._store.ending_after(now - self._history_ms)
        return {"tournaments": [t.public(now) for t in found]}

    async def _known(self, tournament_id: str) -> Tournament:
        if not _VALID_ID.match(tournament_id):
            raise ProtocolError("not_found", "no such tournament")
        with outage_as_unavailable("the tournament store"):
            found = await self._store.get(tournament_id)
        if found is None:
            raise ProtocolError("not_found", "no such tournament")
        return found

    async def require(self, tournament_id: str) -> Tournament:
        """The tournament, or not_found (a board or room named after one that does not exist)."""
        return await self._known(tournament_id)

    async def readable(self, tournament_id: str) -> Tournament:
        """The tournament whose board may be read or watched: it exists and did not end over
        BOARD_HISTORY_DAYS ago; else not_found."""
        t = await self._known(tournament_id)
        self._ends[t.tournament_id] = t.end_ms
        if self._clock() >= t.end_ms + self._history_ms:
            raise ProtocolError("not_found", f"the tournament ended over {self._history_ms // DAY_MS} days ago")
        return t

    def expire_at(self, end_ms: int) -> int:
        """When the Redis keys of a board of a tournament ending at `end_ms` go."""
        return end_ms + self._history_ms + EXPIRE_SLACK_MS

    def board_expiry(self, tournament_ids: Collection[str]) -> dict[str, int]:
        """tournament -> when its board's keys go, for each of `tournament_ids`; 0 for one this
        instance does not know the end of: its board keeps the expiry the credits before set."""
        return {tid: self.expire_at(self._ends[tid]) if tid in self._ends else 0 for tid in tournament_ids}

    async def boards_kept(self) -> dict[str, int]:
        """tournament -> end_ms of every tournament whose board is still readable (a rebuild's)."""
        found = await self._store.ending_after(self._clock() - self._history_ms)
        self._ends.update({t.tournament_id: t.end_ms for t in found})
        return {t.tournament_id: t.end_ms for t in found}

    # ------------------------------------------------------------------ players

    async def join(self, player: SessionClaims, tournament_id: str) -> dict:
        """Enter the player; before the start too; a second join is ok. See the store's
        docstring for why racing joins never pass `max_players`."""
        pid = player.player_id
        nonce = secrets.token_hex(8)
        deadline = self._monotonic() + JOIN_WAIT_S
        while self._monotonic() < deadline:
            t = self._open_to(await self._known(tournament_id), player)
            now = self._clock()
            with outage_as_unavailable("the tournament store"):
                if not await self._store.add_entrant(tournament_id, pid, player.region, now, nonce):
                    held = await self._store.entrant(tournament_id, pid)
                    if held is not None and held["state"] == IN:
                        return {"tournament": t.public(now)}
                    taken_over = (held is not None and now - int(held["at_ms"]) >= PENDING_STALE_MS
                                  and await self._store.take_over(tournament_id, pid, held["nonce"], nonce, now))
                    if not taken_over:
                        # The player's other join is under way (or just gave up): its outcome is this one's.
                        await asyncio.sleep(JOIN_POLL_S)
                        continue
                try:
                    seated = await self._seat(t, player)
                except BaseException:
                    await self._store.drop_entrant(tournament_id, pid, nonce)
                    raise
                await self._store.confirm_entrant(tournament_id, pid, nonce, now)
            log.info("tournament joined", extra={"tournament_id": tournament_id, "player_id": pid})
            return {"tournament": seated.public(now)}
        raise ProtocolError("unavailable", "another join of this player is still under way; retry")

    def _open_to(self, t: Tournament, player: SessionClaims) -> Tournament:
        if t.state(self._clock()) == ENDED:
            raise ProtocolError("tournament_closed", f"the tournament ended at {iso(t.end_ms)}")
        if not t.admits(player.region):
            raise ProtocolError("tournament_closed", f"the tournament is not open to region {player.region}")
        return t

    async def _seat(self, t: Tournament, player: SessionClaims) -> Tournament:
        """One seat taken for the player's pending entrant: the tournament after it."""
        for _ in range(JOIN_ATTEMPTS):
            if t.max_players is not None and t.players >= t.max_players:
                raise ProtocolError("tournament_full", f"the tournament has its {t.max_players} players")
            seated = await self._store.take_seat(t, self._clock())
            if seated is not None:
                return seated
            # Changed, ended or filled since read: read it again.
            t = self._open_to(await self._known(t.tournament_id), player)
        raise ProtocolError("unavailable", "the tournament kept changing while joining; retry")

    # ------------------------------------------------------------------ the credit path

    async def credit_boards(self, player_id: str, region: str, action: str, at_ms: int) -> list[str]:
        """The tournaments a credit of `action` by this player (of `region`) at `at_ms` on the
        server's clock also counts toward. Never raises: a tournament problem must not cost
        the player the credit itself, so a failure is logged and counts toward none."""
        try:
            candidates = [t.tournament_id for t in await self._live_list() if t.counts(action, region, at_ms)]
            if not candidates:
                return []
            return await self._store.entered(player_id, candidates)
        except Exception:  # noqa: BLE001 - see the docstring
            log.warning("tournaments skipped for a credit", exc_info=True,
                        extra={"player_id": player_id, "code": "unavailable"})
            return []

    async def _live_list(self) -> tuple[Tournament, ...]:
        loaded = self._loaded_at
        if loaded is None or self._monotonic() - loaded > STALE_S:
            async with self._loading:
                if self._loaded_at == loaded:  # nobody reloaded it while this one waited
                    try:
                        await self.refresh()
                    except Exception:
                        # Not again on every credit: the loop retries, and this path after STALE_S.
                        self._loaded_at = self._monotonic()
                        raise
        return self._live

    async def refresh(self) -> None:
        """Read the tournaments not yet ended into this instance's list."""
        self._live = tuple(await self._store.ending_after(self._clock()))
        self._ends.update({t.tournament_id: t.end_ms for t in self._live})
        self._loaded_at = self._monotonic()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - the change is stored; the loop reads it again shortly
            log.warning("tournament list not refreshed", exc_info=True)

    async def run(self) -> None:
        while not stopping():
            await self._refresh_quietly()
            await asyncio.sleep(REFRESH_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="tournament-list")

    async def run_awards(self, holding: Callable[[], bool], final_top: FinalTop) -> None:
        """About once a second while this instance holds the flush lease: award what ended.
        The lease holder alone, so that the board it reads is the one its own flushes made
        final; a holder killed mid-award leaves a claim that lapses, and the next one redoes it."""
        while not stopping():
            await asyncio.sleep(AWARD_INTERVAL_S)
            if not holding():
                continue
            try:
                await self.finish_due(self._clock(), final_top)
            except Exception:  # noqa: BLE001 - the store is away: the next round retries
                log.warning("tournament awards skipped", exc_info=True)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    # ------------------------------------------------------------------ the end

    async def finish_due(self, now_ms: int, final_top: FinalTop) -> list[str]:
        """Award every tournament that ended over `settle_ms` before `now_ms` and is not
        awarded yet; the ids this call awarded. Run by the flush lease holder.

        Exactly once, even across restarts: a finisher claims the tournament (a claim that
        lapses after `award_hold_ms`), unlocks `tournament_1..3` for the first three of the
        final board (unlocks are idempotent, so one that takes over a lapsed claim redoes
        them harmlessly, and only the unlock that inserted announces), then marks it
        awarded with a conditional update that succeeds once.
        """
        awarded: list[str] = []
        for t in await self._store.unawarded_ended_by(now_ms - self._settle_ms):
            try:
                if not await self._store.claim_award(t.tournament_id, now_ms, self._award_hold_ms):
                    continue
                winners = list(await final_top(t.tournament_id))[:PLACES]
                for place, player_id in enumerate(winners, start=1):
                    for ach in self._book.by_tournament_place(place):
                        if await self._unlock(player_id, ach.id, now_ms):
                            await self._announce(player_id, {**ach.public(), "unlocked_at": iso(now_ms)})
                if await self._store.mark_awarded(t.tournament_id, winners, now_ms):
                    awarded.append(t.tournament_id)
                    log.info("tournament awarded", extra={"tournament_id": t.tournament_id})
            except Exception:  # noqa: BLE001 - one tournament's failure never stops the others
                log.warning("tournament award failed; retried later", exc_info=True,
                            extra={"tournament_id": t.tournament_id})
        return awarded


def ack_scores(tournament_ids: Collection[str], totals: dict) -> dict[str, int]:
    """The ack's `"tournaments": {"<id>": <score>}` (PROTOCOL.md 10): the player's score in
    each tournament this credit counted toward, from the totals document after the credit
    (its `tournaments.<id>`, which the credit's guarded update increments)."""
    scores = totals.get("tournaments") or {}
    return {tid: int(scores.get(tid, 0)) for tid in tournament_ids}


def _unique(names: list[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(dict.fromkeys(names))


def _same(a: Tournament, b: Tournament) -> bool:
    return (a.title, a.start_ms, a.end_ms, a.actions, a.regions, a.max_players) == (
        b.title, b.start_ms, b.end_ms, b.actions, b.regions, b.max_players)
