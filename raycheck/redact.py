"""Redaction: every report writer and summary line passes through here.

Credentials can reach a message by accident (an error that quotes a URL with a token, an
exception that prints a header, an environment dump). These patterns replace their values, and so
do the values of secret-looking environment variables and every secret raycheck read from a file
(a Ray auth token from a mounted Secret is in no variable): :func:`register_secret`.
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
_WHERE_ENV = re.compile(r"(?i)_(PATH|FILE|DIR)$")  # where a secret lies (RAY_AUTH_TOKEN_PATH): a path, shown
_MIN_SECRET_LENGTH = 6
_REGISTERED: set[str] = set()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in any output of this process from now on."""
    if value:
        _REGISTERED.add(value)


def _secret_env_values() -> list[str]:
    """Values of secret-looking variables, read from the environment as it is now, and the
    registered secrets; longest first (so a value that contains another is masked whole)."""
    found = {v for k, v in os.environ.items()
             if _SECRET_ENV.search(k) and not _WHERE_ENV.search(k) and len(v) >= _MIN_SECRET_LENGTH}
    return sorted(found | _REGISTERED, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with credentials masked; ``secrets``: the environment's, when the caller already read them."""
    for value in _secret_env_values() if secrets is None else secrets:
        text = text.replace(value, MASK)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """Redact every string inside a JSON-like value (the environment is read once for all of them)."""
    secrets = _secret_env_values() if secrets is None else secrets
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    return value
