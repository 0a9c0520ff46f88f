"""Bad input to the real suite, one table: exit status 4, one line naming the file, line and key (or
the option), no traceback, no report, and a report folder left exactly as it was."""

from __future__ import annotations

import pytest

GOOD = 'ray:\n  address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"\n'
RC = GOOD + "raycheck:\n"

BAD_INPUT = [
    # (target file, options, environment, what the one error line says)
    # -- the address
    ('ray:\n  address: "ray-gpu-head-svc.ray.svc.cluster.local:10001"\n', (), {},
     ":2: ray.address: 'ray-gpu-head-svc.ray.svc.cluster.local:10001' has no scheme"),
    ('ray:\n  address: "ray://head"\n', (), {}, ":2: ray.address: 'ray://head' has no port"),
    ('ray:\n  address: "ray://head:70000"\n', (), {}, ":2: ray.address: 'ray://head:70000': port 70000 is outside 1-65535"),
    ("ray: {}\n", (), {}, "ray.address: missing"),
    # -- keys: typos and wrong shapes
    (RC + "  dashbord_alias: x\n", (), {}, ":4: raycheck.dashbord_alias: unknown key"),
    (GOOD + "rayy: {}\n", (), {}, ":3: rayy: unknown key (known: ray, raycheck)"),
    ("ray: [1, 2]\n", (), {}, ":1: ray: expected a mapping, got a list"),
    ("ray: {address: [\n", (), {}, "not valid YAML"),
    # -- values: wrong types, negative, out of range
    (RC + "  ports: {dashboard: eighty}\n", (), {}, ":4: raycheck.ports.dashboard: expected a port number, got a string"),
    (RC + "  ports: {dashboard: 70000}\n", (), {}, ":4: raycheck.ports.dashboard: port 70000 is outside 1-65535"),
    (RC + '  expect: {gpus: "8"}\n', (), {}, ":4: raycheck.expect.gpus: expected a whole number, got a string"),
    (RC + "  expect: {gpus: -1}\n", (), {}, ":4: raycheck.expect.gpus: -1 is negative"),
    (RC + "  probe_timeout: -3\n", (), {}, ":4: raycheck.probe_timeout: -3 must be more than 0"),
    (RC + "  deep_timeout: -1\n", (), {}, ":4: raycheck.deep_timeout: -1 must be more than 0"),
    (RC + "  thresholds: {memory_headroom: 1.5}\n", (), {},
     ":4: raycheck.thresholds.memory_headroom: 1.5 is not a fraction in [0, 1)"),
    (RC + "  fail_on: warn\n", (), {}, ":4: raycheck.fail_on: 'warn' is not one of critical, warning, info"),
    # -- options and their environment variables
    (GOOD, ("--fail-on=fatal",), {}, "--fail-on: 'fatal' is not one of critical, warning, info"),
    (GOOD, (), {"RAYCHECK_FAIL_ON": "fatal"}, "RAYCHECK_FAIL_ON: 'fatal' is not one of critical, warning, info"),
    (GOOD, ("--dns-server=kube-dns",), {}, "--dns-server: 'kube-dns': the DNS server must be an IP address"),
    (GOOD, ("--probe-timeout=0",), {}, "--probe-timeout: '0' must be more than 0"),
    (GOOD, ("--handshake-timeout=-5",), {}, "--handshake-timeout: '-5' must be more than 0"),
    (GOOD, ("--budget=abc",), {}, "--budget: 'abc' is not a number of seconds"),
    (GOOD, ("--cluster-dump=/nonexistent",), {}, "--cluster-dump: '/nonexistent': no such file or folder"),
    (GOOD, ("--probe-timout=3",), {}, "unrecognized arguments: --probe-timout=3"),  # pytest's own line
]


@pytest.mark.parametrize("target, args, env, says", BAD_INPUT, ids=[row[3][:48] for row in BAD_INPUT])
def test_bad_input_exits_4_with_one_line(run_suite, target, args, env, says):
    run = run_suite(target, "-m", "connectivity", *args, env=env)
    assert run.status == 4, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:") or ": error: " in line]
    assert [line for line in errors if says in line], run.output
    if not says.startswith("unrecognized"):  # pytest prints its usage line before its own argparse errors
        assert len(errors) == 1, errors
    assert "Traceback" not in run.output
    assert run.report is None and not run.report_dir.exists()


def test_bad_input_leaves_an_existing_report_folder_as_it_was(run_suite, tmp_path):
    reports = tmp_path / "kept"
    reports.mkdir()
    (reports / "raycheck.json").write_text('{"from": "the last good run"}\n')
    run = run_suite(GOOD + "raycheck:\n  probe_timeout: -3\n", "-m", "connectivity", f"--report-dir={reports}")
    assert run.status == 4
    assert [p.name for p in reports.iterdir()] == ["raycheck.json"]
    assert (reports / "raycheck.json").read_text() == '{"from": "the last good run"}\n'


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
