"""Behaviour scoring: how automated a player's recent completion attempts look.

Pure: a function of the audit entries it is given (and of what the last verdict carried
over), with no I/O, no clock and no state of its own, so that recorded sequences test it.

Each signal is a figure in 0-1 with the numbers behind it (its evidence). A figure is 0
inside a band any person stays in, rises linearly past it, and is 1 where only a script
goes; figures from too few attempts are scaled down by a confidence. They combine as
independent evidence ("noisy or"): suspicion = 1 - prod(1 - weight * figure), so one
strong signal can make a suspect on its own, and weak ones add up without reaching 1.

A suspect (suspicion >= THRESHOLD) gets a difficulty bonus of 1 to MAX_BONUS_BITS bits of
proof of work, growing with the suspicion. Scoring only ever raises the work asked for:
it never suspends (PROTOCOL.md section 5), that is an operator's decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# "Is a suspect": where the difficulty bonus starts. One strong timing signal crosses it alone.
THRESHOLD = 0.5
# PROTOCOL.md section 5: the server raises the catalogue's difficulty by at most 8 bits.
MAX_BONUS_BITS = 8
# Attempts scored per player, newest first: a few minutes of fast play, hours of slow play.
WINDOW = 200

# --- timing (credited first completions only: a duplicate's play_ms is a retry's, not play) ---
# Below MIN_SAMPLES attempts of an action nothing is said about its timing; the figure's
# confidence then grows linearly to 1 at FULL_SAMPLES. A bot at min_ms stands out at ~30.
MIN_SAMPLES = 12
FULL_SAMPLES = 30
# "Right at min_ms": within this of the action's min_ms. A script that completes as soon as
# allowed lands within its network round trip; a person clicking "done" takes a reaction
# time (200 ms and more) on top of any network. Absolute, not a share of min_ms: a person's
# slack does not grow with a long level, a script's latency does not either.
AT_MIN_MARGIN_MS = 150
# Share of completions right at min_ms: a fast person lands there now and then (a lucky
# run); past FREE the figure rises, and at FULL it is what a script at min_ms does.
AT_MIN_FREE = 0.2
AT_MIN_FULL = 0.6
# "Too regular": the play times of one action vary too little, relatively (coefficient of
# variation, sd / mean) AND absolutely (sd in ms). Both, because for a long action a
# person's spread of a second or two is a small share of it, while a script's jitter of
# +-10% around a fixed time is a large spread in ms. Uniform jitter of +-10% is a CV of
# 0.058 (0.2 / sqrt(12)), which alone makes a suspect; a person adding 0.2-2 s to a 2 s
# level is a CV of 0.17, one adding 0.15-1 s is 0.095.
REGULAR_CV_FULL = 0.04
REGULAR_CV_FREE = 0.10
REGULAR_SD_FULL_MS = 200
REGULAR_SD_FREE_MS = 400

# --- sustained play: completion rate near the limits for hours without a break ---
# A gap of BREAK_MS between two attempts is a break: a person stops for a drink, a meal,
# the door. A stretch without one shorter than SUSTAINED_FREE_MS says nothing (an evening's
# session); at SUSTAINED_FULL_MS it is a machine's or a farm's shift.
BREAK_MS = 3 * 60_000
SUSTAINED_FREE_MS = 90 * 60_000
SUSTAINED_FULL_MS = 4 * 3_600_000
# ...and only at a rate near what the limits allow (credits x each action's least spacing,
# max(min_ms, 60 s / per_minute), over the time played). A person playing a 2 s level with
# 0.2-2 s of slack is at ~0.65; a script at min_ms is at ~1.
UTILIZATION_FREE = 0.7
UTILIZATION_FULL = 0.9

# --- refusals and addresses (counts in the window) ---
# An honest client computes its proof and never sends a wrong one; a couple are allowed
# for a buggy build or a mangled retry. A burst of them is a client guessing or replaying.
PROOF_INVALID_FREE = 2
PROOF_INVALID_FULL = 10
# token_invalid in the audit is a well-signed token of another player's challenge (forged
# ones fail the signature and are not audited): stolen or shared. One is allowed (a player
# who switched accounts in the same tab with a challenge open).
TOKEN_INVALID_FREE = 1
TOKEN_INVALID_FULL = 6
# too_fast: completed before min_ms, or sooner than min_ms after the last credit of that
# action (the play clock). A client that waits out min_ms never meets it, except around a
# reconnect; many within a minute is challenges held open in parallel and cashed in at once.
TOO_FAST_SPAN_MS = 60_000
TOO_FAST_FREE = 4
TOO_FAST_FULL = 20
# Distinct client addresses in the window: home, mobile and work are a few; a rotating
# proxy pool or a farm sharing one account is many.
ADDRESSES_FREE = 3
ADDRESSES_FULL = 10

# How much each signal alone can make of the suspicion (its figure at 1). Timing at min_ms
# and stolen tokens are nearly proof; a long unbroken shift or many addresses are not.
WEIGHTS: Mapping[str, float] = {
    "at_min_ms": 0.9,
    "regular_timing": 0.8,
    "sustained_play": 0.7,
    "proof_invalid": 0.6,
    "token_invalid": 0.8,
    "too_fast": 0.6,
    "addresses": 0.5,
}

# --- when a new verdict is worth a store write (worth_storing) ---
# Suspicion moves by less than this between passes: keep the stored one.
SCORE_STEP = 0.05
# The carried stretch (see Stretch) must be refreshed before the window slides past it:
# at the latest after this many attempts newer than the stored one.
CARRY_REFRESH = WINDOW // 2


@dataclass(frozen=True)
class Stretch:
    """Play without a break, from `since_ms` to at least `through_ms`. The window holds
    minutes of fast play, so the verdict carries the start of the current stretch over to
    the next pass: `score` extends it when the window joins onto it with no break."""

    since_ms: int
    through_ms: int

    @classmethod
    def from_signals(cls, signals: Mapping[str, Any] | None) -> Stretch | None:
        """The stretch a stored verdict carried, or None (none stored, or not readable)."""
        evidence = signals.get("sustained_play") if isinstance(signals, Mapping) else None
        if not isinstance(evidence, Mapping):
            return None
        since, through = evidence.get("since_ms"), evidence.get("through_ms")
        if isinstance(since, int) and isinstance(through, int) and since <= through:
            return cls(since, through)
        return None


@dataclass(frozen=True)
class Verdict:
    """`suspicion` in 0-1; `signals`: name -> {"figure": 0-1, evidence...}, JSON-able;
    `difficulty_bonus`: extra proof-of-work bits, 0 below THRESHOLD, else 1-8."""

    suspicion: float
    signals: dict[str, dict[str, Any]]
    difficulty_bonus: int

    @property
    def suspect(self) -> bool:
        return self.suspicion >= THRESHOLD

    @property
    def stretch(self) -> Stretch | None:
        return Stretch.from_signals(self.signals)


class _Attempt(NamedTuple):  # a tuple: built for every entry of every pass
    completed_ms: int
    play_ms: int
    min_ms: int
    outcome: str
    action: str
    client: str | None
    duplicate: bool


def score(entries: Iterable[Mapping[str, Any]], *, carry: Stretch | None = None,
          slot_ms: Mapping[str, int] | None = None) -> Verdict:
    """The verdict on a player's recent attempts (audit documents, any order; at most WINDOW
    are used, the newest). `carry`: the stretch the previous verdict found. `slot_ms`: per
    action, the least spacing the limits allow between two credits (see `slots`); an action
    not in it is spaced by its entries' min_ms. Entries missing a field are skipped."""
    attempts = sorted(_parse(entries), key=lambda a: a.completed_ms)[-WINDOW:]
    plays = [a for a in attempts if a.outcome == "credited" and not a.duplicate]
    signals = {
        "at_min_ms": _at_min(plays),
        "regular_timing": _regular(plays),
        "sustained_play": _sustained(attempts, plays, carry, slot_ms or {}),
        "proof_invalid": _count_signal(attempts, "proof_invalid", PROOF_INVALID_FREE, PROOF_INVALID_FULL),
        "token_invalid": _count_signal(attempts, "token_invalid", TOKEN_INVALID_FREE, TOKEN_INVALID_FULL),
        "too_fast": _too_fast(attempts),
        "addresses": _addresses(attempts),
    }
    keep = 1.0
    for name, evidence in signals.items():
        keep *= 1.0 - WEIGHTS[name] * evidence["figure"]
    suspicion = _round(1.0 - keep)
    return Verdict(suspicion=suspicion, signals=signals, difficulty_bonus=bonus_for(suspicion))


