"""What a probe saw, in the form every check and report shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Observation:
    """One probe's result.

    ``message`` is the one line the on-call reads (what was observed, with figures), pass or
    fail. ``cause`` selects the remediation variant in the catalog (``refused``, ``nxdomain``,
    ...). ``figures`` are values the remediation may quote (``cluster_ray_version``, ...).
    ``data`` carries structured results for later checks (resolved addresses, resources).
    """

    ok: bool
    message: str
    cause: str | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def __str__(self) -> str:
        return self.message


def ms(seconds: float) -> str:
    """Format a duration the way the messages quote it."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"
