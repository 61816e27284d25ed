"""Behaviour scoring (app/anticheat/scoring.py) on recorded sequences of completion attempts:
seeded simulations of people (irregular, with pauses and breaks) and of bots (exact timing,
jitter, parallel challenges, bad proofs, stolen tokens, address pools), replayed the way the
scorer sees them: after each completion, the newest WINDOW entries, with the stretch the last
stored verdict carried."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from app.anticheat import scoring
from app.anticheat.scoring import THRESHOLD, WINDOW, Stretch, Verdict, bonus_for, score, slots, worth_storing

T0 = 1_795_428_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
LEVEL = "complete_level"  # the catalogue's: min_ms 2000, per_minute 30
SLOTS = {LEVEL: 2000}


# --- recorded sequences: simulated players, oldest first, as the audit trail stores them ---

def attempt(at: int, play_ms: int, *, min_ms: int = 2000, outcome: str = "credited", action: str = LEVEL,
            client: str = "198.51.100.20", duplicate: bool = False) -> dict:
    return {"player_id": "p", "action_id": f"a{at}", "action": action, "outcome": outcome, "duplicate": duplicate,
            "points": 100 if outcome == "credited" else 0, "started_ms": at - play_ms, "completed_ms": at,
            "play_ms": play_ms, "min_ms": min_ms, "difficulty": 12, "instance": "i1", "client": client}


def bot(seed: int, n: int, *, min_ms: int = 2000, latency_ms: int = 0, jitter_ms: int = 8) -> list[dict]:
    """Completes each challenge as soon as min_ms allows (plus its round trip and a few ms of
    jitter) and asks for the next one at once, around the clock."""
    rng = random.Random(seed)
    docs, t = [], T0
    for _ in range(n):
        play = min_ms + latency_ms + rng.randint(1, jitter_ms)
        t += play
        docs.append(attempt(t, play, min_ms=min_ms))
        t += rng.randint(2, 15)  # the ack, the next action:start
    return docs


def jitter_bot(seed: int, n: int, *, min_ms: int = 2000, centre: float = 1.1, spread: float = 0.1) -> list[dict]:
    """Plays for a fixed time (centre x min_ms) with uniform jitter of +-spread; a completion
    that lands before min_ms is refused too_fast and retried as soon as allowed."""
    rng = random.Random(seed)
    docs, t = [], T0
    for _ in range(n):
        started = t
        play = round(centre * min_ms * rng.uniform(1 - spread, 1 + spread))
        if play < min_ms:
            docs.append(attempt(started + play, play, min_ms=min_ms, outcome="too_fast"))
            play = min_ms + rng.randint(1, 20)
        t = started + play
        docs.append(attempt(t, play, min_ms=min_ms))
        t += rng.randint(2, 15)
    return docs[:n]


def human(seed: int, n: int, *, min_ms: int = 2000, slack_ms: tuple[int, int] = (200, 2000),
          pause_ms: tuple[int, int] = (5, 1500), break_every: int = 300,
          break_ms: tuple[int, int] = (3 * MINUTE, 20 * MINUTE)) -> list[dict]:
    """Plays min_ms plus 0.2-2 s, pauses a little between levels, and now and then (one level in
    `break_every`, at random) takes a break of minutes."""
    rng = random.Random(seed)
    docs, t = [], T0
    for _ in range(n):
        play = min_ms + rng.randint(*slack_ms)
        t += play
        docs.append(attempt(t, play, min_ms=min_ms))
        t += rng.randint(*pause_ms)
        if rng.random() < 1 / break_every:
            t += rng.randint(*break_ms)
    return docs


def mixed(docs: list[dict], every: int, outcome: str, seed: int = 0) -> list[dict]:
    """`docs` with one refused attempt of `outcome` after every `every`-th."""
    rng = random.Random(seed)
    out = []
    for i, doc in enumerate(docs):
        out.append(doc)
        if i % every == every - 1:
            at = doc["completed_ms"] + rng.randint(50, 500)
            out.append(attempt(at, rng.randint(200, 5000), outcome=outcome))
    return out


@dataclass
class Replay:
    """What the scorer would have made of a sequence: (attempts seen, verdict) at each pass."""

    passes: list[tuple[int, Verdict]]
    writes: int

    @property
    def verdicts(self) -> list[Verdict]:
        return [verdict for _, verdict in self.passes]

    @property
    def first_suspect(self) -> int | None:
        """After how many attempts the player first was a suspect with a bonus."""
        return next((seen for seen, v in self.passes if v.suspect and v.difficulty_bonus > 0), None)

    @property
    def max_suspicion(self) -> float:
        return max(v.suspicion for v in self.verdicts)


def replay(docs: list[dict], *, slot_ms: dict[str, int] | None = None, every: int = 1) -> Replay:
    """Score after every `every`-th attempt the newest WINDOW (newest first, as `recent` returns
    them), carrying the stretch of the last stored verdict; store when worth_storing says so.
    The scorer sees a player at most once a second or so: `every` > 1 is what it sees of a
    fast player, and keeps the long simulations quick."""
    stored: dict | None = None
    passes, writes = [], 0
    for seen in [*range(every, len(docs), every), len(docs)]:
        recent = docs[max(0, seen - WINDOW):seen][::-1]
        verdict = score(recent, carry=Stretch.from_signals(stored and stored["signals"]),
                        slot_ms=SLOTS if slot_ms is None else slot_ms)
        if worth_storing(stored, verdict, recent):
            stored = scoring.suspicion_doc(verdict, stored, docs[seen - 1]["completed_ms"])
            writes += 1
        passes.append((seen, verdict))
    return Replay(passes, writes)


# --- bots stand out ---

def test_a_bot_at_min_ms_is_a_suspect_with_a_raised_bonus_within_150_completions() -> None:
    for seed in range(20):
        run = replay(bot(seed, 150))
        assert run.first_suspect is not None and run.first_suspect <= 150, seed
        last = run.verdicts[-1]
        assert last.suspect and last.difficulty_bonus >= 6
        assert last.signals["at_min_ms"]["fraction"] == 1.0
        assert last.signals["regular_timing"]["figure"] == 1.0
        # and stays one: never a bonus withdrawn once it stood out
        assert all(v.suspect for seen, v in run.passes if seen >= run.first_suspect)


def test_a_bot_at_min_ms_behind_a_slow_network_is_caught_by_its_regularity() -> None:
    """250 ms of round trip puts it outside the at-min_ms margin; its spread is still a few ms."""
    for seed in range(10):
        run = replay(bot(seed, 150, latency_ms=250, jitter_ms=40))
        assert run.first_suspect is not None and run.first_suspect <= 150
        assert run.verdicts[-1].signals["at_min_ms"]["figure"] == 0
        assert run.verdicts[-1].signals["regular_timing"]["figure"] == 1.0


def test_a_bot_with_uniform_jitter_of_ten_percent_around_a_fixed_time_is_caught() -> None:
    for seed in range(20):
        run = replay(jitter_bot(seed, 150))
        assert run.first_suspect is not None and run.first_suspect <= 150, seed
        assert run.verdicts[-1].suspect


def test_a_bot_with_jitter_on_a_long_level_is_caught_by_playing_for_hours_without_a_break() -> None:
    """+-10% around 33 s on a 30 s level: its spread (2 s) is a person's, but it never stops."""
    slot = {LEVEL: 30_000}
    docs = jitter_bot(3, 1200, min_ms=30_000)
    run = replay(docs, slot_ms=slot, every=5)
    first = run.first_suspect
    assert first is not None and (docs[first - 1]["completed_ms"] - T0) / HOUR <= 4.0
    assert dict(run.passes)[first].signals["sustained_play"]["figure"] > 0
    # the window holds ~1.8 h of it; the stretch carried over from verdict to verdict says 4 and more
    assert run.verdicts[-1].signals["sustained_play"]["hours"] >= 4
    assert run.verdicts[-1].signals["regular_timing"]["figure"] == 0


