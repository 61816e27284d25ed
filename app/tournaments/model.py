"""A tournament as data: its window, its filters, its limit, and the object clients see.

Times are ms on the server's clock. A tournament runs over [start_ms, end_ms): a credit at
`start_ms` counts, one at `end_ms` does not. `actions` and `regions` None mean every one.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import iso

UPCOMING, RUNNING, ENDED = "upcoming", "running", "ended"


@dataclass(frozen=True)
class Tournament:
    tournament_id: str
    title: str
    start_ms: int
    end_ms: int
    actions: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    max_players: int | None = None
    players: int = 0  # entrants so far: the seat count joins take (app/tournaments/store.py)
    rev: int = 0  # bumped by every change: a join that read an older one reads again
    awarded: bool = False

    def state(self, now_ms: int) -> str:
        if now_ms < self.start_ms:
            return UPCOMING
        return RUNNING if now_ms < self.end_ms else ENDED

    def running_at(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms

    def admits(self, region: str) -> bool:
        return self.regions is None or region in self.regions

    def counts(self, action: str, region: str, at_ms: int) -> bool:
        """Whether a credit of `action` by a player of `region` at `at_ms` is inside this
        tournament (entrant or not: that is the store's to say)."""
        return self.running_at(at_ms) and (self.actions is None or action in self.actions) and self.admits(region)

    def public(self, now_ms: int) -> dict:
        return {
            "tournament_id": self.tournament_id,
            "title": self.title,
            "start_at": iso(self.start_ms),
            "end_at": iso(self.end_ms),
            "state": self.state(now_ms),
            "players": self.players,
            "actions": list(self.actions) if self.actions is not None else None,
            "regions": list(self.regions) if self.regions is not None else None,
            "max_players": self.max_players,
        }

    @classmethod
    def from_doc(cls, doc: dict) -> Tournament:
        actions, regions = doc.get("actions"), doc.get("regions")
        return cls(
            tournament_id=doc["_id"],
            title=doc["title"],
            start_ms=int(doc["start_ms"]),
            end_ms=int(doc["end_ms"]),
            actions=tuple(actions) if actions is not None else None,
            regions=tuple(regions) if regions is not None else None,
            max_players=int(doc["max_players"]) if doc.get("max_players") is not None else None,
            players=int(doc.get("players") or 0),
            rev=int(doc.get("rev") or 0),
            awarded=bool(doc.get("awarded")),
        )
