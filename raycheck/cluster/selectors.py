"""Label selectors, as the API server evaluates them (matchLabels and matchExpressions)."""

from __future__ import annotations

from typing import Any, Mapping


def matches(labels: Mapping[str, str] | None, selector: Mapping[str, Any] | None) -> bool:
    """True when ``labels`` satisfy a LabelSelector; an empty selector matches everything."""
    labels = labels or {}
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def equality(labels: Mapping[str, str]) -> str:
    """A ``labelSelector`` query string for equality matches: ``a=b,c=d``."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
