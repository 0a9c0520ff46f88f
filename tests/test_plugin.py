"""The remediation and reports plugins, driven with pytester on small synthetic checks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET = """\
ray:
  address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"
raycheck:
  client_namespace: swe-ai-fleet
  service_account: workspace-runner-sa
"""
HEADER = """\
import pytest
from raycheck.observation import Observation
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # the plugin comes from the installed package's entry point, as in a user's project
    for name in [n for n in __import__("os").environ if n.startswith("RAYCHECK_") or n == "CI"]:
        monkeypatch.delenv(name)
    pytester.makefile(".yaml", target=TARGET)
    return pytester


def run(project: pytest.Pytester, source: str, *args: str) -> tuple[pytest.RunResult, dict | None]:
    project.makepyfile(test_checks=HEADER + source)
    result = project.runpytest_subprocess("--target=target.yaml", "--report-dir=out", "-p", "no:cacheprovider", *args)
    report = project.path / "out" / "raycheck.json"
    return result, (json.loads(report.read_text()) if report.exists() else None)


def by_id(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"]}


def test_preconditions_run_first_and_block_dependents(project):
    result, report = run(project, '''
@pytest.mark.check("ray.client-handshake", severity="critical", requires=["port.client"])
def test_handshake(verdict):
    verdict(Observation(True, "should not run"))

@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    verdict(Observation(False, "connection refused by 10.244.0.10:10001 after 0.4 ms", cause="refused"))
''')
    assert result.ret == 1
    checks = by_id(report)
    assert [c["id"] for c in report["checks"]] == ["port.client", "ray.client-handshake"]
    assert checks["port.client"]["message"] == "connection refused by 10.244.0.10:10001 after 0.4 ms"
    assert checks["port.client"]["remediation"]["title"] == "Connection refused on 10001: nothing listens there"
    blocked = checks["ray.client-handshake"]
    assert (blocked["outcome"], blocked["blocked_by"]) == ("blocked", "port.client")
    assert blocked["remediation"]["title"] == "Not run: port.client failed first"
    assert report["summary"] == {"passed": 0, "failed": 1, "skipped": 0, "blocked": 1, "error": 0}


def test_failure_shows_remediation_instead_of_a_traceback(project):
    result, _ = run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    verdict(Observation(False, "no answer from 10.244.0.10:10001 within 3 s", cause="timeout"))
''')
    out = result.stdout.str()
    assert "[critical] port.client: no answer from 10.244.0.10:10001 within 3 s" in out
    assert "$ kubectl get networkpolicy -n ray -o wide && kubectl get networkpolicy -n swe-ai-fleet -o wide" in out
    assert "Traceback" not in out and "def test_port" not in out
    assert "CRITICAL" in out and "FAIL    port.client" in out


@pytest.mark.parametrize("severity, fail_on, status", [
    ("warning", "critical", 0), ("warning", "warning", 1), ("info", "warning", 0), ("info", "info", 1),
    ("critical", "info", 1),
])
def test_fail_on_sets_the_exit_status(project, severity, fail_on, status):
    result, report = run(project, f'''
@pytest.mark.check("port.dashboard", severity="{severity}")
def test_dashboard(verdict):
    verdict(Observation(False, "connection refused", cause="refused"))
''', f"--fail-on={fail_on}")
    assert result.ret == status
    assert report["exit_status"] == status and report["fail_on"] == fail_on


def test_fail_on_from_the_environment(project, monkeypatch):
    monkeypatch.setenv("RAYCHECK_FAIL_ON", "warning")
    result, _ = run(project, '''
@pytest.mark.check("port.dashboard", severity="warning")
def test_dashboard(verdict):
    verdict(Observation(False, "refused", cause="refused"))
''')
    assert result.ret == 1


def test_an_exception_is_an_error_with_a_remediation(project):
    result, report = run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    raise RuntimeError("probe exploded")
''')
    assert result.ret == 1
    check = by_id(report)["port.client"]
    assert check["outcome"] == "error"
    assert check["message"] == "call raised RuntimeError: probe exploded"
    assert "--tb=long" in check["remediation"]["steps"][0]["command"]
    assert len(check["remediation"]["steps"]) > 1  # the check's own steps follow


def test_plain_assert_message_becomes_the_observation(project):
    _, report = run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port():
    assert 1 + 1 == 3, "arithmetic is broken: 2 != 3"
''')
    assert by_id(report)["port.client"]["message"] == "arithmetic is broken: 2 != 3"


def test_junit_and_markdown_carry_the_remediation(project):
    run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    verdict(Observation(False, "connection refused", cause="refused"))

@pytest.mark.check("port.dashboard", severity="warning")
def test_dashboard(verdict):
    verdict(Observation(True, "answered HTTP 200"))
''')
    suite = ET.parse(project.path / "out" / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='port.client']/failure")
    assert failure.get("type") == "critical" and "kubectl get pods -n ray -l ray.io/cluster=ray-gpu" in failure.text
    assert suite.find("testcase[@name='port.dashboard']/properties/property[@name='severity']").get("value") == "warning"
    markdown = (project.path / "out" / "raycheck.md").read_text()
    assert "## What to fix" in markdown and "### critical: `port.client` (failed)" in markdown


def test_bad_check_marker_is_a_usage_error(project):
    result, report = run(project, '''
@pytest.mark.check("port.client", severity="fatal")
def test_port():
    pass
''')
    assert result.ret == 4
    assert "check severity 'fatal' is not one of critical, warning, info" in result.stderr.str()
    assert report is None


def test_checks_without_a_target_are_a_usage_error(project):
    project.makepyfile(test_checks=HEADER + '''
@pytest.mark.check("port.client", severity="critical")
def test_port():
    pass
''')
    result = project.runpytest_subprocess("--report-dir=out", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert "no target: pass --target FILE or set RAYCHECK_TARGET" in result.stderr.str()
    assert not (project.path / "out").exists()


def test_a_usage_error_leaves_earlier_reports_untouched(project):
    run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    verdict(Observation(True, "fine"))
''')
    before = {p.name: p.read_bytes() for p in (project.path / "out").iterdir()}
    result = project.runpytest_subprocess("--target=target.yaml", "--report-dir=out", "--fail-on=sometimes")
    assert result.ret == 4
    assert {p.name: p.read_bytes() for p in (project.path / "out").iterdir()} == before


def test_tests_without_checks_write_no_report(project):
    result, report = run(project, "def test_plain():\n    assert True\n")
    assert result.ret == 0 and report is None


def test_collect_only_writes_no_report(project):
    """``--co`` runs nothing: the last real run's reports must not be replaced by an empty one."""
    result, report = run(project, '''
@pytest.mark.check("port.client", severity="critical")
def test_port(verdict):
    verdict(Observation(True, "open"))
''', "--co")
    assert result.ret == 0 and "test_port" in result.stdout.str()
    assert report is None and not (project.path / "out").exists()
