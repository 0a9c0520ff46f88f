"""Report files: JSON (the ``raycheck/v1`` contract), Markdown and JUnit XML, written atomically.

Every file is rendered in memory first, then written beside its final name and renamed into
place, so a reader (a CI artifact upload, a log shipper) never sees a half-written report and a
failed run leaves the previous reports intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from raycheck.redact import redact
from raycheck.results import PROBLEM_OUTCOMES, CheckResult, severity_rank, summarize

SCHEMA = "raycheck/v1"


def build_report(target: dict[str, Any], started: str, duration_s: float, results: list[CheckResult],
                 fail_on: str, exit_status: int) -> dict[str, Any]:
    report = {
        "schema": SCHEMA,
        "target": target,
        "started": started,
        "duration_s": round(duration_s, 3),
        "fail_on": fail_on,
        "exit_status": exit_status,
        "summary": summarize(results),
        "checks": [r.as_dict() for r in results],
    }
    return redact(report)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def _problems_by_severity(report: dict[str, Any]) -> list[dict[str, Any]]:
    problems = [c for c in report["checks"] if c["outcome"] in PROBLEM_OUTCOMES]
    return sorted(problems, key=lambda c: (-severity_rank(c["severity"]), c["outcome"] == "blocked", c["id"]))


def render_markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    t = report["target"]
    lines = [
        f"# raycheck report: {t.get('address', '')}",
        "",
        f"Started {report['started']}, {report['duration_s']} s; exit status {report['exit_status']} "
        f"(fail on {report['fail_on']}).",
        "",
        "| passed | failed | error | blocked | skipped |",
        "|---|---|---|---|---|",
        f"| {s['passed']} | {s['failed']} | {s['error']} | {s['blocked']} | {s['skipped']} |",
        "",
    ]
    problems = _problems_by_severity(report)
    if problems:
        lines += ["## What to fix", ""]
    for check in problems:
        rem = check["remediation"] or {}
        label = f"blocked by `{check['blocked_by']}`" if check["outcome"] == "blocked" else check["outcome"]
        lines += [f"### {check['severity']}: `{check['id']}` ({label})", "", check["message"], ""]
        if rem:
            lines += [f"**{rem['title']}**", ""]
            for n, step in enumerate(rem["steps"], 1):
                lines.append(f"{n}. {step['text']}")
                if step.get("command"):
                    lines += ["", "   ```sh", f"   {step['command']}", "   ```"]
            if rem.get("docs"):
                lines += ["", "Docs: " + ", ".join(f"<{url}>" for url in rem["docs"])]
            lines.append("")
    lines += ["## All checks", "", "| check | severity | outcome | observed |", "|---|---|---|---|"]
    for check in report["checks"]:
        message = check["message"].replace("|", "\\|")
        lines.append(f"| `{check['id']}` | {check['severity']} | {check['outcome']} | {message} |")
    return "\n".join(lines) + "\n"


def render_junit(report: dict[str, Any]) -> str:
    checks = report["checks"]
    s = report["summary"]
    suite = ET.Element("testsuite", name="raycheck", tests=str(len(checks)), failures=str(s["failed"]),
                       errors=str(s["error"]), skipped=str(s["skipped"] + s["blocked"]),
                       time=f"{report['duration_s']:.3f}", timestamp=report["started"])
    for check in checks:
        group = check["markers"][0] if check["markers"] else "raycheck"
        case = ET.SubElement(suite, "testcase", classname=f"raycheck.{group}", name=check["id"],
                             time=f"{check['duration_s']:.3f}")
        props = ET.SubElement(case, "properties")
        for name in ("severity", "outcome", "nodeid"):
            ET.SubElement(props, "property", name=name, value=str(check[name]))
        text = check["message"]
        if check["remediation"]:
            text += "\n\n" + _remediation_text(check["remediation"])
        if check["outcome"] == "failed":
            ET.SubElement(case, "failure", message=check["message"], type=check["severity"]).text = text
        elif check["outcome"] == "error":
            ET.SubElement(case, "error", message=check["message"], type=check["severity"]).text = text
        elif check["outcome"] in ("skipped", "blocked"):
            reason = f"blocked by {check['blocked_by']}: {check['message']}" if check["outcome"] == "blocked" \
                else check["message"]
            ET.SubElement(case, "skipped", message=reason)
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _remediation_text(rem: dict[str, Any]) -> str:
    lines = [rem["title"]]
    for n, step in enumerate(rem["steps"], 1):
        lines.append(f"  {n}. {step['text']}")
        if step.get("command"):
            lines.append(f"     $ {step['command']}")
    lines += [f"  docs: {url}" for url in rem.get("docs", [])]
    return "\n".join(lines)


REPORT_FILES = {
    "raycheck.json": render_json,
    "raycheck.md": render_markdown,
    "junit.xml": render_junit,
}


def write_reports(report_dir: Path, report: dict[str, Any]) -> list[Path]:
    """Render every report file, then move them all into ``report_dir`` at once."""
    rendered = {name: render(report) for name, render in REPORT_FILES.items()}
    report_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, content in rendered.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=report_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            staged.append((name, Path(tmp)))
        written = []
        for name, tmp in staged:
            final = report_dir / name
            os.replace(tmp, final)
            written.append(final)
        return written
    finally:
        for _, tmp in staged:
            if tmp.exists():
                tmp.unlink()