def test_challenges_held_open_and_cashed_in_at_once_are_a_too_fast_burst() -> None:
    docs, t = [], T0
    for _ in range(3):
        t += 2100
        docs.append(attempt(t, 2100))
        docs += [attempt(t + k, 2100 + k, outcome="too_fast") for k in range(1, 25)]
        t += MINUTE  # the next round of 25 open challenges
    verdict = score(docs[::-1], slot_ms=SLOTS)
    assert verdict.signals["too_fast"]["most_in_a_minute"] == 24
    assert verdict.signals["too_fast"]["figure"] == 1.0
    assert verdict.suspect and verdict.difficulty_bonus >= 1


@pytest.mark.parametrize("outcome, count", [("proof_invalid", 10), ("token_invalid", 6)])
def test_a_burst_of_bad_proofs_or_stolen_tokens_makes_a_suspect_of_a_person_like_timing(outcome, count) -> None:
    docs = human(1, 60)
    t = docs[-1]["completed_ms"]
    docs += [attempt(t + 100 * k, 3000, outcome=outcome) for k in range(1, count + 1)]
    verdict = score(docs[::-1], slot_ms=SLOTS)
    assert verdict.signals[outcome] == {"figure": 1.0, "count": count}
    assert verdict.suspect and verdict.difficulty_bonus >= 1


