"""Capacity of the Ray cluster (checks ``capacity.*``): does every autoscaling size fit, and do new
manifests fit beside what runs?"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from raycheck.model.capacity import GPU, Cluster, PodShape, Vector, human, max_count, node_shape, place, pod_shape
from raycheck.cluster.overlay import OverlaySource
from raycheck.model.kuberay import INT32_MAX, desired_workers
from raycheck.cluster.source import Query
from raycheck.model.footprint import Footprint
from raycheck.model.raycluster_patch import as_json, cap, scale
from raycheck.observation import Observation


def group_shape(cluster: dict[str, Any], group: dict[str, Any]) -> PodShape:
    """One worker pod of a group, as the scheduler would see it."""
    meta = cluster["metadata"]
    return pod_shape({"metadata": {"namespace": meta.get("namespace", "default"),
                                   "name": f"{meta['name']}-{group['groupName']}-worker"},
                      "spec": (group.get("template") or {}).get("spec") or {}})


def model_without(fp: Footprint, nodes: dict[str, dict[str, Any]], cluster_name: str, group: str) -> Cluster:
    """The nodes with everything bound, except the group's own workers (whose count is the question)."""
    bound = []
    for name in nodes:
        for pod in fp.bound(name):
            if pod.labels.get("ray.io/cluster") == cluster_name and pod.labels.get("ray.io/group") == group:
                continue
            bound.append(pod)
    return Cluster.of([node_shape(n) for n in nodes.values()], bound)


