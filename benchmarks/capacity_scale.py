"""The GPU, OOM and capacity checks on a generated 2,000-node, 60,000-pod dump: wall time and peak RSS.

``.venv/bin/python benchmarks/capacity_scale.py [--runs 3]``: generates the dump once (into
benchmarks/out/), then runs ``pytest -m "(gpu or oom or capacity) and not network"`` on it N times
in fresh processes (the Hypothesis property tests left out: they do not read the dump) and reports the median wall time and the largest peak RSS of a run.
Writes ``benchmarks/out/capacity_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
TARGET = 'ray: {address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"}\n'


def run_once(dump: Path, target: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB, exit status of one suite run (RSS read by a wrapper's getrusage)."""
    probe = ("import resource, subprocess, sys, time, json; t = time.monotonic(); "
             "p = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(json.dumps([time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode]))")
    command = [sys.executable, "-c", probe, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "-m", "(gpu or oom or capacity) and not network", "--ignore=suites/capacity/test_properties.py",
               f"--target={target}", f"--cluster-dump={dump}",
               f"--report-dir={OUT / 'scale-report'}"]
    wall, rss_kib, status = json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True).stdout)
    return wall, rss_kib / 1024, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dump = OUT / "dump-2000x60000"
    if not (dump / "pods.json").exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_dump.py"), str(dump)], check=True)
    target = OUT / "scale-target.yaml"
    target.write_text(TARGET)
    results = [run_once(dump, target) for _ in range(args.runs)]
    report = json.loads((OUT / "scale-report" / "raycheck.json").read_text())
    summary = {
        "dump": {"nodes": 2000, "pods": 60000, "ray_pods": 200,
                 "bytes": sum(f.stat().st_size for f in dump.iterdir())},
        "runs": args.runs, "cpu_count": os.cpu_count(),
        "wall_s_median": round(statistics.median(r[0] for r in results), 2),
        "wall_s_all": [round(r[0], 2) for r in results],
        "peak_rss_mib_max": round(max(r[1] for r in results)),
        "outcomes": {c["id"]: c["outcome"] for c in report["checks"]},
    }
    (OUT / "capacity_scale.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
