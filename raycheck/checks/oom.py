"""Memory and OOM (checks ``oom.*``): requests, limits and headroom on the Ray nodes, OOM kills, /dev/shm."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from raycheck.model.capacity import (
    GPU, Cluster, PodShape, Vector, counts_on_node, floor_div, format_quantity, human, pod_shape, quantity,
)
from raycheck.cluster.coverage import NotApplied
from raycheck.model.footprint import Footprint
from raycheck.model.kuberay import desired_workers, not_created, ray_container, shm_volume
from raycheck.model.raycluster_patch import append, as_json, container_at, group_spec, guard, scale, set_field
from raycheck.observation import Observation

OBJECT_STORE_FRACTION = Decimal("0.3")
OBJECT_STORE_CAP = Decimal(200 * 10 ** 9)
DEFAULT_SHM = Decimal(64 * 1024 ** 2)
RESTART_THRESHOLD = 3


def _no_nodes(fp: Footprint) -> Observation | None:
    unbound = [p for p in fp.ray_pods if not (p.get("spec") or {}).get("nodeName")]
    if not fp.nodes and (why := not_created(unbound)):
        raise NotApplied(f"the pods of RayCluster {fp.view.target.cluster_name}", why,
                         "no node holds them yet: capacity.manifests-fit (-m gate) places them beside what runs")
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
    over: dict[str, Decimal] = {}
    parts = []
    for name, node in sorted(cluster.nodes.items()):
        limits, allocatable = cluster.limits[name]["memory"], node.allocatable["memory"]
        parts.append(f"{name}: memory limits {human('memory', limits)} of {human('memory', allocatable)} allocatable")
        if limits > allocatable:
            over[name] = limits - allocatable
    message = "; ".join(parts)
    if not over:
        return Observation(True, message)
    worst = max(over, key=lambda n: over[n])
    figures = {"node": worst, "excess": human("memory", over[worst]), **_make_limits_fit(fp, cluster, sorted(over))}
    fits = f"; group {figures['group']}: the limits of {figures['fitting_workers']} of its " \
           f"{figures['workers_on_node']} workers on {worst} fit" if "fitting_workers" in figures else ""
    cause = "overcommit" if "scale_patch" in figures else "overcommit-nodes" if "limit_patch" in figures \
        else "overcommit-by-hand"
    return Observation(False, f"{message}: overcommitted by {human('memory', over[worst])} on {worst}"
                       + (f" (and {len(over) - 1} more node{'s' if len(over) > 2 else ''})" if len(over) > 1 else "")
                       + f"{fits}; under memory pressure the kernel OOM-kills containers", cause=cause, figures=figures)


def _workers_on(fp: Footprint, node: str) -> dict[str, list[PodShape]]:
    """The Ray workers that take ``node``'s capacity, by group."""
    by_group: dict[str, list[PodShape]] = {}
    for pod in fp.ray_pods:
        labels = pod["metadata"].get("labels") or {}
        if (pod.get("spec") or {}).get("nodeName") == node and labels.get("ray.io/node-type") == "worker" \
                and counts_on_node(pod):
            by_group.setdefault(labels.get("ray.io/group", ""), []).append(pod_shape(pod))
    return by_group


def _make_limits_fit(fp: Footprint, model: Cluster, nodes: list[str]) -> dict[str, str]:
    """How one worker group makes the memory limits of ``nodes`` fit: the per-worker limit at which they
    fit on every one of them (whole Gi), and, where one node alone is over, the largest count of its
    workers that fits there. The group is the one that needs the fewest workers removed on the worst
    node. KubeRay picks which pods go when replicas drop: a count is exact only for one node, so with
    several nodes over only the limit is offered."""
    gi = Decimal(1024 ** 3)
    rooms: dict[str, list[Decimal]] = {}  # group -> per-worker room on each node
    options = []
    for node in nodes:
        allocatable, total = model.nodes[node].allocatable["memory"], model.limits[node]["memory"]
        for group, pods in _workers_on(fp, node).items():
            per = max(p.limits["memory"] for p in pods)
            others = total - sum((p.limits["memory"] for p in pods), Decimal(0))
            if per == 0 or others >= allocatable:  # unlimited workers, or the rest alone overcommits
                rooms.setdefault(group, []).append(Decimal(0))
                continue
            rooms.setdefault(group, []).append((allocatable - others) / len(pods))
            if len(nodes) == 1:
                fit = max(0, min(len(pods), floor_div(allocatable - others, per)))
                options.append((len(pods) - fit, -per, group, len(pods), fit, per))
    usable = {g: min(r) for g, r in rooms.items() if len(r) == len(nodes) and min(r) > 0}
    if not usable:
        return {"why": f"no worker group runs on every overcommitted node ({', '.join(nodes)}) with room to make: "
                "the other pods' limits alone exceed allocatable" if rooms else f"no Ray worker runs on {nodes[0]}"}
    group = min(options)[2] if options and min(options)[2] in usable else max(usable, key=lambda g: usable[g])
    room = usable[group]
    limit = Decimal(floor_div(room, gi)) * gi if room >= gi else Decimal(floor_div(room, Decimal(1)))
    workers = _workers_on(fp, nodes[0]).get(group, [])
    figures = {"group": group, "suggested_limit": format_quantity(limit), "overcommitted_nodes": ", ".join(nodes),
               "worker_limit": format_quantity(max((p.limits["memory"] for p in workers), default=Decimal(0)))}
    raycluster = fp.view.raycluster_if_known()
    spec = group_spec(raycluster, group) if raycluster is not None else None
    if raycluster is None or spec is None:
        return {**figures, "why": f"the RayCluster {fp.view.target.cluster_name} spec, which says where group "
                f"{group} is, is not in the cluster state"}
    figures["limit_patch"] = as_json(guard(raycluster, group) + set_field(
        raycluster, group, (*container_at(raycluster, group), "resources", "limits", "memory"), format_quantity(limit)))
    chosen = [o for o in options if o[2] == group]
    if chosen:
        removed, _, _, on_node, fit, _ = chosen[0]
        fewer = desired_workers(spec) - removed
        figures.update(workers_on_node=str(on_node), fitting_workers=str(fit), fewer_workers=str(fewer),
                       scale_patch=as_json(scale(raycluster, group, fewer) or []))
    return figures


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
    if why := not_created(fp.ray_pods):
        raise NotApplied(f"the pods of RayCluster {fp.view.target.cluster_name}", why,
                         "pods not made yet have no kills or restarts to show")
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
        first = (killed or [((events[0].get("involvedObject") or {}).get("name") or "?")])[0].split(" ")[0]
        figures = {"killed_pod": first, **_halve_group_of(fp, first)}
        return Observation(False, f"{len(killed)} of {pods} Ray pods were OOMKilled: {detail}",
                           cause="oomkilled" if "scale_patch" in figures else "oomkilled-head", figures=figures)
    if restarting:
        return Observation(False, f"Ray pods restart often: {'; '.join(restarting)}", cause="restarting",
                           figures={"killed_pod": restarting[0].split(" ")[0]})
    return Observation(True, f"none of {pods} Ray pods was OOMKilled; no container restarted {RESTART_THRESHOLD}+ times")


