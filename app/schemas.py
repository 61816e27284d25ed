"""Marshmallow schemas for every inbound payload. Unknown fields are refused everywhere."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

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
    period = StrictString(load_default="all", validate=validate.OneOf(("all", "daily", "weekly")))
    around = StrictString(load_default=None, validate=_ID)


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
