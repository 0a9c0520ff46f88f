"""Redaction: every report writer and summary line passes through here.

Credentials can reach a message by accident (an error that quotes a URL with a token, an
exception that prints a header, an environment dump). These patterns replace their values.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
_RULES = (
    (re.compile(r"(?i)(authorization\s*[:=]\s*)((?:bearer|basic)\s+)?[^\s,;'\"]+"), r"\1\2***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1***"),
    (re.compile(r"(?i)((?:token|password|passwd|secret|client-key-data|client-certificate-data|api[_-]?key)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"}]+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1***@"),
)
_SECRET_ENV = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY)")
_MIN_SECRET_LENGTH = 6


_cache: tuple[dict[Any, Any] | None, list[str]] = (None, [])


def _secret_env_values() -> list[str]:
    """Values of secret-looking variables, longest first; recomputed only when the environment
    changes (comparing CPython's raw environ dict costs microseconds; scanning it, 60 µs a call)."""
    global _cache
    raw = getattr(os.environ, "_data", None)
    if raw is not None and raw == _cache[0]:
        return _cache[1]
    values = sorted((v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_SECRET_LENGTH),
                    key=len, reverse=True)
    _cache = (dict(raw) if raw is not None else None, values)
    return values


def redact_text(text: str) -> str:
    for value in _secret_env_values():
        text = text.replace(value, MASK)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
