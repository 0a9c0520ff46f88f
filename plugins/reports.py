"""Writes the report files at the end of a run that had checks: JSON, Markdown, JUnit XML.

Reports are written also when checks failed or errored, and when the run was interrupted
(with what completed); never after a usage error, so bad input leaves ``--report-dir`` as it was.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from plugins.remediation import STATE
from raycheck.report import build_report, write_reports

WRITTEN = pytest.StashKey[list]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.has_checks or state.target is None:
        return
    if session.exitstatus in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return
    report = build_report(
        target=state.target.summary(),
        started=state.started,
        duration_s=time.monotonic() - state.started_monotonic,
        results=list(state.results.values()),
        fail_on=state.settings.fail_on,
        exit_status=int(session.exitstatus),
    )
    session.config.stash[WRITTEN] = write_reports(state.settings.report_dir, report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written = config.stash.get(WRITTEN, None)
    if written:
        folder = written[0].parent
        terminalreporter.write_line(f"raycheck reports: {', '.join(str(folder / p.name) for p in written)}")