def test_an_account_played_from_a_pool_of_addresses_is_a_suspect() -> None:
    docs = human(2, 200)
    for i, doc in enumerate(docs):
        doc["client"] = f"203.0.113.{i % 12}"
    verdict = score(docs[::-1], slot_ms=SLOTS)
    assert verdict.signals["addresses"] == {"figure": 1.0, "distinct": 12}
    assert verdict.suspect


# --- people do not ---

HUMAN_SEEDS = range(20)


def test_a_person_with_irregular_pauses_never_gets_a_bonus() -> None:
    worst = 0.0
    for seed in HUMAN_SEEDS:
        run = replay(human(seed, 3000), every=5)
        assert run.first_suspect is None, seed
        assert all(v.difficulty_bonus == 0 for v in run.verdicts)
        worst = max(worst, run.max_suspicion)
    assert worst < 0.3


def test_a_person_who_plays_straight_on_without_pauses_between_levels_is_no_suspect() -> None:
    """The live test's player: the next challenge at once, 0.2-2 s over min_ms, a break now and then."""
    for seed in HUMAN_SEEDS:
        assert replay(human(seed, 1500, pause_ms=(2, 15)), every=5).max_suspicion < THRESHOLD


def test_a_fast_but_irregular_person_is_no_suspect() -> None:
    for seed in HUMAN_SEEDS:
        assert replay(human(seed, 1500, slack_ms=(150, 1000)), every=5).max_suspicion < THRESHOLD, seed


def test_a_person_on_a_long_level_is_not_too_regular() -> None:
    """0.2-2 s over a 60 s level is a small share of it (CV under 1%), but no script's few ms."""
    for seed in range(10):
        run = replay(human(seed, 400, min_ms=60_000, break_every=20), slot_ms={LEVEL: 60_000})
        assert run.max_suspicion < THRESHOLD
        assert run.verdicts[-1].signals["regular_timing"]["cv"] < 0.01


def test_a_person_who_plays_for_hours_with_breaks_is_no_suspect() -> None:
    for seed in range(10):
        run = replay(human(seed, 6000, break_every=600), every=20)  # a break every ~30 min
        assert run.max_suspicion < THRESHOLD


def test_a_person_with_a_few_expired_challenges_and_one_bad_proof_is_no_suspect() -> None:
    docs = mixed(human(4, 400), 40, "token_expired")
    docs = mixed(docs, 200, "proof_invalid", seed=1)
    assert replay(docs).max_suspicion < 0.1


# --- the verdict and its storage ---

def test_a_recorded_bot_sequence_scores_the_same_every_time() -> None:
    """A literal sequence (the first 40 of a bot at min_ms), so a change of the figures shows here."""
    plays = [2004, 2003, 2007, 2001, 2008, 2002, 2005, 2006, 2001, 2003] * 4
    docs, t = [], T0
    for play in plays:
        t += play
        docs.append(attempt(t, play))
        t += 9
    verdict = score(docs[::-1], slot_ms=SLOTS)
    assert verdict.signals["at_min_ms"] == {"figure": 1.0, "fraction": 1.0, "at_min": 40, "completions": 40,
                                            "margin_ms": 150}
    assert verdict.signals["regular_timing"] == {"figure": 1.0, "action": LEVEL, "completions": 40, "cv": 0.0012,
                                                 "sd_ms": 2.4, "mean_ms": 2004.0}
    assert verdict.suspicion == 0.98
    assert verdict.difficulty_bonus == 8


