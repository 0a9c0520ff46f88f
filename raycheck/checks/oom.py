"""Memory and OOM (checks ``oom.*``): requests, limits and headroom on the Ray nodes, OOM kills, /dev/shm."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from raycheck.model.capacity import GPU, Vector, format_quantity, human, pod_shape, quantity
from raycheck.model.footprint import Footprint
from raycheck.model.kuberay import ray_container
from raycheck.observation import Observation

OBJECT_STORE_FRACTION = Decimal("0.3")
OBJECT_STORE_CAP = Decimal(200 * 10 ** 9)
DEFAULT_SHM = Decimal(64 * 1024 ** 2)
RESTART_THRESHOLD = 3


def _no_nodes(fp: Footprint) -> Observation | None:
    if not fp.nodes:
        return Observation(False, f"no Ray pod of {fp.view.target.cluster_name} is bound to a node",
                           cause="no-nodes")
    return None


def requests_fit(fp: Footprint) -> Observation:
    if (missing := _no_nodes(fp)) is not None:
        return missing
    cluster = fp.cluster()
    parts, over = [], []
    for name, node in sorted(cluster.nodes.items()):
        used = cluster.used[name]
        figures = ", ".join(f"{r} {human(r, used[r])} of {human(r, node.allocatable[r])}"
                            for r in ("cpu", "memory", GPU) if node.allocatable[r] or used[r])
        parts.append(f"{name}: requests {figures}")
        short = [r for r in ("cpu", "memory", GPU) if used[r] > node.allocatable[r]]
        if short:
            over.append(f"{name} ({', '.join(short)})")
    message = "; ".join(parts)
    if over:
        return Observation(False, f"requests exceed allocatable on {', '.join(over)}: {message}",
                           cause="over", figures={"node": over[0].split(" ")[0]})
    return Observation(True, message)


def limits_overcommit(fp: Footprint) -> Observation:
    if (missing := _no_nodes(fp)) is not None:
        return missing
    cluster = fp.cluster()
    worst = None
    parts = []
    for name, node in sorted(cluster.nodes.items()):
        limits, allocatable = cluster.limits[name]["memory"], node.allocatable["memory"]
        parts.append(f"{name}: memory limits {human('memory', limits)} of {human('memory', allocatable)} allocatable")
        if limits > allocatable and (worst is None or limits - allocatable > worst[1]):
            worst = (name, limits - allocatable)
    message = "; ".join(parts)
    if worst is None:
        return Observation(True, message)
    name, excess = worst
    figures = {"node": name, "excess": human("memory", excess), **_suggested_worker_limit(fp, name, excess)}
    return Observation(False, f"{message}: overcommitted by {human('memory', excess)}; under memory pressure "
                       "the kernel OOM-kills containers", cause="overcommit", figures=figures)


def _suggested_worker_limit(fp: Footprint, node: str, excess: Decimal) -> dict[str, str]:
    """The worker memory limit that removes the overcommit, spread over the Ray workers on ``node``."""
    workers = [pod_shape(p) for p in fp.ray_pods
               if (p.get("spec") or {}).get("nodeName") == node
               and (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker"]
    if not workers:
        return {"suggested_limit": "a lower value", "fewer_workers": "fewer"}
    per_worker = workers[0].limits["memory"]
    fewer = len(workers) - int(-(-excess // per_worker)) if per_worker else len(workers)
    cut = -(-excess // len(workers))  # ceiling
    suggested = per_worker - cut
    gi = Decimal(1024 ** 3)
    suggested = (suggested // gi) * gi if suggested >= gi else suggested
    return {"suggested_limit": format_quantity(suggested), "worker_limit": format_quantity(per_worker),
            "fewer_workers": str(max(0, fewer))}


def headroom(fp: Footprint, threshold: float) -> Observation:
    if (missing := _no_nodes(fp)) is not None:
        return missing
    cluster = fp.cluster()
    parts, low = [], []
    for name, node in sorted(cluster.nodes.items()):
        allocatable = node.allocatable["memory"]
        free = allocatable - cluster.used[name]["memory"]
        share = (free / allocatable) if allocatable else Decimal(0)
        parts.append(f"{name}: {human('memory', free)} of {human('memory', allocatable)} unrequested "
                     f"({share:.1%})")
        if share < Decimal(str(threshold)):
            low.append(name)
    message = "; ".join(parts) + f"; threshold {threshold:.0%}"
    if low:
        return Observation(False, message, cause="low", figures={"node": low[0], "threshold": f"{threshold:.0%}"})
    return Observation(True, message)


def recent_kills(fp: Footprint) -> Observation:
    killed, restarting = [], []
    for pod in fp.ray_pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            name = pod["metadata"]["name"]
            if last.get("reason") == "OOMKilled":
                killed.append(f"{name} ({cs.get('restartCount', 0)} restarts, last at {last.get('finishedAt', '?')})")
            elif cs.get("restartCount", 0) >= RESTART_THRESHOLD:
                restarting.append(f"{name} ({cs['restartCount']} restarts)")
    namespace = fp.view.target.ray_namespace
    # Events only add to what the pods' last states say: a dump without them is read without them
    events = [e for e in fp.view.list("Event", namespace)
              if e.get("reason") in ("OOMKilling", "OOMKilled")
              and ((e.get("involvedObject") or {}).get("name") or "").startswith(fp.view.target.cluster_name)] \
        if fp.view.covers("Event", namespace) else []
    pods = len(fp.ray_pods)
    if killed or events:
        detail = "; ".join(killed + [f"event {e.get('reason')}: {e.get('message', '')[:120]}" for e in events])
        workers = sum(1 for p in fp.ray_pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker")
        return Observation(False, f"{len(killed)} of {pods} Ray pods were OOMKilled: {detail}", cause="oomkilled",
                           figures={"killed_pod": (killed or ["?"])[0].split(" ")[0],
                                    "half_workers": str(max(1, workers // 2))})
    if restarting:
        return Observation(False, f"Ray pods restart often: {'; '.join(restarting)}", cause="restarting",
                           figures={"killed_pod": restarting[0].split(" ")[0]})
    return Observation(True, f"none of {pods} Ray pods was OOMKilled; no container restarted {RESTART_THRESHOLD}+ times")


def _shm(pod: dict[str, Any]) -> Decimal | None:
    """The memory-backed /dev/shm of the pod's Ray container: its size limit (0: unbounded), None if absent."""
    spec = pod.get("spec") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for container in [ray_container(spec)]:
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name")) or {}
            empty_dir = volume.get("emptyDir")
            if mount.get("mountPath") == "/dev/shm" and empty_dir is not None and empty_dir.get("medium") == "Memory":
                return quantity(empty_dir["sizeLimit"]) if empty_dir.get("sizeLimit") else Decimal(0)
    return None