def bonus_for(suspicion: float) -> int:
    """0 below THRESHOLD; from 1 bit at the threshold up to MAX_BONUS_BITS at suspicion 1."""
    if suspicion < THRESHOLD:
        return 0
    grown = math.ceil(MAX_BONUS_BITS * (suspicion - THRESHOLD) / (1.0 - THRESHOLD))
    return max(1, min(MAX_BONUS_BITS, grown))


def slots(rules: Iterable[Any]) -> dict[str, int]:
    """`slot_ms` for `score` from action rules (anything with name, min_ms, per_minute):
    the least average spacing of two credits the play clock and the rate limit allow."""
    return {rule.name: max(rule.min_ms, math.ceil(60_000 / rule.per_minute)) for rule in rules}


def worth_storing(stored: Mapping[str, Any] | None, verdict: Verdict,
                  entries: Iterable[Mapping[str, Any]]) -> bool:
    """Whether `verdict` should replace the stored suspicion document: when there is none,
    the bonus changed (which includes crossing THRESHOLD either way), the suspicion moved by
    SCORE_STEP or more, or the carried stretch must be refreshed before the window slides
    past it. Otherwise the stored one stands: no store write per completion."""
    if not stored:
        return True
    if stored.get("difficulty_bonus") != verdict.difficulty_bonus:
        return True
    old_score = stored.get("score")
    if not isinstance(old_score, (int, float)) or abs(old_score - verdict.suspicion) >= SCORE_STEP:
        return True
    old, new = Stretch.from_signals(stored.get("signals")), verdict.stretch
    if old is None or new is None:
        return old != new
    if old.since_ms != new.since_ms:
        # A break began a new stretch: the carried start would now join onto the wrong one.
        return True
    newer = sum(1 for a in _parse(entries) if a.completed_ms > old.through_ms)
    return newer >= CARRY_REFRESH


