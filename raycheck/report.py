"""Report files: JSON (the ``raycheck/v1`` contract), Markdown and JUnit XML, written atomically.

Every file is rendered in memory first, then written beside its final name and renamed into
place, so a reader (a CI artifact upload, a log shipper) never sees a half-written report and a
failed run leaves the previous reports intact.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from raycheck.redact import redact
from raycheck.remediation import DANGER_MARK
from raycheck.results import PROBLEM_OUTCOMES, CheckResult, severity_rank, summarize

SCHEMA = "raycheck/v1"


def build_report(target: dict[str, Any], started: str, duration_s: float, results: list[CheckResult],
                 fail_on: str, exit_status: int, cluster_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report; ``cluster_state`` says where the cluster state came from (None: not read)."""
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
    if cluster_state is not None:
        report["cluster_state"] = cluster_state
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
                if step.get("danger"):
                    lines += ["", f"   {DANGER_MARK} {step['danger']}"]
            if rem.get("verification"):
                lines += ["", f"**Verification:** {verification_line(rem['verification'])}"]
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
        verified = (check["remediation"] or {}).get("verification")
        if verified:
            ET.SubElement(props, "property", name="verification", value=verification_line(verified))
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
        if step.get("danger"):
            lines.append(f"     {DANGER_MARK} {step['danger']}")
    lines += [f"  docs: {url}" for url in rem.get("docs", [])]
    if rem.get("verification"):
        lines.append(f"  verification: {verification_line(rem['verification'])}")
    return "\n".join(lines)


def verification_line(verification: dict[str, Any]) -> str:
    """``verified: after step 2 the check passes: ...``: a remediation's verification in one line."""
    return f"{verification['status']}: {verification['message']}"


# ----------------------------------------------------------------------------- Prometheus


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _case(nodeid: str) -> str:
    """The parametrization of a check (``ray.io/rayclusters/create``), or '' for a single check."""
    return nodeid[nodeid.index("[") + 1:-1] if nodeid.endswith("]") and "[" in nodeid else ""


def render_prometheus(report: dict[str, Any], finished_unix: float) -> str:
    """Text exposition: one gauge per check (1 passed, 0 failed/error/blocked; skipped are absent)."""
    lines = [
        "# HELP raycheck_check_passed 1 when the check passed, 0 when it failed, errored or was blocked.",
        "# TYPE raycheck_check_passed gauge",
    ]
    timed = []
    for check in report["checks"]:
        labels = f'id="{_label(check["id"])}",case="{_label(_case(check["nodeid"]))}",' \
                 f'severity="{_label(check["severity"])}"'
        if check["outcome"] != "skipped":
            passed = 1 if check["outcome"] == "passed" else 0
            lines.append(f'raycheck_check_passed{{{labels},outcome="{check["outcome"]}"}} {passed}')
        timed.append(f"raycheck_check_duration_seconds{{{labels}}} {check['duration_s']}")
    lines += ["# HELP raycheck_check_duration_seconds How long each check took.",
              "# TYPE raycheck_check_duration_seconds gauge", *timed,
              "# HELP raycheck_checks Checks of the last run by outcome.", "# TYPE raycheck_checks gauge"]
    lines += [f'raycheck_checks{{outcome="{o}"}} {n}' for o, n in report["summary"].items()]
    lines += ["# HELP raycheck_run_duration_seconds How long the last run took.",
              "# TYPE raycheck_run_duration_seconds gauge", f"raycheck_run_duration_seconds {report['duration_s']}",
              "# HELP raycheck_run_exit_status Exit status of the last run (0 ok, 1 a check at or above --fail-on failed).",
              "# TYPE raycheck_run_exit_status gauge", f"raycheck_run_exit_status {report['exit_status']}",
              "# HELP raycheck_last_run_timestamp_seconds When the last run finished (Unix time).",
              "# TYPE raycheck_last_run_timestamp_seconds gauge",
              f"raycheck_last_run_timestamp_seconds {finished_unix:.3f}"]
    return "\n".join(lines) + "\n"


