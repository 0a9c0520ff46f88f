"""Bad input to the real suite: exit status 4, one line naming what is wrong, no traceback, no report."""

from __future__ import annotations

import pytest

GOOD = 'ray:\n  address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"\n'


@pytest.mark.parametrize("target, args, says", [
    ('ray:\n  address: "ray-gpu-head-svc.ray.svc.cluster.local:10001"\n', (),
     ":2: ray.address: 'ray-gpu-head-svc.ray.svc.cluster.local:10001' has no scheme"),
    (GOOD + "raycheck:\n  dashbord_alias: x\n", (), ":4: raycheck.dashbord_alias: unknown key"),
    (GOOD + "raycheck:\n  probe_timeout: -3\n", (), ":4: raycheck.probe_timeout: -3 must be more than 0"),
    ("ray: {address: [\n", (), "not valid YAML"),
    (GOOD, ("--fail-on=fatal",), "--fail-on: 'fatal' is not one of critical, warning, info"),
    (GOOD, ("--dns-server=kube-dns",), "--dns-server: 'kube-dns': the DNS server must be an IP address"),
    (GOOD, ("--probe-timeout=0",), "--probe-timeout: '0' must be more than 0"),
])
def test_bad_input_exits_4_with_one_line(run_suite, target, args, says):
    run = run_suite(target, "-m", "connectivity", *args)
    assert run.status == 4, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and says in errors[0], run.output
    assert "Traceback" not in run.output
    assert run.report is None and not run.report_dir.exists()


def test_missing_target_file(run_suite, tmp_path):
    run = run_suite(None, "-m", "connectivity", f"--target={tmp_path / 'nope.yaml'}")
    assert run.status == 4
    assert f"{tmp_path / 'nope.yaml'}: target file not found" in run.output


def test_no_target_at_all(run_suite):
    run = run_suite(None, "-m", "connectivity")
    assert run.status == 4
    assert "no target: pass --target FILE or set RAYCHECK_TARGET" in run.output


def test_target_from_the_environment(run_suite, tmp_path):
    bad = tmp_path / "env-target.yaml"
    bad.write_text("ray: {}\n")
    run = run_suite(None, "-m", "connectivity", env={"RAYCHECK_TARGET": str(bad)})
    assert run.status == 4 and "ray.address: missing" in run.output