def object_store_size(pod: dict[str, Any]) -> Decimal:
    """Ray's default object store: 30% of the memory the container may use, at most 200 GB."""
    container = ray_container(pod.get("spec") or {})
    resources = container.get("resources") or {}
    memory = Vector.parse(resources.get("limits"))["memory"] or Vector.parse(resources.get("requests"))["memory"]
    return min(memory * OBJECT_STORE_FRACTION, OBJECT_STORE_CAP)


def shm(fp: Footprint) -> Observation:
    missing, small = [], []
    for pod in fp.ray_pods:
        name = pod["metadata"]["name"]
        store = object_store_size(pod)
        size = _shm(pod)
        if size is None:
            missing.append(name)
        elif size and store > size:
            small.append(f"{name} (/dev/shm {human('memory', size)} < object store {human('memory', store)})")
    pods = len(fp.ray_pods)
    if missing:
        store = object_store_size(next(p for p in fp.ray_pods if p["metadata"]["name"] == missing[0]))
        return Observation(False, f"{len(missing)} of {pods} Ray pods have no memory-backed /dev/shm (64Mi by "
                           f"default) for an object store of {human('memory', store)}: {', '.join(missing[:3])}"
                           f"{' ...' if len(missing) > 3 else ''}", cause="missing",
                           figures={"shm_pod": missing[0]})
    if small:
        return Observation(False, f"/dev/shm smaller than the object store: {'; '.join(small[:3])}", cause="small",
                           figures={"shm_pod": small[0].split(" ")[0]})
    return Observation(True, f"all {pods} Ray pods mount a memory-backed /dev/shm for the object store")
