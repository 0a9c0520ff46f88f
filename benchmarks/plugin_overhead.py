"""What raycheck's pytest plugins cost: the same trivial checks with and without them.

Two throwaway projects hold the same generated test files: 30 files of 10 tests (suite-sized
files: pytest parses a failing test's whole file to show its source, so one 300-test file would
make every failure, with or without plugins, cost tens of milliseconds), each marked
``@pytest.mark.check(ID, severity="info")`` with real catalog ids used in turn (the plugin
renders a failed check's remediation from the catalog, so failures take the real path); half
pass, a third fail, the rest skip. One project runs with raycheck's plugin (the ``pytest11``
entry point, as every run in the environment loads it); the other blocks it (``-p no:raycheck``)
and only registers the marker. Both runs get the same command line and environment (the target
and report folder as ``RAYCHECK_*`` variables), so the difference is the plugin: its imports, the catalog,
the hooks around every test, the summary and the five report files. Runs alternate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness import PYTHON, ROOT, Context, pytest_command, ratio, suite_env, summary, timed

sys.path.insert(0, str(ROOT))

from raycheck.remediation import load_catalog  # noqa: E402

FILES = 30
PER_FILE = 10
TESTS = FILES * PER_FILE
INI = """[pytest]
markers =
    check(id, severity, requires): a raycheck check
"""
TARGET = "ray:\n  address: ray://ray-gpu-head-svc.ray.svc.cluster.local:10001\n"
# What the plugins' costs are made of, measured one by one in a fresh process: the imports, and
# the calls the profile of a run shows on top (per call, best of three).
COMPONENTS = """
import json, time, timeit
import pytest  # loaded without the plugins too: not their cost
start = time.perf_counter()
import raycheck.plugins.runner, raycheck.plugins.remediation, raycheck.plugins.summary, raycheck.plugins.reports
imports = time.perf_counter() - start
from raycheck.versions import local_ray_version
from raycheck.redact import redact_text
from raycheck.remediation import CATALOG_PATH, load_catalog
def per_call_ms(call, number):
    return min(timeit.repeat(call, number=number, repeat=3)) / number * 1e3
parse = getattr(load_catalog, "__wrapped__", load_catalog)
print(json.dumps({"plugin_imports_ms": imports * 1e3,
                  "local_ray_version_ms": per_call_ms(local_ray_version, 20),
                  "redact_text_ms": per_call_ms(lambda: redact_text("a one-line check message"), 200),
                  "catalog_load_ms": per_call_ms(lambda: parse(CATALOG_PATH), 3)}))
"""


def trivial_checks(first: int, count: int, check_ids: list[str]) -> str:
    """Tests ``first`` to ``first + count - 1``: even ones pass, ``i % 6`` in (1, 3) fail, ``i % 6 == 5`` skip."""
    lines = ["import pytest\n"]
    for i in range(first, first + count):
        body = {0: "pass", 1: f"assert {i} == -1, 'trivial failure {i}'", 2: "pass", 3: f"assert not {i}",
                4: "pass", 5: "pytest.skip('trivial skip')"}[i % 6]
        lines.append(f"\n@pytest.mark.check({check_ids[i % len(check_ids)]!r}, severity='info')\n"
                     f"def test_{i:04d}():\n    {body}\n")
    return "".join(lines)


def _project(folder: Path, addopts: str, check_ids: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text(INI + (f"addopts = {addopts}\n" if addopts else ""))
    for n in range(FILES):
        (folder / f"test_trivial_{n:02d}.py").write_text(trivial_checks(n * PER_FILE, PER_FILE, check_ids))
    return folder


def components(env: dict[str, str]) -> dict[str, float]:
    """Milliseconds of each part of the plugins' cost (see COMPONENTS), from a fresh process."""
    run = timed([PYTHON, "-c", COMPONENTS], env)
    if run.status != 0:
        raise RuntimeError(f"the component probe failed: {run.stderr[-2000:]}")
    return {k: round(v, 3) for k, v in json.loads(run.stdout).items()}


def measure(ctx: Context) -> dict[str, Any]:
    """Alternating runs of both projects: medians, the overhead, pytest's last summary line of each."""
    base = ctx.work / "plugins"
    check_ids = sorted(load_catalog().check_ids)
    projects = {"with": _project(base / "with", "", check_ids),
                "without": _project(base / "without", "-p no:raycheck", check_ids)}
    (base / "target.yaml").write_text(TARGET)
    env = suite_env(ctx.work / "home", RAYCHECK_TARGET=str(base / "target.yaml"),
                    RAYCHECK_REPORT_DIR=str(base / "reports"))
    walls: dict[str, list[float]] = {"with": [], "without": []}
    summaries: dict[str, str] = {}
    runs = max(ctx.runs, 10)  # a run takes under a second, and the difference is a tenth of that: ten at least
    for round_ in range(runs + 1):
        for kind in (("with", "without") if round_ % 2 == 0 else ("without", "with")):
            run = timed(pytest_command(), env, cwd=projects[kind])
            if round_ > 0:  # round 0 warms the page cache for both
                walls[kind].append(run.wall_s)
            summaries[kind] = (run.stdout.strip().splitlines() or ["no output"])[-1]
    if not (base / "reports" / "raycheck.json").exists():
        raise RuntimeError(f"the plugins wrote no report: {summaries['with']}")
    with_s, without_s = summary(walls["with"]), summary(walls["without"])
    result = {"tests": TESTS, "files": FILES, "with_plugins_s": with_s, "without_plugins_s": without_s,
              "ratio": ratio(with_s["median"], without_s["median"], 3),
              "overhead_pct": round((with_s["median"] / without_s["median"] - 1) * 100, 1),
              "per_test_ms": round((with_s["median"] - without_s["median"]) / TESTS * 1000, 2),
              "pytest_summary": summaries, "components_ms": components(env)}
    print(f"  plugins: {with_s['median']} s with, {without_s['median']} s without "
          f"({result['overhead_pct']:+} %)", flush=True)
    return result
