"""The action catalogue: points and anti-cheat rules per action type, never from the client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.config import ConfigError


@dataclass(frozen=True)
class ActionRule:
    name: str
    points: int
    min_ms: int
    ttl_s: int
    difficulty: int
    per_minute: int


BUILTIN_ACTIONS: dict[str, dict] = {
    "complete_level": {"points": 100, "min_ms": 2000, "ttl_s": 600, "difficulty": 12, "per_minute": 30},
    "defeat_boss": {"points": 500, "min_ms": 5000, "ttl_s": 900, "difficulty": 14, "per_minute": 10},
    "collect_item": {"points": 10, "min_ms": 500, "ttl_s": 300, "difficulty": 8, "per_minute": 60},
}


class ActionRuleSchema(Schema):
    class Meta:
        unknown = RAISE

    points = fields.Integer(required=True, strict=True, validate=validate.Range(1, 1_000_000))
    min_ms = fields.Integer(required=True, strict=True, validate=validate.Range(0, 3_600_000))
    ttl_s = fields.Integer(required=True, strict=True, validate=validate.Range(1, 86_400))
    difficulty = fields.Integer(required=True, strict=True, validate=validate.Range(0, 32))
    per_minute = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))


class CatalogueFileSchema(Schema):
    class Meta:
        unknown = RAISE

    actions = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}\Z")),
        values=fields.Dict(),
        required=True,
    )
    achievements = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict)


class Catalogue:
    """Action rules by name; loaded once at startup."""

    def __init__(self, rules: dict[str, ActionRule]) -> None:
        self._rules = rules

    def get(self, name: str) -> ActionRule | None:
        return self._rules.get(name)

    def __iter__(self):
        return iter(self._rules.values())

    @classmethod
    def from_dict(cls, actions: dict[str, dict]) -> Catalogue:
        rules = {}
        for name, raw in actions.items():
            try:
                rule = ActionRuleSchema().load(raw)
            except ValidationError as exc:
                raise ConfigError(f"action {name!r}: {exc.messages}") from None
            rules[name] = ActionRule(name=name, **rule)
        if not rules:
            raise ConfigError("the action catalogue is empty")
        return cls(rules)


def read_catalogue_file(path: Path | None) -> dict:
    """The parsed ACTIONS_FILE ({"actions": ..., "achievements": ...}), or the built-ins."""
    if path is None:
        return {"actions": BUILTIN_ACTIONS, "achievements": {}}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return CatalogueFileSchema().load(raw)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"ACTIONS_FILE {str(path)!r}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"ACTIONS_FILE {str(path)!r}: {exc.messages}") from None
