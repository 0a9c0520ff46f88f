"""What every benchmark shares: how a run is timed, how the suite is started, how runs are summarised.

The suite always runs as a user runs it, ``python -m pytest`` in a fresh process from the
repository root, with an environment cleaned the way the project's own tests clean it (no
``RAYCHECK_*`` settings, no ``KUBECONFIG``, ``HOME`` in a scratch folder) so that nothing of
the developer's machine is read and runs are comparable.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
PYTHON = sys.executable


@dataclass(frozen=True)
class Context:
    """How much to measure, and where scratch files go.

    ``runs`` repeats every cheap measurement; ``slow_runs`` repeats the baselines that take half a
    minute or more per run (plain ``ray.init`` on a dead address, the ``thorough`` Hypothesis
    profile); 0 skips them."""

    runs: int
    slow_runs: int
    quick: bool
    work: Path


@dataclass(frozen=True)
class Run:
    wall_s: float
    status: int
    stdout: str
    stderr: str


# Dropped from every run's environment: settings that would point raycheck elsewhere, Hypothesis'
# CI switch, and PYTHONDONTWRITEBYTECODE (set on some machines): without a bytecode cache pytest
# rewrites and compiles every plugin package's modules (all of Hypothesis) at every start, which a
# developer's venv does not do. healthy.py measures that case on purpose.
DROPPED = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "CI", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def suite_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a suite run: this one minus anything that would point raycheck elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYCHECK_") and k not in DROPPED}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def timed(command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300,
          cwd: Path = ROOT) -> Run:
    """Run a command to completion; wall time measured around the whole process, start included."""
    start = time.monotonic()
    proc = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(time.monotonic() - start, proc.returncode, proc.stdout, proc.stderr)


def pytest_command(*args: str) -> list[str]:
    """``python -m pytest`` as the suite is run, without the cache plugin (runs must not see each other)."""
    return [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, spread and every value: the median is the number reported, the rest shows the noise."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values), "all": [round(v, digits) for v in values]}


def ratio(numerator: float, denominator: float, digits: int = 2) -> float:
    return round(numerator / denominator, digits)


def read_report(report_dir: Path) -> dict[str, Any]:
    """The suite's JSON report (``raycheck.json``) of a finished run."""
    return json.loads((report_dir / "raycheck.json").read_text())


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    """Check id to outcome; a check that runs several times (parametrised) keeps its worst outcome."""
    order = ("passed", "skipped", "blocked", "failed", "error")
    worst: dict[str, str] = {}
    for check in report["checks"]:
        previous = worst.get(check["id"], "passed")
        worst[check["id"]] = max(previous, check["outcome"], key=order.index)
    return worst