def suspicion_doc(verdict: Verdict, stored: Mapping[str, Any] | None, now_ms: int) -> dict[str, Any]:
    """The player document's `suspicion` for `verdict`: `since` is when the player first
    crossed THRESHOLD (kept while it stays a suspect, None once it is not)."""
    since = None
    if verdict.suspect:
        old = (stored or {}).get("since")
        since = old if isinstance(old, int) else now_ms
    return {"score": verdict.suspicion, "signals": verdict.signals, "difficulty_bonus": verdict.difficulty_bonus,
            "since": since, "updated_ms": now_ms}


# --- the signals ---

def _at_min(plays: list[_Attempt]) -> dict[str, Any]:
    at_min = sum(1 for a in plays if a.play_ms - a.min_ms <= AT_MIN_MARGIN_MS)
    fraction = at_min / len(plays) if plays else 0.0
    figure = _rise(fraction, AT_MIN_FREE, AT_MIN_FULL) * _confidence(len(plays))
    return {"figure": _round(figure), "fraction": _round(fraction), "at_min": at_min, "completions": len(plays),
            "margin_ms": AT_MIN_MARGIN_MS}


def _regular(plays: list[_Attempt]) -> dict[str, Any]:
    """The most regular action's figure (every action with MIN_SAMPLES credits is looked at)."""
    by_action: dict[str, list[int]] = {}
    for a in plays:
        by_action.setdefault(a.action, []).append(a.play_ms)
    best: dict[str, Any] = {"figure": 0.0, "action": None, "completions": 0, "cv": None, "sd_ms": None,
                            "mean_ms": None}
    for action, times in by_action.items():
        if len(times) < MIN_SAMPLES:
            continue
        mean = sum(times) / len(times)
        sd = math.sqrt(sum((t - mean) ** 2 for t in times) / (len(times) - 1))
        cv = sd / mean if mean > 0 else 0.0
        figure = (_fall(cv, REGULAR_CV_FULL, REGULAR_CV_FREE) * _fall(sd, REGULAR_SD_FULL_MS, REGULAR_SD_FREE_MS)
                  * _confidence(len(times)))
        if best["action"] is None or figure > best["figure"]:
            best = {"figure": _round(figure), "action": action, "completions": len(times), "cv": _round(cv, 4),
                    "sd_ms": round(sd, 1), "mean_ms": round(mean, 1)}
    return best