def test_too_few_attempts_say_nothing() -> None:
    verdict = score(bot(0, scoring.MIN_SAMPLES - 1)[::-1], slot_ms=SLOTS)
    assert verdict.suspicion == 0 and verdict.difficulty_bonus == 0
    assert score([]).suspicion == 0


def test_duplicates_and_malformed_entries_are_left_out_of_the_timing() -> None:
    docs = human(5, 60)
    retries = [dict(doc, duplicate=True, play_ms=doc["min_ms"] + 1) for doc in docs]
    junk: list = [{"outcome": "credited"}, {"completed_ms": "x", "play_ms": 1, "min_ms": 1, "outcome": "credited",
                                           "action": LEVEL}, None, 7]
    verdict = score(docs + retries + junk)
    assert verdict.signals["at_min_ms"]["completions"] == 60
    assert verdict.signals["at_min_ms"]["figure"] == 0


def test_signals_are_json_with_a_figure_each() -> None:
    import json

    verdict = score(bot(1, 200)[::-1], slot_ms=SLOTS)
    assert set(verdict.signals) == set(scoring.WEIGHTS)
    assert all(0 <= s["figure"] <= 1 for s in verdict.signals.values())
    assert json.loads(json.dumps(verdict.signals)) == verdict.signals


def test_the_bonus_is_zero_below_the_threshold_and_grows_to_eight_bits() -> None:
    assert bonus_for(0) == bonus_for(THRESHOLD - 0.001) == 0
    assert bonus_for(THRESHOLD) == 1
    assert bonus_for(1.0) == scoring.MAX_BONUS_BITS == 8
    bits = [bonus_for(THRESHOLD + i / 100) for i in range(51)]
    assert bits == sorted(bits)


def test_slots_are_the_least_spacing_the_limits_allow() -> None:
    @dataclass
    class Rule:
        name: str
        min_ms: int
        per_minute: int

    assert slots([Rule("a", 2000, 30), Rule("b", 0, 60), Rule("c", 500, 60)]) == {"a": 2000, "b": 1000, "c": 1000}


def test_a_verdict_is_stored_only_when_it_changed_meaningfully() -> None:
    # a person: a write now and then (its stretch carried over), not one per completion
    run = replay(human(6, 3000), every=2)
    assert run.writes <= 3000 / 40
    # a bot: a handful while its suspicion rises, then one per CARRY_REFRESH attempts
    run = replay(bot(6, 1000), every=2)
    assert run.writes <= 20 + 1000 / scoring.CARRY_REFRESH
    verdict = score(bot(6, 200)[::-1], slot_ms=SLOTS)
    stored = scoring.suspicion_doc(verdict, None, T0)
    assert not worth_storing(stored, verdict, bot(6, 200)[::-1])
    assert worth_storing(None, verdict, [])
    assert worth_storing(dict(stored, difficulty_bonus=verdict.difficulty_bonus - 1), verdict, [])
    assert worth_storing(dict(stored, score=verdict.suspicion - scoring.SCORE_STEP), verdict, [])


def test_since_is_when_the_player_first_crossed_the_threshold() -> None:
    suspect = score(bot(1, 100)[::-1], slot_ms=SLOTS)
    first = scoring.suspicion_doc(suspect, None, T0)
    assert first["since"] == T0 and first["difficulty_bonus"] == suspect.difficulty_bonus
    assert scoring.suspicion_doc(suspect, first, T0 + 5000)["since"] == T0
    cleared = scoring.suspicion_doc(score([]), first, T0 + 9000)
    assert cleared["since"] is None and cleared["difficulty_bonus"] == 0 and cleared["updated_ms"] == T0 + 9000
