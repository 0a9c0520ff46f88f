"""The terminal summary: one line per finding, grouped by severity, its remediation's title, first
command (with its danger line) and verification, then the checks that passed and the exit status
the run gets from ``--fail-on``."""

from __future__ import annotations

from typing import Any

import pytest

from raycheck.plugins.runner import run_state
from raycheck.redact import redact_text
from raycheck.remediation import DANGER_MARK, NOT_VERIFIABLE, NOT_VERIFIED, VERIFIED
from raycheck.results import PROBLEM_OUTCOMES
from raycheck.settings import SEVERITIES

LABELS = {"failed": "FAIL   ", "error": "ERROR  ", "blocked": "BLOCKED"}
VERIFICATION_MARKS = {VERIFIED: "\u2713", NOT_VERIFIED: "\u2717", NOT_VERIFIABLE: "?"}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = run_state(config)
    if state is None or not state.results:
        return
    tr = terminalreporter
    results = list(state.results.values())
    counts = {o: sum(r.outcome == o for r in results) for o in ("failed", "error", "blocked", "skipped", "passed")}
    headline = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    status = state.exit_status() if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else exitstatus
    tr.write_sep("=", f"raycheck: {headline} (fail on {state.settings.fail_on}: exit {int(status)})",
                 red=state.exit_status() != 0, green=state.exit_status() == 0, bold=True)
    for severity in SEVERITIES:
        shown = [r for r in results if r.severity == severity and r.outcome in PROBLEM_OUTCOMES]
        if not shown:
            continue
        counts_here = any(r.counts_against(state.settings.fail_on) for r in shown)
        tr.write_line(severity.upper(), red=counts_here, yellow=not counts_here, bold=True)
        for r in sorted(shown, key=lambda r: r.outcome == "blocked"):
            tr.write_line(f"  {LABELS[r.outcome]} {r.id}: {redact_text(r.message)}"[:400])
            if r.outcome != "blocked" and r.remediation is not None:
                tr.write_line(f"          -> {redact_text(r.remediation.title)}")
                first = next((s for s in r.remediation.steps if s.command), None)
                if first is not None and first.command:
                    lines = first.command.splitlines()
                    tr.write_line(f"          $ {redact_text(lines[0])}" + (" ..." if len(lines) > 1 else ""))
                    if first.danger:
                        tr.write_line(f"          {DANGER_MARK} {redact_text(first.danger)}"[:400], yellow=True)
                verified = r.remediation.verification
                if verified is not None:
                    mark = VERIFICATION_MARKS[verified.status]
                    tr.write_line(f"          {mark} {redact_text(verified.line())}"[:400],
                                  green=verified.status == VERIFIED, red=verified.status == NOT_VERIFIED)
    passed = [r.id for r in results if r.outcome == "passed"]
    if passed:
        tr.write_line(f"PASSED  {', '.join(dict.fromkeys(passed))}", green=True)
    if any(r.outcome in ("failed", "error") for r in results):
        tr.write_line("Full remediation per failure: the FAILURES section above and the report files.")