def _limiting(shape: PodShape, model: Cluster) -> str:
    """The resource that runs out first for copies of ``shape``."""
    totals: dict[str, int] = {}
    for name in model.nodes:
        free = model.free(name)
        for resource, amount in shape.requests.amounts.items():
            if amount > 0:
                totals[resource] = totals.get(resource, 0) + max(0, int(free[resource] // amount))
    if not totals:
        return "nothing"
    least = min(totals.values())
    return " and ".join(sorted(r for r, n in totals.items() if n == least))


def autoscale_range(fp: Footprint) -> Observation:
    cluster = fp.view.raycluster()
    if cluster is None:
        return Observation(False, f"RayCluster {fp.view.target.cluster_name} not found", cause="no-raycluster")
    parts = []
    for group in (cluster.get("spec") or {}).get("workerGroupSpecs") or []:
        shape = group_shape(cluster, group)
        hosts = int(group.get("numOfHosts", 1) or 1)
        low = int(group.get("minReplicas", 0) or 0) * hosts
        high_raw = group.get("maxReplicas")
        autoscaled = bool((cluster.get("spec") or {}).get("enableInTreeAutoscaling"))
        if high_raw is None and not autoscaled:
            # no bound declared and no autoscaler to move it: the group runs its replicas, and the
            # CRD's default maximum (2147483647) is no size anyone will reach without editing the spec
            high = desired_workers(group)
        else:
            high = (int(high_raw) if high_raw is not None else INT32_MAX) * hosts
        high = max(high, desired_workers(group))
        nodes = fp.candidate_nodes(needs_gpu=shape.requests[GPU] > 0) or fp.nodes or fp.all_nodes
        model = model_without(fp, nodes, cluster["metadata"]["name"], group["groupName"])
        fits = max_count(shape, model, limit=high)
        name = group["groupName"]
        if fits < high:
            resource = _limiting(shape, model)
            first = resource.split(" and ")[0]
            free = sum((model.free(n)[first] for n in model.nodes), Decimal(0))
            figures = {"group": name, "max_fitting": str(fits), "first_failing": str(fits + 1), "resource": resource,
                       "cap_patch": as_json(cap(cluster, name, fits) or [])}
            return Observation(False, f"group {name}: {fits + 1} workers do not fit (range {low}-{high}); "
                               f"{resource} run{'s' if ' and ' not in resource else ''} out: each worker requests "
                               f"{human(first, shape.requests[first])} {first}, {human(first, free)} free on "
                               f"{', '.join(sorted(model.nodes)) or 'no node (the cluster state lists none)'}",
                               cause="too-small" if fits >= low else "min-does-not-fit", figures=figures)
        parts.append(f"group {name}: every size {low}-{high} fits"
                     + (" (no autoscaler and no maxReplicas: it runs its replicas)" if high_raw is None and not autoscaled
                        else ""))
    return Observation(True, "; ".join(parts) or "no worker groups")


def manifests_fit(fp: Footprint) -> Observation | None:
    """The overlaid manifests' new pods placed beside what runs; None without an overlay."""
    return place_manifests(fp)[0]


def place_manifests(fp: Footprint) -> tuple[Observation | None, Cluster | None]:
    """The verdict on the overlaid manifests, and the node model with the pods that fit placed."""
    source = fp.view.source
    if not isinstance(source, OverlaySource):
        return None, None
    new = [pod_shape(o) for o in source.applied.values()
           if o.get("kind") == "Pod" and not (o.get("spec") or {}).get("nodeName")]
    if not new:
        return Observation(True, "the manifests add no pods"), None
    needs_gpu = any(p.requests[GPU] > 0 for p in new)
    nodes = {**fp.nodes, **(fp.gpu_nodes if needs_gpu else {})}
    if not nodes:
        nodes = fp.all_nodes
    model = Cluster.of([node_shape(n) for n in nodes.values()], [p for n in nodes for p in fp.bound(n)])
    placement = place(new, model)
    placed = model.copy()
    for pod in new:
        if pod.key in placement.assigned:
            placed.add(pod, placement.assigned[pod.key])
    total = sum((p.requests for p in new), Vector())
    asked = ", ".join(f"{r} {human(r, total[r])}" for r in ("cpu", "memory", GPU) if total[r])
    if placement.fits:
        return Observation(True, f"{len(new)} new pods ({asked}) fit on "
                           f"{', '.join(sorted(set(placement.assigned.values())))}"), placed
    short = ", ".join(f"{r} {human(r, v)}" for r, v in sorted(placement.shortfall.amounts.items()))
    figures = {"shortfall": short or "see the per-node reasons", **_make_room(fp, placement.shortfall)}
    first = next(iter(placement.unplaced.items()))
    return Observation(False, f"{len(placement.unplaced)} of {len(new)} new pods ({asked}) do not fit; short by "
                       f"{short or 'nothing in total (fragmented)'}; e.g. {first[0]}: {first[1]}",
                       cause="short" if "reduce_to" in figures else "short-new", figures=figures), placed


def _make_room(fp: Footprint, shortfall: Vector) -> dict[str, str]:
    """How far a worker group of the running RayCluster must shrink to free the shortfall: the group
    that loses the fewest workers (whole hosts), and the patch that asks for that many."""
    target = fp.view.target
    source = fp.view.source
    assert isinstance(source, OverlaySource)
    running = source.base.list(Query("RayCluster", target.ray_namespace, fields={"metadata.name": target.cluster_name}))
    if not running:
        return {}
    options = []
    for group in (running[0].get("spec") or {}).get("workerGroupSpecs") or []:
        shape = group_shape(running[0], group)
        if any(shape.requests[r] <= 0 for r in shortfall.amounts):
            continue  # its workers free none of some resource that is short
        hosts = int(group.get("numOfHosts", 1) or 1)
        need = max(int((amount / shape.requests[r]).to_integral_value(rounding=ROUND_CEILING))
                   for r, amount in shortfall.amounts.items())
        remove, pods = -(-need // hosts) * hosts, desired_workers(group)
        if remove <= pods:
            options.append((remove, group["groupName"], pods - remove))
    if not options:
        return {}
    _, name, reduce_to = min(options)
    return {"reduce_group": name, "reduce_to": str(reduce_to),
            "scale_patch": as_json(scale(running[0], name, reduce_to) or [])}
