"""Check results: what each check concluded, in the shape the reports and the summary share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raycheck.settings import SEVERITIES
from raycheck.remediation import Remediation

OUTCOMES = ("passed", "failed", "skipped", "blocked", "error")
PROBLEM_OUTCOMES = ("failed", "error", "blocked")


def severity_rank(severity: str) -> int:
    """critical=2, warning=1, info=0: a failure counts when its rank reaches --fail-on's."""
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity)


@dataclass
class CheckResult:
    id: str
    nodeid: str
    markers: list[str]
    severity: str
    outcome: str = "passed"
    duration_s: float = 0.0
    message: str = ""
    blocked_by: str | None = None
    cause: str | None = None
    remediation: Remediation | None = None

    def counts_against(self, fail_on: str) -> bool:
        """True when this result should fail a run gated at ``fail_on``."""
        return self.outcome in ("failed", "error") and severity_rank(self.severity) >= severity_rank(fail_on)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "nodeid": self.nodeid,
            "markers": self.markers,
            "outcome": self.outcome,
            "severity": self.severity,
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "blocked_by": self.blocked_by,
            "cause": self.cause,
            "remediation": self.remediation.as_dict() if self.remediation else None,
        }


def summarize(results: list[CheckResult]) -> dict[str, int]:
    counts = {outcome: 0 for outcome in OUTCOMES}
    for result in results:
        counts[result.outcome] += 1
    return counts
