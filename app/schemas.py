"""Marshmallow schemas for every inbound payload. Unknown fields are refused everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from app.leaderboard.periods import STANDARD
from app.rooms.names import ID_PATTERN

_ID = validate.Regexp(rf"^{ID_PATTERN}\Z", error="must be 1-64 characters of A-Z a-z 0-9 _ -")


class StrictInteger(fields.Integer):
    """An integer that is a JSON number: not a string, a float or a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictString(fields.String):
    """A JSON string: not bytes (a Socket.IO binary attachment), a number or anything else."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryInteger(fields.Integer):
    """An integer written in a query string: decimal digits only."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValidationError("must be a whole number")
        return super()._deserialize(value, attr, data, **kwargs)


def _printable(value: str) -> None:
    if not value.isprintable() or not value.strip():
        raise ValidationError("must be printable characters, not only spaces")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class SessionSchema(Strict):
    player_id = StrictString(required=True, validate=_ID)
    name = StrictString(required=True, validate=[validate.Length(1, 32), _printable])
    region = StrictString(required=True, validate=validate.Length(1, 16))
    guild = StrictString(load_default=None, allow_none=True, validate=_ID)
    # (v1.1) A returning guest's proof that the player is its own (null: none); ignored with the API key.
    guest_key = StrictString(allow_none=True, validate=validate.Length(1, 128))

    def __init__(self, regions: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        region = self.fields["region"]
        region.validators = [*region.validators, validate.OneOf(regions)]


class ActionStartSchema(Strict):
    action = StrictString(required=True, validate=validate.Length(1, 64))


class ActionCompleteSchema(Strict):
    token = StrictString(required=True, validate=validate.Length(1, 2048))
    proof = StrictString(required=True, validate=validate.Length(1, 64))


class RoomSchema(Strict):
    room = StrictString(required=True, validate=validate.Length(1, 80))


class _BoardQuery(Strict):
    period = StrictString(load_default="all")
    around = StrictString(load_default=None, validate=_ID)
    # An ended period's day or week; whether it is well formed is the period table's to say
    # (app/leaderboard/periods.py), in LeaderboardReads.
    day = StrictString(validate=validate.Length(1, 16))
    week = StrictString(validate=validate.Length(1, 16))

    def __init__(self, *args, periods: tuple[str, ...] = STANDARD.names, **kwargs) -> None:
        """`periods`: the names of the server's period table (the standard one by default)."""
        super().__init__(*args, **kwargs)
        self._periods = periods

    @validates("period")
    def _known_period(self, value: str, **kwargs) -> None:
        if value not in self._periods:
            raise ValidationError(f"must be one of: {', '.join(self._periods)}")


class LeaderboardGetSchema(_BoardQuery):
    board = StrictString(required=True, validate=validate.Length(1, 80))
    limit = StrictInteger(load_default=10, validate=validate.Range(1, 100))
    offset = StrictInteger(load_default=0, validate=validate.Range(0, 1_000_000))


class LeaderboardQuerySchema(_BoardQuery):
    """The same query from an HTTP query string, where every value is text."""

    limit = QueryInteger(load_default=10, validate=validate.Range(1, 100))
    offset = QueryInteger(load_default=0, validate=validate.Range(0, 1_000_000))



class StrictBoolean(fields.Boolean):
    """true or false, not 1, 0 or "yes"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class SuspensionSchema(Strict):
    suspended = StrictBoolean(required=True)
    # (v1.1) Off every board while true; back on them when set false (PROTOCOL.md 9).
    hidden = StrictBoolean(load_default=False)


class AdminPageSchema(Strict):
    """`?limit=&cursor=` of the operator lists (PROTOCOL.md 9): the cursor is checked by its list."""

    limit = QueryInteger(load_default=50, validate=validate.Range(1, 200))
    cursor = StrictString(load_default=None, validate=validate.Length(1, 200))


class NoQuerySchema(Strict):
    """An operator route that takes no query parameters: any is invalid_payload."""


class IsoTime(fields.Field):
    """An ISO 8601 time with its offset (`2026-11-23T10:00:00.000Z`), loaded as ms since the epoch."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("must be an ISO 8601 UTC time such as 2026-11-23T10:00:00.000Z")
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("must be an ISO 8601 UTC time such as 2026-11-23T10:00:00.000Z") from None
        if at.tzinfo is None:
            raise ValidationError("must say its offset from UTC (end it with Z)")
        if not 2000 <= at.astimezone(UTC).year <= 9998:
            raise ValidationError("must be a time between the years 2000 and 9998")
        return int(at.timestamp() * 1000)


class TournamentSchema(Strict):
    """PUT /api/v1/tournaments/<id> (PROTOCOL.md 10); actions, regions and the window are
    checked against the catalogue, REGIONS and the clock by the tournament service."""

    title = StrictString(required=True, validate=[validate.Length(1, 100), _printable])
    start_at = IsoTime(required=True, attribute="start_ms")
    end_at = IsoTime(required=True, attribute="end_ms")
    # null or absent: every action, every region.
    actions = fields.List(StrictString(validate=validate.Length(1, 64)), load_default=None, allow_none=True,
                          validate=validate.Length(1, 100))
    regions = fields.List(StrictString(validate=validate.Length(1, 16)), load_default=None, allow_none=True,
                          validate=validate.Length(1, 100))
    max_players = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(1, 1_000_000))


class TournamentJoinSchema(Strict):
    tournament = StrictString(required=True, validate=_ID)