def _sustained(attempts: list[_Attempt], plays: list[_Attempt], carry: Stretch | None,
               slot_ms: Mapping[str, int]) -> dict[str, Any]:
    if not attempts:
        return {"figure": 0.0, "hours": 0.0, "utilization": 0.0, "since_ms": None, "through_ms": None}
    start = 0
    for i in range(1, len(attempts)):
        if attempts[i].completed_ms - attempts[i - 1].completed_ms >= BREAK_MS:
            start = i
    first, last = attempts[start].completed_ms, attempts[-1].completed_ms
    since = first
    # The window joins onto the carried stretch when it starts inside it (an overlap, so no
    # attempt between the two went unseen) and shows no break of its own.
    if carry is not None and start == 0 and carry.since_ms <= first <= carry.through_ms + BREAK_MS:
        since = min(first, carry.since_ms)
    visible = [a for a in plays if a.completed_ms > first]  # spacing after the stretch's first attempt
    span = last - first
    used = sum(slot_ms.get(a.action, a.min_ms) for a in visible)
    utilization = min(1.0, used / span) if span > 0 else 0.0
    # Utilization needs enough credits in view to mean anything.
    figure = (_rise(last - since, SUSTAINED_FREE_MS, SUSTAINED_FULL_MS) * _rise(utilization, UTILIZATION_FREE,
              UTILIZATION_FULL) * _confidence(len(visible)))
    return {"figure": _round(figure), "hours": _round((last - since) / 3_600_000, 2),
            "utilization": _round(utilization), "since_ms": since, "through_ms": last}


def _count_signal(attempts: list[_Attempt], outcome: str, free: int, full: int) -> dict[str, Any]:
    count = sum(1 for a in attempts if a.outcome == outcome)
    return {"figure": _round(_rise(count, free, full)), "count": count}


def _too_fast(attempts: list[_Attempt]) -> dict[str, Any]:
    """The most too_fast refusals within any TOO_FAST_SPAN_MS (attempts are in time order)."""
    times = [a.completed_ms for a in attempts if a.outcome == "too_fast"]
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= TOO_FAST_SPAN_MS:
            lo += 1
        most = max(most, hi - lo + 1)
    return {"figure": _round(_rise(most, TOO_FAST_FREE, TOO_FAST_FULL)), "count": len(times),
            "most_in_a_minute": most}


def _addresses(attempts: list[_Attempt]) -> dict[str, Any]:
    distinct = len({a.client for a in attempts if a.client})
    return {"figure": _round(_rise(distinct, ADDRESSES_FREE, ADDRESSES_FULL)), "distinct": distinct}


# --- helpers ---

def _parse(entries: Iterable[Mapping[str, Any]]) -> Iterable[_Attempt]:
    for doc in entries:
        try:
            completed, play, least = doc["completed_ms"], doc["play_ms"], doc["min_ms"]
            outcome, action = doc["outcome"], doc["action"]
        except (KeyError, TypeError):
            continue
        # Times are ints (MongoDB gives back bson.Int64, an int), never a bool.
        if not (isinstance(completed, int) and isinstance(play, int) and isinstance(least, int)):
            continue
        if bool in (type(completed), type(play), type(least)):
            continue
        if not (isinstance(outcome, str) and isinstance(action, str)):
            continue
        client = doc.get("client")
        yield _Attempt(int(completed), int(play), int(least), outcome, action,
                       client if isinstance(client, str) else None, bool(doc.get("duplicate")))


def _rise(value: float, free: float, full: float) -> float:
    """0 up to `free`, 1 from `full`, linear between."""
    if value <= free:
        return 0.0
    if value >= full:
        return 1.0
    return (value - free) / (full - free)


def _fall(value: float, full: float, free: float) -> float:
    """1 up to `full`, 0 from `free`, linear between."""
    return 1.0 - _rise(value, full, free)


def _confidence(samples: int) -> float:
    if samples < MIN_SAMPLES:
        return 0.0
    return min(1.0, samples / FULL_SAMPLES)


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)
