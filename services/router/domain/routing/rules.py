"""Queue selection rules: small structured expressions over a conversation's attributes, never eval.

    {"all": [{"attr": "channel", "in": ["email"]}, {"attr": "tier", "in": ["gold", "platinum"]}]}
    {"any": [{"attr": "language", "eq": "fr"}, {"attr": "tags", "has": "billing"}]}
    {"not": {"attr": "attributes.plan", "eq": "free"}}

Operators: eq, ne, in, not_in, has (a list attribute contains), exists, gte, lte. Attribute paths use dots.
An empty rule matches everything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Rule = Mapping[str, Any]
_OPS = ("eq", "ne", "in", "not_in", "has", "exists", "gte", "lte")


class InvalidRule(ValueError):
    pass


def _get(attrs: Mapping[str, Any], path: str) -> Any:
    value: Any = attrs
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def validate(rule: Rule, depth: int = 0) -> None:
    """Refuse malformed rules when a queue is saved, not when a conversation is routed."""
    if depth > 8:
        raise InvalidRule("rule nested too deeply")
    if not isinstance(rule, Mapping):
        raise InvalidRule("a rule is an object")
    if not rule:
        return
    if "all" in rule or "any" in rule:
        parts = rule.get("all", rule.get("any"))
        if len(rule) != 1 or not isinstance(parts, list):
            raise InvalidRule("'all'/'any' take a list and nothing else")
        for part in parts:
            validate(part, depth + 1)
        return
    if "not" in rule:
        if len(rule) != 1:
            raise InvalidRule("'not' takes one rule and nothing else")
        validate(rule["not"], depth + 1)
        return
    ops = [k for k in rule if k != "attr"]
    if not isinstance(rule.get("attr"), str) or len(ops) != 1 or ops[0] not in _OPS:
        raise InvalidRule(f"a condition is {{'attr': path, <one of {', '.join(_OPS)}>: value}}")
    if ops[0] in ("in", "not_in") and not isinstance(rule[ops[0]], list):
        raise InvalidRule(f"'{ops[0]}' takes a list")


def matches(rule: Rule, attrs: Mapping[str, Any]) -> bool:
    if not rule:
        return True
    if "all" in rule:
        return all(matches(r, attrs) for r in rule["all"])
    if "any" in rule:
        return any(matches(r, attrs) for r in rule["any"])
    if "not" in rule:
        return not matches(rule["not"], attrs)
    value = _get(attrs, rule["attr"])
    op = next(k for k in rule if k != "attr")
    expected = rule[op]
    if op == "eq":
        return bool(value == expected)
    if op == "ne":
        return bool(value != expected)
    if op == "in":
        return value in expected
    if op == "not_in":
        return value not in expected
    if op == "has":
        return isinstance(value, (list, tuple, set, frozenset)) and expected in value
    if op == "exists":
        return (value is not None) == bool(expected)
    try:
        return bool(value >= expected) if op == "gte" else bool(value <= expected)
    except TypeError:
        return False
