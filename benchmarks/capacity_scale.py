"""The GPU, OOM and capacity checks on the generated dump (2,000 nodes, 60,000 pods): time and peak RSS.

Runs ``pytest -m "(gpu or oom or capacity) and not network" --cluster-dump=DUMP`` ``ctx.runs``
times in fresh processes (the Hypothesis property tests left out: they do not read the dump;
``properties.py`` measures them) and reports the median wall time and the largest peak RSS of a
run. The RSS is the suite process's own, read by a small wrapper process with
``getrusage(RUSAGE_CHILDREN)``, so the benchmark's memory is not counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import PYTHON, Context, outcomes, pytest_command, read_report, suite_env, summary, timed

TARGET = 'ray: {address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"}\n'
SELECTION = "(gpu or oom or capacity) and not network"
RSS_PROBE = ("import json, resource, subprocess, sys, time; t = time.monotonic(); "
             "p = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(json.dumps([time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "p.returncode]))")


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit status of one suite run."""
    wall, rss_kib, status = json.loads(timed([PYTHON, "-c", RSS_PROBE, *command], env).stdout)
    return wall, rss_kib / 1024, status


def measure(ctx: Context, dump: Path) -> dict[str, Any]:
    """``ctx.runs`` runs on the dump: median wall time, the largest peak RSS, the outcomes."""
    folder = ctx.work / "capacity"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "target.yaml").write_text(TARGET)
    command = pytest_command("-m", SELECTION, "--ignore=suites/capacity/test_properties.py",
                             f"--target={folder / 'target.yaml'}", f"--cluster-dump={dump}",
                             f"--report-dir={folder / 'reports'}")
    runs = [run_once(command, suite_env(ctx.work / "home")) for _ in range(ctx.runs)]
    result: dict[str, Any] = {
        "wall_s": summary([r[0] for r in runs]), "peak_rss_mib": summary([r[1] for r in runs], 0),
        "exit_status": sorted({r[2] for r in runs}), "outcomes": outcomes(read_report(folder / "reports"))}
    print(f"  capacity: {result['wall_s']['median']} s, peak RSS {result['peak_rss_mib']['max']:.0f} MiB", flush=True)
    return result
