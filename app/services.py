"""The services one app instance runs, built once its stores are open."""

from __future__ import annotations

from dataclasses import dataclass

from app.actions.catalogue import Catalogue
from app.actions.service import ActionService
from app.anticheat.tokens import TokenSigner
from app.leaderboard.feed import RoomFeed
from app.leaderboard.reads import LeaderboardReads
from app.operators.service import OperatorService
from app.players.service import PlayerService
from app.rooms.watching import WatchPolicy
from app.tournaments.service import TournamentService


@dataclass(frozen=True)
class Services:
    signer: TokenSigner
    catalogue: Catalogue
    actions: ActionService
    players: PlayerService
    reads: LeaderboardReads
    feed: RoomFeed
    watch: WatchPolicy
    operators: OperatorService
    tournaments: TournamentService