def _halve_group_of(fp: Footprint, pod_name: str) -> dict[str, str]:
    """The seed's remedy for OOM kills, for the group of the killed worker: half its workers."""
    pod = next((p for p in fp.ray_pods if p["metadata"]["name"] == pod_name), None)
    labels = (pod or {}).get("metadata", {}).get("labels") or {}
    raycluster = fp.view.raycluster_if_known()
    spec = group_spec(raycluster, labels.get("ray.io/group", "")) if raycluster is not None else None
    if labels.get("ray.io/node-type") != "worker" or raycluster is None or spec is None:
        return {}
    group, half = labels["ray.io/group"], max(1, desired_workers(spec) // 2)
    return {"killed_group": group, "half_workers": str(half), "scale_patch": as_json(scale(raycluster, group, half) or [])}


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


def _mount_shm(fp: Footprint, pod_names: list[str]) -> dict[str, str]:
    """The patch that gives the groups of ``pod_names`` the memory-backed /dev/shm KubeRay would give them."""
    raycluster = fp.view.raycluster_if_known()
    if raycluster is None:
        return {"shm_why": f"the RayCluster {fp.view.target.cluster_name} spec is not in the cluster state"}
    groups = sorted({(p["metadata"].get("labels") or {}).get("ray.io/group", "") for p in fp.ray_pods
                     if p["metadata"]["name"] in pod_names})
    ops: list[dict[str, Any]] = []
    for group in groups:
        spec = group_spec(raycluster, group)
        if spec is None:
            return {"shm_why": f"the RayCluster has no group {group}"}
        template = (spec.get("template") or {}).get("spec") or {}
        if any(m.get("mountPath") == "/dev/shm" for m in ray_container(template).get("volumeMounts") or []):
            return {"shm_why": f"the template of group {group} mounts /dev/shm already: the pods predate it, or mount "
                    "a volume that is not memory-backed there (a second mount would be refused); recreate the pods, "
                    "or make that volume an emptyDir with medium Memory"}
        at = container_at(raycluster, group)
        volume = shm_volume(ray_container(template))
        if any(v.get("name") == volume["name"] for v in ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []):
            volume["name"] = "dev-shm"  # a volume of KubeRay's name exists, but is not mounted at /dev/shm
        ops += guard(raycluster, group) + append(raycluster, group, ("template", "spec", "volumes"), volume) + \
            append(raycluster, group, (*at, "volumeMounts"), {"name": volume["name"], "mountPath": "/dev/shm"})
    return {"shm_groups": ", ".join(groups), "shm_patch": as_json(ops)}


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
        figures = {"shm_pod": missing[0], **_mount_shm(fp, missing)}
        return Observation(False, f"{len(missing)} of {pods} Ray pods have no memory-backed /dev/shm (64Mi by "
                           f"default) for an object store of {human('memory', store)}: {', '.join(missing[:3])}"
                           f"{' ...' if len(missing) > 3 else ''}", cause="missing" if "shm_patch" in figures
                           else "missing-by-hand", figures=figures)
    if small:
        return Observation(False, f"/dev/shm smaller than the object store: {'; '.join(small[:3])}", cause="small",
                           figures={"shm_pod": small[0].split(" ")[0]})
    return Observation(True, f"all {pods} Ray pods mount a memory-backed /dev/shm for the object store")
