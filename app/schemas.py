"""Marshmallow schemas for every inbound payload. Unknown fields are refused everywhere."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.rooms.names import ID_PATTERN

_ID = validate.Regexp(rf"^{ID_PATTERN}$", error="must be 1-64 characters of A-Z a-z 0-9 _ -")


class StrictInteger(fields.Integer):
    """An integer that is a JSON number: not a string, a float or a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)


def _printable(value: str) -> None:
    if not value.isprintable() or not value.strip():
        raise ValidationError("must be printable characters, not only spaces")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class SessionSchema(Strict):
    player_id = fields.String(required=True, validate=_ID)
    name = fields.String(required=True, validate=[validate.Length(1, 32), _printable])
    region = fields.String(required=True, validate=validate.Length(1, 16))
    guild = fields.String(load_default=None, allow_none=True, validate=_ID)

    def __init__(self, regions: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.fields["region"].validators.append(validate.OneOf(regions))


class ActionStartSchema(Strict):
    action = fields.String(required=True, validate=validate.Length(1, 64))


class ActionCompleteSchema(Strict):
    token = fields.String(required=True, validate=validate.Length(1, 2048))
    proof = fields.String(required=True, validate=validate.Length(1, 64))


class RoomSchema(Strict):
    room = fields.String(required=True, validate=validate.Length(1, 80))


class _BoardQuery(Strict):
    period = fields.String(load_default="all", validate=validate.OneOf(("all", "daily", "weekly")))
    around = fields.String(load_default=None, validate=_ID)


class LeaderboardGetSchema(_BoardQuery):
    board = fields.String(required=True, validate=validate.Length(1, 80))
    limit = StrictInteger(load_default=10, validate=validate.Range(1, 100))
    offset = StrictInteger(load_default=0, validate=validate.Range(0, 1_000_000))


class LeaderboardQuerySchema(_BoardQuery):
    """The same query from an HTTP query string, where every value is text."""

    limit = fields.Integer(load_default=10, strict=False, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, strict=False, validate=validate.Range(0, 1_000_000))



class SuspensionSchema(Strict):
    suspended = fields.Boolean(required=True, truthy={True}, falsy={False})
