"""Run raycheck's benchmarks and write ``benchmarks/results.json`` and ``docs/BENCHMARKS.md``.

``make bench`` (``.venv/bin/python benchmarks/run.py``); ``make bench BENCH_ARGS="--runs 3"``.

* ``--runs N`` (default 5): runs of every measurement that takes seconds; medians are reported
  (five, so that one slow Ray Client handshake does not move a median).
* ``--slow-runs N`` (default 1): runs of the baselines that take half a minute or more each
  (plain ``ray.init`` on a dead address, the ``thorough`` Hypothesis profile).
* ``--quick``: a smoke pass of every code path: one run, no slow baselines, a 200-node dump.
* ``--only NAME ...``: some measurements only.
* ``--render``: write the document again from the results, measuring nothing (with ``--quick`` or
  ``--only``: the ones in ``benchmarks/out/``).
* ``--merge``: with ``--only``, put these measurements into the published ``benchmarks/results.json``
  (the others stay as they were measured, with their machine and date) and write the document again.

Only a complete run (neither ``--quick`` nor ``--only``) writes ``benchmarks/results.json`` and
``docs/BENCHMARKS.md``; the others write ``benchmarks/out/results.json`` and
``benchmarks/out/BENCHMARKS.md``, so a smoke pass never replaces the published numbers.
Nothing here asserts a time: a missed goal is reported, never raised.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import capacity_scale
import dead_target
import gen_dump
import healthy
import live_scale
import plugin_overhead
import properties
import verify_scale
from harness import OUT, ROOT, Context
from render import render

RESULTS = ROOT / "benchmarks" / "results.json"
DOCUMENT = ROOT / "docs" / "BENCHMARKS.md"
FULL_DUMP = (2000, 60000, 200)
QUICK_DUMP = (200, 6000, 40)
NAMES = ("dead_target", "healthy", "plugin_overhead", "live_scale", "capacity_scale", "verify_scale", "properties")


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    mem_kib = next(int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2 ** 20, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in ("ray", "pytest", "hypothesis", "kubernetes")},
        "commit": commit.stdout.strip() or "unknown",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def measurements(dump: Path) -> dict[str, Callable[[Context], dict[str, Any]]]:
    """Every measurement by name (``NAMES``), in the order they run and appear in the document."""
    return {
        "dead_target": dead_target.measure,
        "healthy": healthy.measure,
        "plugin_overhead": plugin_overhead.measure,
        "live_scale": lambda ctx: live_scale.measure(ctx, dump),
        "capacity_scale": lambda ctx: capacity_scale.measure(ctx, dump),
        "verify_scale": lambda ctx: verify_scale.measure(ctx, dump),
        "properties": properties.measure,
    }


def run_all(ctx: Context, only: list[str] | None) -> dict[str, Any]:
    """Run the measurements; each records its own wall time and the load average around it.

    The load average shows whether something else (a test run, say) shared the machine."""
    nodes, pods, ray_pods = QUICK_DUMP if ctx.quick else FULL_DUMP
    dump = gen_dump.cached(nodes, pods, ray_pods)
    results: dict[str, Any] = {
        "machine": machine(), "runs": ctx.runs, "slow_runs": ctx.slow_runs, "quick": ctx.quick,
        "dump": {"nodes": nodes, "gpu_nodes": len(range(0, nodes, gen_dump.GPU_NODES_EVERY)), "pods": pods,
                 "ray_pods": ray_pods, "bytes": sum(f.stat().st_size for f in dump.iterdir())},
        "measurements": {}}
    started = time.monotonic()
    for name, measure in measurements(dump).items():
        if only and name not in only:
            continue
        print(f"{name} ...", flush=True)
        load_before = os.getloadavg()[0]
        begun = time.monotonic()
        result = measure(ctx)
        results["measurements"][name] = {**result, "elapsed_s": round(time.monotonic() - begun, 1),
                                         "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    results["total_s"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement that takes seconds (median)")
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of the half-minute baselines")
    parser.add_argument("--quick", action="store_true", help="smoke pass: 1 run, no slow baselines, small dump")
    parser.add_argument("--only", nargs="+", choices=NAMES, help="run only these")
    parser.add_argument("--render", action="store_true", help="render docs/BENCHMARKS.md from results.json only")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: merge these measurements into the published results and document")
    args = parser.parse_args(argv)
    if args.merge and not args.only or args.merge and args.quick:
        parser.error("--merge needs --only and a full-size run (no --quick)")
    published = not (args.quick or args.only) or args.merge
    results_path, document_path = (RESULTS, DOCUMENT) if published else (OUT / "results.json", OUT / "BENCHMARKS.md")
    if args.render:
        document_path.write_text(render(json.loads(results_path.read_text())))
        print(f"wrote {document_path.relative_to(ROOT)}")
        return 0
    if args.runs < 1 or args.slow_runs < 0:
        parser.error("--runs must be at least 1 and --slow-runs at least 0")
    work = Path(tempfile.mkdtemp(prefix="raycheck-bench-"))
    ctx = Context(runs=1 if args.quick else args.runs, slow_runs=0 if args.quick else args.slow_runs,
                  quick=args.quick, work=work)
    try:
        results = run_all(ctx, args.only)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.merge:
        merged = json.loads(RESULTS.read_text())
        for name, measured in results["measurements"].items():
            merged["measurements"][name] = {**measured, "machine": results["machine"]}
        results = merged
    results_path.parent.mkdir(parents=True, exist_ok=True)
    document_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    document_path.write_text(render(results))
    print(f"wrote {results_path.relative_to(ROOT)} and {document_path.relative_to(ROOT)} "
          f"in {results['total_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
