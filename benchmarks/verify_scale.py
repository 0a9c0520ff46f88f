"""What verifying remediations costs on the generated dump (2,000 nodes, 60,000 pods): the offline
checks with verification on (the default for a dump) against the same run with it off.

The generated dump is healthy, and verification only runs for failed checks, so this measures a
broken copy of it (``broken``): the Ray workers' memory limits raised to 64Gi (four on a 256Gi node
overcommit it: ``oom.limits-overcommit``), their ``/dev/shm`` taken away (``oom.shm``), the worker
group allowed to grow to 1,000, more than the GPU nodes hold (``capacity.autoscale-range``). Each
verification re-derives what KubeRay makes of the patched RayCluster (its 199 workers) and decides
the check again on the 60,000 pods.

``pytest -m "not network" --cluster-dump=BROKEN`` runs ``ctx.runs`` times each way, in fresh
processes, alternating; the report is the median wall time and the largest peak RSS of each, and
the overhead of verification (goal: under 20%, still under 10 s and 1 GiB).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capacity_scale import TARGET, run_once
from harness import Context, outcomes, pytest_command, read_report, suite_env, summary

SELECTION = "not network"
GOALS = {"overhead": 0.20, "wall_s": 10.0, "peak_rss_mib": 1024.0}


def broken(dump: Path) -> Path:
    """The generated dump with the Ray workers overcommitted, without /dev/shm, allowed to 1,000 (cached)."""
    out = dump.parent / f"{dump.name}-broken"
    stamp = out / "pods.json"
    newest = max(Path(__file__).stat().st_mtime, (dump / "pods.json").stat().st_mtime)
    if stamp.exists() and stamp.stat().st_mtime >= newest:
        return out
    out.mkdir(parents=True, exist_ok=True)
    pods = json.loads((dump / "pods.json").read_text())
    for pod in pods["items"]:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("ray.io/cluster") == "ray-gpu" and labels.get("ray.io/node-type") == "worker":
            _break(pod["spec"])
    ray = json.loads((dump / "ray.json").read_text())
    cluster = next(o for o in ray["items"] if o["kind"] == "RayCluster")
    group = cluster["spec"]["workerGroupSpecs"][0]
    group["maxReplicas"] = 1000
    _break(group["template"]["spec"])
    (out / "ray.json").write_text(json.dumps(ray))
    (out / "nodes.json").write_text((dump / "nodes.json").read_text())
    stamp.write_text(json.dumps(pods))
    return out


def _break(spec: dict[str, Any]) -> None:
    container = spec["containers"][0]
    container["resources"]["limits"]["memory"] = "64Gi"
    container.pop("volumeMounts", None)
    spec.pop("volumes", None)


def measure(ctx: Context, dump: Path) -> dict[str, Any]:
    """Verification on and off, ``ctx.runs`` runs each, alternating."""
    folder = ctx.work / "verify"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "target.yaml").write_text(TARGET)
    data = broken(dump)
    runs: dict[str, list[tuple[float, float, int]]] = {"off": [], "on": []}
    for _ in range(ctx.runs):
        for mode in ("off", "on"):
            report_dir = folder / f"reports-{mode}"
            command = pytest_command("-m", SELECTION, "--ignore=suites/capacity/test_properties.py",
                                     f"--target={folder / 'target.yaml'}", f"--cluster-dump={data}",
                                     f"--report-dir={report_dir}")
            env = suite_env(ctx.work / "home", RAYCHECK_VERIFY_REMEDIATIONS="1" if mode == "on" else "0")
            runs[mode].append(run_once(command, env))
    report = read_report(folder / "reports-on")
    verifications = {c["id"]: c["remediation"]["verification"]["status"] for c in report["checks"]
                     if c["outcome"] == "failed" and c["remediation"] and c["remediation"].get("verification")}
    result: dict[str, Any] = {mode: {"wall_s": summary([r[0] for r in rs]), "peak_rss_mib": summary([r[1] for r in rs], 0),
                                     "exit_status": sorted({r[2] for r in rs})} for mode, rs in runs.items()}
    result["overhead"] = round(result["on"]["wall_s"]["median"] / result["off"]["wall_s"]["median"] - 1, 3)
    result["overhead_fastest"] = round(result["on"]["wall_s"]["min"] / result["off"]["wall_s"]["min"] - 1, 3)
    result["outcomes"] = outcomes(report)
    result["verifications"] = verifications
    result["goals"] = GOALS
    print(f"  verify: off {result['off']['wall_s']['median']} s, on {result['on']['wall_s']['median']} s "
          f"({result['overhead']:+.0%}), peak RSS {result['on']['peak_rss_mib']['max']:.0f} MiB", flush=True)
    return result
