"""``raycheck capacity``: the capacity table of the cluster, and with manifests applied.

For the human deciding between "use the existing RayCluster" and "add a second one": per node,
requests and limits against allocatable, and how many more workers of each group fit; then the
same with ``--with-manifests`` overlaid, and whether the new pods fit. ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal
from typing import Any

from raycheck.checks.capacity import group_shape, model_without, place_manifests
from raycheck.cluster import NO_CLUSTER_STATE, ClusterInputs
from raycheck.cluster.coverage import NoEvidence
from raycheck.cluster.source import ClusterReadError, Source
from raycheck.cluster.view import ClusterView
from raycheck.config import Target, load_target_file
from raycheck.errors import ConfigError
from raycheck.model.capacity import GPU, Cluster, human, max_count
from raycheck.model.footprint import Footprint
from raycheck.settings import SETTING, resolve_settings

USAGE_ERROR = 4


def table(fp: Footprint, cluster: Cluster | None = None) -> dict[str, Any]:
    """Per-node figures and per-group room, as plain data (``cluster``: a model to show instead)."""
    cluster = cluster or fp.cluster({**fp.nodes, **fp.gpu_nodes})
    nodes = []
    for name, node in sorted(cluster.nodes.items()):
        used, limits, alloc = cluster.used[name], cluster.limits[name], node.allocatable
        nodes.append({
            "node": name,
            **{f"{r}_requests": str(used[r]) for r in ("cpu", "memory", GPU)},
            **{f"{r}_allocatable": str(alloc[r]) for r in ("cpu", "memory", GPU)},
            "memory_limits": str(limits["memory"]),
            "memory_headroom": f"{(alloc['memory'] - used['memory']) / alloc['memory']:.3f}" if alloc["memory"] else "0",
        })
    groups = []
    raycluster = fp.view.raycluster()
    for group in ((raycluster or {}).get("spec") or {}).get("workerGroupSpecs") or []:
        shape = group_shape(raycluster, group)
        candidates = fp.candidate_nodes(needs_gpu=shape.requests[GPU] > 0) or fp.nodes
        model = model_without(fp, candidates, raycluster["metadata"]["name"], group["groupName"])
        running = sum(1 for p in fp.ray_pods if (p["metadata"].get("labels") or {}).get("ray.io/group")
                      == group["groupName"])
        groups.append({"group": group["groupName"], "running": running,
                       "fit_in_total": max_count(shape, model, limit=10_000)})
    return {"nodes": nodes, "groups": groups}


def render(title: str, data: dict[str, Any]) -> str:
    lines = [title, f"{'node':<20} {'cpu req/alloc':>15} {'memory req/alloc':>20} {'memory limits':>14} "
                    f"{'gpu req/alloc':>14} {'headroom':>9}"]
    for n in data["nodes"]:
        def pair(r: str) -> str:
            return f"{human(r, Decimal(n[f'{r}_requests']))}/{human(r, Decimal(n[f'{r}_allocatable']))}"
        lines.append(f"{n['node']:<20} {pair('cpu'):>15} {pair('memory'):>20} "
                     f"{human('memory', Decimal(n['memory_limits'])):>14} {pair(GPU):>14} "
                     f"{float(n['memory_headroom']):>9.1%}")
    for g in data["groups"]:
        lines.append(f"group {g['group']}: {g['running']} running; up to {g['fit_in_total']} fit in total")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``raycheck capacity``: the target file, the environment and these options decide where
    cluster state comes from, as for the suite (one factory: :class:`raycheck.cluster.ClusterInputs`)."""
    parser = argparse.ArgumentParser(prog="raycheck capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="the target file (env RAYCHECK_TARGET)")
    for key in ("cluster_dump", "kubeconfig", "context", "with_manifests", "api_timeout"):
        setting = SETTING[key]
        parser.add_argument(setting.option, dest=key, metavar=setting.metavar, help=f"{setting.help}; env {setting.env}")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    target_path = args.target or os.environ.get("RAYCHECK_TARGET")
    if not target_path:
        parser.print_usage(sys.stderr)
        print("error: no target: pass --target FILE or set RAYCHECK_TARGET", file=sys.stderr)
        return USAGE_ERROR
    try:
        target, from_file = load_target_file(target_path)
        settings = resolve_settings(vars(args), os.environ, from_file)
        inputs = ClusterInputs.read(settings)
        base = inputs.open_base()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ClusterReadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if base is None:
        print(f"error: {NO_CLUSTER_STATE}", file=sys.stderr)
        return USAGE_ERROR
    return report(target, base, inputs, args.json)


def report(target: Target, base: Source, inputs: ClusterInputs, as_json: bool) -> int:
    try:
        now = table(Footprint(ClusterView(base, target)))
        result: dict[str, Any] = {"now": now}
        status = 0
        with_manifests = inputs.overlay(base)
        if with_manifests is not base and with_manifests is not None:
            overlaid = Footprint(ClusterView(with_manifests, target))
            verdict, placed = place_manifests(overlaid)
            result["with_manifests"] = table(overlaid, placed)
            result["manifests_fit"] = {"fits": bool(verdict and verdict.ok), "message": verdict.message if verdict else ""}
            status = 0 if verdict is None or verdict.ok else 1
    except ClusterReadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NoEvidence as exc:  # the tables need what the source does not hold: say what, and how to add it
        print(f"error: the capacity tables cannot be made: {exc.message}", file=sys.stderr)
        return USAGE_ERROR
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render(f"{target.cluster_name} in {target.ray_namespace}: now", now))
        if "with_manifests" in result:
            print()
            print(render("with the manifests applied", result["with_manifests"]))
            print(("FITS: " if result["manifests_fit"]["fits"] else "DOES NOT FIT: ") + result["manifests_fit"]["message"])
    return status
