"""The action catalogue: rules from a dict, bad rules refused, ACTIONS_FILE parsing (PROTOCOL.md 5, 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.actions.catalogue import BUILTIN_ACTIONS, ActionRule, Catalogue, read_catalogue_file
from app.config import ConfigError

RULE = {"points": 100, "min_ms": 2000, "ttl_s": 600, "difficulty": 12, "per_minute": 30}


def rule_of(catalogue: Catalogue, name: str) -> ActionRule:
    rule = catalogue.get(name)
    assert rule is not None, name
    return rule


def test_from_dict() -> None:
    catalogue = Catalogue.from_dict({"complete_level": RULE, "tap": {**RULE, "points": 1, "min_ms": 0}})
    assert catalogue.get("complete_level") == ActionRule(name="complete_level", **RULE)
    assert rule_of(catalogue, "tap").points == 1 and rule_of(catalogue, "tap").min_ms == 0
    assert catalogue.get("missing") is None
    assert sorted(rule.name for rule in catalogue) == ["complete_level", "tap"]


def test_builtin_actions_load() -> None:
    catalogue = Catalogue.from_dict(BUILTIN_ACTIONS)
    rule = rule_of(catalogue, "complete_level")
    assert (rule.points, rule.min_ms, rule.ttl_s, rule.difficulty, rule.per_minute) == (100, 2000, 600, 12, 30)


def test_rule_limits_are_inclusive() -> None:
    low = {"points": 1, "min_ms": 0, "ttl_s": 1, "difficulty": 0, "per_minute": 1}
    high = {"points": 1_000_000, "min_ms": 3_600_000, "ttl_s": 86_400, "difficulty": 32, "per_minute": 10_000}
    catalogue = Catalogue.from_dict({"low": low, "high": high})
    assert catalogue.get("low") == ActionRule(name="low", **low)
    assert catalogue.get("high") == ActionRule(name="high", **high)


def test_empty_catalogue_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Catalogue.from_dict({})


@pytest.mark.parametrize(
    "change",
    [
        {"points": 0},
        {"points": -5},
        {"points": 1_000_001},
        {"points": "100"},
        {"points": 100.0},
        {"points": 1.5},
        {"points": True},
        {"points": None},
        {"min_ms": -1},
        {"min_ms": 3_600_001},
        {"ttl_s": 0},
        {"ttl_s": 86_401},
        {"difficulty": -1},
        {"difficulty": 33},
        {"difficulty": False},
        {"per_minute": 0},
        {"per_minute": 10_001},
        {"bonus": 1},
    ],
)
def test_bad_rule_is_a_config_error(change: dict) -> None:
    with pytest.raises(ConfigError, match="broken"):
        Catalogue.from_dict({"fine": RULE, "broken": {**RULE, **change}})


@pytest.mark.parametrize("missing", sorted(RULE))
def test_missing_rule_field_is_a_config_error(missing: str) -> None:
    with pytest.raises(ConfigError, match="broken"):
        Catalogue.from_dict({"broken": {k: v for k, v in RULE.items() if k != missing}})


@pytest.mark.parametrize("raw", ["fast", 5, None, [RULE]])
def test_rule_that_is_not_an_object_is_a_config_error(raw: Any) -> None:
    with pytest.raises(ConfigError):
        Catalogue.from_dict({"broken": raw})


def test_no_file_gives_the_builtins() -> None:
    assert read_catalogue_file(None) == {"actions": BUILTIN_ACTIONS, "achievements": {}}


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "actions.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_valid_file(tmp_path: Path) -> None:
    content = {"actions": {"complete_level": RULE, "collect-item_2": {**RULE, "points": 10}}}
    parsed = read_catalogue_file(write(tmp_path, content))
    assert parsed == {"actions": content["actions"], "achievements": {}}
    catalogue = Catalogue.from_dict(parsed["actions"])
    assert rule_of(catalogue, "collect-item_2").points == 10


def test_valid_file_with_achievements(tmp_path: Path) -> None:
    extra = {"score_50": {"name": "Fifty", "kind": "score", "threshold": 50}}
    parsed = read_catalogue_file(write(tmp_path, {"actions": {"a": RULE}, "achievements": extra}))
    assert parsed == {"actions": {"a": RULE}, "achievements": extra}


def test_the_protocol_example_file(tmp_path: Path) -> None:
    text = """{"actions": {"complete_level": {"points": 100, "min_ms": 2000, "ttl_s": 600,
                                 "difficulty": 12, "per_minute": 30}}}"""
    parsed = read_catalogue_file(write(tmp_path, text))
    assert Catalogue.from_dict(parsed["actions"]).get("complete_level") == ActionRule("complete_level", **RULE)


def test_utf8_file(tmp_path: Path) -> None:
    extra = {"zoë": {"name": "Zoë's prize ☃", "kind": "actions", "threshold": 3}}
    path = tmp_path / "actions.json"
    path.write_bytes(json.dumps({"actions": {"a": RULE}, "achievements": extra}, ensure_ascii=False).encode("utf-8"))
    assert read_catalogue_file(path)["achievements"] == extra


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "not json",
        '{"actions": {"a": {"points": 1,}}}',
        "[]",
        "null",
        "42",
        '"actions"',
        {},
        {"achievements": {}},
        {"actions": []},
        {"actions": "complete_level"},
        {"actions": {"a": RULE}, "extra": 1},
        {"actions": {"bad name": RULE}},
        {"actions": {"": RULE}},
        {"actions": {"a" * 65: RULE}},
        {"actions": {"dot.ted": RULE}},
        {"actions": {"line\n": RULE}},
        {"actions": {"a": "rule"}},
        {"actions": {"a": RULE}, "achievements": []},
        {"actions": {"a": RULE}, "achievements": {"x": "y"}},
    ],
)
def test_invalid_file_is_a_config_error(tmp_path: Path, content: object) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        read_catalogue_file(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        read_catalogue_file(tmp_path / "nope.json")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        read_catalogue_file(tmp_path)


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "actions.json"
    path.write_bytes(b'{"actions": {"a": {"points": 1}}, "x": "\xff\xfe"}')
    with pytest.raises(ConfigError, match="ACTIONS_FILE"):
        read_catalogue_file(path)


def test_rules_in_a_parsed_file_are_checked_by_from_dict(tmp_path: Path) -> None:
    parsed = read_catalogue_file(write(tmp_path, {"actions": {"a": {**RULE, "points": 0}}}))
    with pytest.raises(ConfigError):
        Catalogue.from_dict(parsed["actions"])
