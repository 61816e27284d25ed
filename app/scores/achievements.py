"""Achievement catalogue and the rules that decide which ones an action unlocks.

Doc-based achievements are decided by comparing the player document before and after
one credit, so a retry that finishes a half-done credit reports exactly the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.clock import iso
from app.config import ConfigError

KINDS = ("actions", "score", "streak_days", "global_rank", "tournament_place")


@dataclass(frozen=True)
class Achievement:
    id: str
    name: str
    description: str
    kind: str
    threshold: int

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description}


BUILTIN: tuple[Achievement, ...] = (
    Achievement("first_action", "First steps", "Complete your first action.", "actions", 1),
    Achievement("score_100", "Century", "Reach a total score of 100.", "score", 100),
    Achievement("score_1000", "Thousandaire", "Reach a total score of 1,000.", "score", 1000),
    Achievement("score_10000", "Legend", "Reach a total score of 10,000.", "score", 10000),
    Achievement("streak_3", "Regular", "Score on 3 UTC days in a row.", "streak_days", 3),
    Achievement("streak_7", "Devoted", "Score on 7 UTC days in a row.", "streak_days", 7),
    Achievement("top_10", "Contender", "Reach the global all-time top 10.", "global_rank", 10),
    Achievement("top_1", "Champion", "Reach rank 1 on the global all-time board.", "global_rank", 1),
    # Awarded when a tournament ends, to its final board's first three (app/tournaments/service.py).
    Achievement("tournament_1", "Tournament winner", "Finish first in a tournament.", "tournament_place", 1),
    Achievement("tournament_2", "Tournament runner-up", "Finish second in a tournament.", "tournament_place", 2),
    Achievement("tournament_3", "Tournament podium", "Finish third in a tournament.", "tournament_place", 3),
)


class AchievementFileSchema(Schema):
    """One entry of ACTIONS_FILE's "achievements" object."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 64))
    description = fields.String(load_default="", validate=validate.Length(0, 256))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    threshold = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10**12))


def streak_days(days: list[str], today: str) -> int:
    """Consecutive UTC days with a credit, ending today."""
    active = set(days)
    day = date.fromisoformat(today)
    count = 0
    while day.isoformat() in active:
        count += 1
        day -= timedelta(days=1)
    return count


class AchievementBook:
    def __init__(self, achievements: tuple[Achievement, ...]) -> None:
        self._by_id = {a.id: a for a in achievements}

    @classmethod
    def load(cls, extra: dict[str, dict]) -> AchievementBook:
        found = list(BUILTIN)
        for ach_id, raw in extra.items():
            try:
                spec = AchievementFileSchema().load(raw)
            except ValidationError as exc:
                raise ConfigError(f"achievement {ach_id!r}: {exc.messages}") from None
            found = [a for a in found if a.id != ach_id]
            found.append(Achievement(id=ach_id, **spec))
        return cls(tuple(found))

    def get(self, ach_id: str) -> Achievement | None:
        return self._by_id.get(ach_id)

    def listed(self, rows: list[dict]) -> list[dict]:
        """Unlocked achievement documents as profiles and exports show them."""
        out = []
        for row in rows:
            ach = self.get(row["achievement"])
            out.append({"id": row["achievement"], "name": ach.name if ach else row["achievement"],
                        "unlocked_at": iso(int(row["unlocked_ms"]))})
        return out

    def _measure(self, kind: str, doc: dict | None, today: str) -> int:
        if not doc:
            return 0
        if kind == "actions":
            return int(doc.get("actions", 0))
        if kind == "score":
            return int(doc.get("total", 0))
        if kind == "streak_days":
            days = doc.get("active_days", [])
            if today not in days:
                # Before today's first credit, the streak is the one that ended yesterday.
                today = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
            return streak_days(days, today)
        return 0

    def crossed(self, before: dict | None, after: dict, today: str) -> list[Achievement]:
        """Doc-based achievements whose threshold this one credit crossed."""
        out = []
        for ach in self._by_id.values():
            if ach.kind in ("global_rank", "tournament_place"):
                continue
            if self._measure(ach.kind, before, today) < ach.threshold <= self._measure(ach.kind, after, today):
                out.append(ach)
        return out

    def by_rank(self, rank: int) -> list[Achievement]:
        return [a for a in self._by_id.values() if a.kind == "global_rank" and rank <= a.threshold]

    def by_tournament_place(self, place: int) -> list[Achievement]:
        """What finishing a tournament at `place` (1 = first) unlocks: that place exactly."""
        return [a for a in self._by_id.values() if a.kind == "tournament_place" and a.threshold == place]
