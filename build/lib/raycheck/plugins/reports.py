"""Writes the report files at the end of a run that had checks: JSON, Markdown, HTML, JUnit XML and
Prometheus; optionally pushes the metrics to a Pushgateway and prints the JSON as one line.

Reports are written also when checks failed or errored, and when the run was interrupted
(with what completed); never after a usage error, so bad input leaves ``--report-dir`` as it was.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from raycheck.plugins.runner import run_state
from raycheck.report import build_report, push_metrics, write_reports

WRITTEN = pytest.StashKey[list]()
REPORT = pytest.StashKey[dict]()
PUSH_ERROR = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = run_state(session.config)
    if state is None or not state.has_checks:
        return
    if session.exitstatus in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return
    if session.config.option.collectonly:  # nothing ran: the last real run's reports stay
        return
    report = build_report(
        target=state.target.summary(),
        started=state.started,
        duration_s=time.monotonic() - state.started_monotonic,
        results=list(state.results.values()),
        fail_on=state.settings.fail_on,
        exit_status=int(session.exitstatus),
        cluster_state=state.cluster.source.describe() if state.cluster is not None else None,
    )
    written = write_reports(state.settings.report_dir, report)
    session.config.stash[WRITTEN] = written
    session.config.stash[REPORT] = report
    if state.settings.pushgateway:
        prom = next(p for p in written if p.name == "raycheck.prom").read_text()
        error = push_metrics(state.settings.pushgateway, prom, state.target.cluster_name,
                             state.settings.probe_timeout, state.settings.push_job)
        if error:
            session.config.stash[PUSH_ERROR] = error


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written = config.stash.get(WRITTEN, None)
    if written:
        folder = written[0].parent
        terminalreporter.write_line(f"raycheck reports: {', '.join(str(folder / p.name) for p in written)}")
    error = config.stash.get(PUSH_ERROR, None)
    if error:
        terminalreporter.write_line(f"raycheck: WARNING: {error}", yellow=True)
    state = run_state(config)
    if state is not None and state.settings.json_line and REPORT in config.stash:
        terminalreporter.write_line(json.dumps(config.stash[REPORT], separators=(",", ":")))