def push_metrics(url: str, exposition: str, cluster: str, timeout: float, job: str = "raycheck") -> str | None:
    """POST the exposition to a Pushgateway (job ``job``, instance = cluster); None or the error."""
    target = f"{url.rstrip('/')}/metrics/job/{job}/instance/{cluster}"
    request = urllib.request.Request(target, data=exposition.encode(), method="POST",
                                     headers={"Content-Type": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if response.status >= 300:
                return f"Pushgateway {target} answered HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"cannot push to Pushgateway {target}: {getattr(exc, 'reason', exc)}"
    return None


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1d1d1f;background:#fafafa}h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
.meta{color:#555;margin-bottom:1rem}.counts span{display:inline-block;padding:.3rem .7rem;border-radius:1rem;
margin-right:.4rem;font-weight:600;background:#eee}.counts .failed,.counts .error{background:#fde2e1;color:#a40e0b}
.counts .passed{background:#e3f5e1;color:#1e6b1a}.counts .blocked{background:#fff1d6;color:#7a5300}
.check{background:#fff;border:1px solid #ddd;border-left:6px solid #999;border-radius:6px;padding:.8rem 1rem;
margin:.8rem 0}.check.critical{border-left-color:#c9211e}.check.warning{border-left-color:#e69b00}
.check.info{border-left-color:#3b7dd8}.id{font-family:ui-monospace,Menlo,monospace;font-weight:700}
.sev{font-size:.8rem;text-transform:uppercase;font-weight:700;margin-left:.5rem;color:#555}
.obs{margin:.4rem 0}.rem-title{font-weight:600;margin-top:.6rem}ol{margin:.3rem 0 .3rem 1.2rem;padding:0}
pre{background:#1e1e1e;color:#f0f0f0;padding:.5rem .7rem;border-radius:4px;overflow-x:auto;white-space:pre-wrap;
word-break:break-all;font-size:.85rem}details{margin:.4rem 0 0 .5rem;color:#444}table{border-collapse:collapse;
width:100%;background:#fff}td,th{border-bottom:1px solid #e5e5e5;padding:.35rem .5rem;text-align:left;
vertical-align:top;font-size:.9rem}th{background:#f0f0f0}.o-passed{color:#1e6b1a}.o-failed,.o-error{color:#a40e0b}
.o-blocked{color:#7a5300}.o-skipped{color:#777}.danger{color:#8a4b00;margin:.2rem 0 .4rem}
.verify{margin:.4rem 0;padding:.3rem .6rem;border-radius:4px;background:#f0f0f0}.v-verified{background:#e3f5e1}
.v-not-verified{background:#fde2e1}
"""


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page (no fetches): what to fix by severity, blocked checks under their cause."""
    e = html.escape
    s, t = report["summary"], report["target"]
    counts = "".join(f'<span class="{o}">{n} {o}</span>' for o, n in s.items() if n)
    problems = [c for c in _problems_by_severity(report) if c["outcome"] != "blocked"]
    blocked: dict[str, list[dict[str, Any]]] = {}
    for c in report["checks"]:
        if c["outcome"] == "blocked":
            blocked.setdefault(c["blocked_by"], []).append(c)
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>raycheck: {e(t.get('address', ''))}</title>",
             f"<style>{_CSS}</style><body><h1>raycheck: {e(t.get('cluster_name', ''))} in "
             f"{e(t.get('ray_namespace', ''))}</h1>",
             f'<div class=meta>{e(t.get("address", ""))} &middot; started {e(report["started"])} &middot; '
             f'{report["duration_s"]} s &middot; exit status {report["exit_status"]} (fail on {e(report["fail_on"])})'
             f"</div><div class=counts>{counts}</div>"]
    if problems:
        parts.append("<h2>What to fix</h2>")
    for c in problems:
        rem = c["remediation"] or {}
        steps = "".join(f"<li>{e(st['text'])}" + (f"<pre>{e(st['command'])}</pre>" if st.get("command") else "")
                        + (f"<div class=danger>{DANGER_MARK} {e(st['danger'])}</div>" if st.get("danger") else "")
                        + "</li>" for st in rem.get("steps", []))
        verified = rem.get("verification")
        verdict = (f'<div class="verify v-{e(verified["status"].replace(" ", "-"))}">'
                   f"{e(verification_line(verified))}</div>") if verified else ""
        docs = " ".join(f'<a href="{e(u)}">{e(u)}</a>' for u in rem.get("docs", []))
        under = blocked.get(c["id"], [])
        folded = (f"<details><summary>{len(under)} check{'s' if len(under) > 1 else ''} blocked by this one</summary>"
                  + "".join(f"<div><span class=id>{e(b['id'])}</span> {e(b['message'])}</div>" for b in under)
                  + "</details>") if under else ""
        parts.append(f'<div class="check {e(c["severity"])}"><span class=id>{e(c["id"])}</span>'
                     f'<span class=sev>{e(c["severity"])} &middot; {e(c["outcome"])}</span>'
                     f'<div class=obs>{e(c["message"])}</div><div class=rem-title>{e(rem.get("title", ""))}</div>'
                     f"<ol>{steps}</ol>{verdict}<div>{docs}</div>{folded}</div>")
    rows = "".join(f'<tr><td class=id>{e(c["id"])}</td><td>{e(c["severity"])}</td>'
                   f'<td class="o-{e(c["outcome"])}">{e(c["outcome"])}</td><td>{e(c["message"])}</td></tr>'
                   for c in report["checks"])
    parts.append(f"<h2>All checks</h2><table><tr><th>check<th>severity<th>outcome<th>observed</tr>{rows}</table>")
    return "".join(parts) + "</body></html>\n"


# ----------------------------------------------------------------------------- writing


REPORT_FILES = {
    "raycheck.json": render_json,
    "raycheck.md": render_markdown,
    "raycheck.html": render_html,
    "junit.xml": render_junit,
    "raycheck.prom": lambda report: render_prometheus(report, time.time()),
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
