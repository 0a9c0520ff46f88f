"""raycheck as a tool: the pytest11 entry point, the `raycheck` command from any directory, a wheel
that holds everything, an inert plugin elsewhere, and offline runs that never fail for raycheck's
own reasons."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.support import refused_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED_TARGET = {
    "ray": {"address": "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001", "namespace": "ray",
            "cluster_name": "ray-gpu"},
    "raycheck": {"client_namespace": "swe-ai-fleet", "service_account": "workspace-runner-sa",
                 "expect": {"gpus": 8, "workers": 8}},
}


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: no CI (Hypothesis' ci profile), no RAYCHECK_*, no kubeconfig of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAYCHECK_") and k not in ("CI", "KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(home)
    return env


def dead_target(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "t.yaml"
    target.write_text(yaml.safe_dump({"ray": {"address": f"ray://127.0.0.1:{refused_port()}", "namespace": "ray",
                                              "cluster_name": "ray-gpu"}}))
    return target


def report(folder: Path) -> dict:
    return json.loads((folder / "raycheck.json").read_text())


def test_pytest_takes_target_in_the_space_form_from_outside_the_checkout(tmp_path):
    target = dead_target(tmp_path / "elsewhere")
    out = subprocess.run([str(BIN / "pytest"), "-m", "connectivity", "--target", str(target),
                          "--report-dir", str(tmp_path / "r")], cwd=ROOT, env=user_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"rootdir: {ROOT}" in out.stdout and "configfile: pyproject.toml" in out.stdout
    checks = report(tmp_path / "r")["checks"]
    assert {c["id"]: c["outcome"] for c in checks}["port.client"] == "failed"
    assert all(c["nodeid"].startswith("suites/connectivity/") for c in checks)


def test_raycheck_command_runs_the_bundled_suites_from_any_directory(tmp_path):
    elsewhere = tmp_path / "project"
    target = dead_target(elsewhere)
    # what the current directory holds is not raycheck's configuration
    (elsewhere / "pytest.ini").write_text("[pytest]\naddopts = --this-option-does-not-exist\n")
    (elsewhere / "conftest.py").write_text("raise RuntimeError('not raycheck conftest')\n")
    out = subprocess.run([str(BIN / "raycheck"), "-m", "connectivity", "--target", "t.yaml", "--report-dir", "r"],
                         cwd=elsewhere, env=user_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    result = report(elsewhere / "r")
    port = next(c for c in result["checks"] if c["id"] == "port.client")
    assert port["outcome"] == "failed"
    reruns = {s["command"] for c in result["checks"] if c["remediation"] for s in c["remediation"]["steps"]
              if (s["command"] or "").startswith(("raycheck ", "pytest "))}
    assert reruns == {"raycheck --target=t.yaml -m connectivity"}
    bad = subprocess.run([str(BIN / "raycheck"), "--target", "missing.yaml"], cwd=elsewhere, env=user_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 4 and "missing.yaml: target file not found" in bad.stderr


def test_raycheck_help_shows_raycheck_options_first(tmp_path):
    out = subprocess.run([str(BIN / "raycheck"), "--help"], cwd=tmp_path, env=user_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.index("--cluster-dump DIR") < out.stdout.index("positional arguments")
    assert "raycheck capacity" in out.stdout and "exit status: 0 ok" in out.stdout


def test_python_m_raycheck_is_the_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "raycheck", "capacity", "--help"], cwd=tmp_path,
                         env=user_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "usage: raycheck capacity" in out.stdout


def test_plugin_is_inert_in_a_run_without_target_or_checks(pytester, monkeypatch):
    for name in [n for n in os.environ if n.startswith("RAYCHECK_") or n == "CI"]:
        monkeypatch.delenv(name)
    pytester.makepyfile(test_other="""
import pytest

@pytest.mark.deep
def test_marked_like_a_raycheck_check():
    assert True

def test_plain():
    assert True
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "raycheck" not in result.stdout.str().replace("raycheck-0", "")
    assert not (pytester.path / "reports").exists()


def test_suite_configuration_of_the_command_matches_the_checkouts():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "plugins" / "pytest.ini")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert ini["pytest"]["addopts"].split() == project["addopts"]
    assert ini["pytest"]["minversion"] == project["minversion"]


def test_offline_run_without_cluster_state_skips_every_check_20_times_in_a_row(tmp_path):
    """The user's shell, no cluster state: every check skipped with its reason, exit 0, every time
    (the capacity properties included: no deadline, derandomized)."""
    target = tmp_path / "t.yaml"
    target.write_text(yaml.safe_dump(SEED_TARGET))
    for n in range(20):
        out = subprocess.run([sys.executable, "-m", "pytest", "-m", "not network", f"--target={target}",
                              f"--report-dir={tmp_path / 'r'}", "-p", "no:cacheprovider", "-q"],
                             cwd=ROOT, env=user_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"run {n}: {out.stdout[-3000:]}{out.stderr[-2000:]}"
        checks = report(tmp_path / "r")["checks"]
        assert checks and {c["outcome"] for c in checks} == {"skipped"}, f"run {n}"
        assert all("no Kubernetes state" in c["message"] or "no manifests" in c["message"] for c in checks)


# ----------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source")  # a copy: no build/ left in the checkout, none reused from it
    for name in ("pyproject.toml", "README.md", "conftest.py", "raycheck", "plugins", "fixtures", "suites"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                             if (ROOT / name).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(out), str(source)], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    return next(out.glob("raycheck-*.whl"))


def test_wheel_installs_the_folders_inside_raycheck(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"plugins", "fixtures", "suites", "tests", "benchmarks"}
    for needed in ("raycheck/plugins/runner.py", "raycheck/plugins/pytest.ini", "raycheck/fixtures/target.py",
                   "raycheck/fixtures/scenarios/seed/pods.yaml", "raycheck/suites/oom/test_memory.py",
                   "raycheck/suites/capacity/conftest.py", "raycheck/remediation/catalog.yaml",
                   "raycheck/cluster/__init__.py", "raycheck/checks/oom.py", "raycheck/model/capacity.py"):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\nraycheck = raycheck.plugins" in text and "raycheck = raycheck.cli:main" in text


def test_installed_wheel_gives_the_checkouts_verdicts(wheel, tmp_path, run_suite, seed_state, write_dump):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for args in (["-r", str(ROOT / "requirements.lock")], ["--no-deps", str(wheel)]):
        done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    dump = write_dump(seed_state)
    target = tmp_path / "t.yaml"
    target.write_text(yaml.safe_dump(SEED_TARGET))
    installed = subprocess.run([str(env_dir / "bin" / "raycheck"), "-m", "not network", "--target", str(target),
                                "--cluster-dump", str(dump), "--report-dir", "r"], cwd=tmp_path,
                               env=user_env(tmp_path), capture_output=True, text=True, timeout=300)
    checkout = run_suite(SEED_TARGET, "-m", "not network", f"--cluster-dump={dump}")
    assert installed.returncode == checkout.status, installed.stdout[-3000:] + installed.stderr[-2000:]

    def verdicts(result: dict) -> list[tuple[str, str, str]]:
        return sorted((c["nodeid"], c["outcome"], c["message"]) for c in result["checks"])

    assert verdicts(report(tmp_path / "r")) == verdicts(checkout.report)
    assert any(c["outcome"] == "failed" for c in checkout.report["checks"])  # the seed has findings
