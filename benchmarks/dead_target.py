"""Time to a diagnosis on a dead Ray address: raycheck vs plain ``ray.init``.

Run: ``.venv/bin/python benchmarks/dead_target.py [--runs N] [--skip-plain]``.
Addresses: a refused port, a port that accepts and never answers, and an unresolvable name
(loopback DNS answering NXDOMAIN). For each: the median wall time of
``pytest -m connectivity --target t.yaml`` over N runs, the time of ``python -c pass`` (the
interpreter start it includes), and one plain ``ray.init("ray://...")`` for comparison.
Writes ``benchmarks/out/dead_target.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raycheck.dnszone import DnsZoneServer, Zone  # noqa: E402
from tests.support import SilentPort, refused_port  # noqa: E402


def timed(command: list[str], timeout: float = 120) -> tuple[float, int]:
    start = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=timeout)
    return time.monotonic() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-plain", action="store_true", help="do not run the ~30 s plain ray.init baselines")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raycheck-bench-"))
    silent = SilentPort()
    dns = DnsZoneServer(Zone()).start()  # an empty zone: every name is NXDOMAIN
    cases = {
        "refused": (f"ray://127.0.0.1:{refused_port()}", []),
        "silent": (f"ray://127.0.0.1:{silent.port}", []),
        "unresolvable": ("ray://ray-gpu-head-svc.ray.svc.cluster.local:10001", [f"--dns-server={dns.address}"]),
    }
    interpreter = statistics.median(timed([sys.executable, "-c", "pass"])[0] for _ in range(args.runs))
    results = {"interpreter_start_s": round(interpreter, 3), "runs": args.runs, "cases": {}}
    try:
        for name, (address, extra) in cases.items():
            target = work / f"{name}.yaml"
            target.write_text(yaml.safe_dump({"ray": {"address": address, "namespace": "ray",
                                                      "cluster_name": "ray-gpu"}}))
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "connectivity",
                       f"--target={target}", f"--report-dir={work / name}", *extra]
            times, statuses = zip(*(timed(command) for _ in range(args.runs)))
            case = {"raycheck_median_s": round(statistics.median(times), 3), "raycheck_max_s": round(max(times), 3),
                    "exit_status": sorted(set(statuses)),
                    "outcomes": {c["id"]: c["outcome"] for c in
                                 json.loads((work / name / "raycheck.json").read_text())["checks"]}}
            if not args.skip_plain:
                plain_address = address if name != "unresolvable" else address
                plain, _ = timed([sys.executable, "-c", f"import ray; ray.init({plain_address!r})"], timeout=300)
                case["plain_ray_init_s"] = round(plain, 3)
                case["speedup"] = round(plain / case["raycheck_median_s"], 1)
            results["cases"][name] = case
            print(name, json.dumps(case), flush=True)
    finally:
        silent.close()
        dns.stop()
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dead_target.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
