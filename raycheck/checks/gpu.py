"""GPU visibility (checks ``gpu.*``): advertised, shared, plugged in, and what Ray actually sees."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from raycheck.cluster.coverage import NoEvidence, NotCovered
from raycheck.cluster.source import ClusterReadError
from raycheck.cluster.view import ClusterView
from raycheck.model.capacity import GPU, SHARED_GPU, Vector, other_gpu_resource
from raycheck.model.footprint import Footprint
from raycheck.model.kuberay import desired_workers, ray_container
from raycheck.model.raycluster_patch import HEAD_GROUP, as_json, container_at, group_path, guard, pointer, scale, set_field
from raycheck.observation import Observation

DEVICE_PLUGIN_MARK = "nvidia-device-plugin"


def container_gpus(container: dict[str, Any]) -> dict[str, Decimal]:
    """The accelerators a container is given, by resource: every limit whose name ends in ``gpu``
    (``nvidia.com/gpu``, ``amd.com/gpu``; KubeRay scans for that suffix) and MIG slices."""
    limits = Vector.parse((container.get("resources") or {}).get("limits"))
    return {name: limits[name] for name in sorted(limits)
            if (name.endswith("gpu") or other_gpu_resource(name)) and limits[name] > 0}


# the annotations with which the KAI scheduler gives a pod a share of one card (no GPU limit: the
# scheduler binds the card and sets NVIDIA_VISIBLE_DEVICES itself)
KAI_GPU_SHARE = ("gpu-fraction", "gpu-memory")


def _shared_by_scheduler(group: dict[str, Any]) -> dict[str, Decimal]:
    """A share of one card the KAI scheduler gives a group's pods, as one card Ray may see; else nothing."""
    annotations = (((group.get("template") or {}).get("metadata") or {}).get("annotations") or {})
    share = next((f"{key} {annotations[key]}" for key in KAI_GPU_SHARE if key in annotations), None)
    return {f"GPU shared by the KAI scheduler ({share})": Decimal(1)} if share else {}


def _template_container(group: dict[str, Any]) -> dict[str, Any]:
    return ray_container(((group.get("template") or {}).get("spec") or {}))


def group_gpus(group: dict[str, Any]) -> Decimal:
    """The GPUs Ray gives one pod of a group: ``num-gpus`` if set, else (as KubeRay does) the first
    non-zero limit whose name ends in ``gpu``; a MIG slice alone gives none."""
    params = group.get("rayStartParams") or {}
    if "num-gpus" in params:
        return _declared(params["num-gpus"]) or Decimal(0)
    return next((n for name, n in container_gpus(_template_container(group)).items() if name.endswith("gpu")),
                Decimal(0))


def _declared(value: Any) -> Decimal | None:
    """``rayStartParams`` values are strings; None for one ``ray start`` would refuse."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _groups(cluster: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    """(group name as its pods are labelled, group spec, pods it wants): the head, then the workers."""
    spec = cluster.get("spec") or {}
    return [(HEAD_GROUP, spec.get("headGroupSpec") or {}, 1)] + \
        [(g.get("groupName", "?"), g, desired_workers(g)) for g in spec.get("workerGroupSpecs") or []]


def requested_gpus(cluster: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(nvidia.com/gpu the RayCluster's pods request, GPUs Ray will count) at the desired sizes."""
    requested = ray = Decimal(0)
    for _, group, count in _groups(cluster):
        requested += count * Vector.parse((_template_container(group).get("resources") or {}).get("limits"))[GPU]
        ray += count * group_gpus(group)
    return requested, ray


def node_allocatable(fp: Footprint) -> Observation:
    cluster = fp.view.raycluster()
    if cluster is None:
        return Observation(False, f"RayCluster {fp.view.target.cluster_name} not found", cause="no-raycluster")
    requested, _ = requested_gpus(cluster)
    nodes = fp.gpu_nodes
    advertised = {name: Vector.parse((n.get("status") or {}).get("allocatable")) for name, n in sorted(nodes.items())}
    allocatable = sum((a[GPU] for a in advertised.values()), Decimal(0))
    other = {name: {r: a[r] for r in sorted(a) if other_gpu_resource(r) and a[r] > 0} for name, a in advertised.items()}
    other = {name: found for name, found in other.items() if found}
    per_node = ", ".join(f"{name} {a[GPU]}" + "".join(f", {r} {n}" for r, n in other.get(name, {}).items())
                         for name, a in advertised.items()) or "no GPU nodes"
    message = f"RayCluster {cluster['metadata']['name']} requests {requested} nvidia.com/gpu; nodes advertise " \
              f"{allocatable} ({per_node})"
    if requested <= allocatable:
        return Observation(True, message)
    figures = {"gpus_requested": str(requested), "gpus_allocatable": str(allocatable)}
    if other:
        return _other_resource_instead(cluster, message, other, figures)
    if allocatable == 0:  # no GPU at all: shrinking to zero workers is no fix; the device plugin is the question
        return Observation(False, f"{message}: no node advertises a GPU", cause="none-advertised", figures=figures)
    shrink = _shrink_for_gpus(cluster, requested - allocatable)
    return Observation(False, message, cause="short" if "scale_patch" in shrink else "short-by-hand",
                       figures={**figures, **shrink})


def _other_resource_instead(cluster: dict[str, Any], message: str, other: dict[str, dict[str, Decimal]],
                            figures: dict[str, str]) -> Observation:
    """Nodes that advertise their GPUs under another name (MIG slices under the device plugin's mixed
    strategy, ``nvidia.com/gpu.shared`` under time-slicing's renameByDefault) to workers that ask
    for ``nvidia.com/gpu``: name what is advertised, and the patch that asks for it instead."""
    totals: dict[str, Decimal] = {}
    for found in other.values():
        for name, count in found.items():
            totals[name] = totals.get(name, Decimal(0)) + count
    resource = max(sorted(totals), key=lambda name: totals[name])
    ops: list[dict[str, Any]] = []
    for name, group, _ in _groups(cluster):
        limits = (_template_container(group).get("resources") or {}).get("limits") or {}
        if GPU not in limits or Vector.parse({GPU: limits[GPU]})[GPU] == 0:
            continue
        count, where = limits[GPU], (*(group_path(cluster, name) or ()), *container_at(cluster, name))
        ops += guard(cluster, name)
        for kind in ("limits", "requests"):
            if GPU in ((_template_container(group).get("resources") or {}).get(kind) or {}):
                ops += [{"op": "remove", "path": pointer(*where, "resources", kind, GPU)},
                        {"op": "add", "path": pointer(*where, "resources", kind, resource), "value": count}]
        if "num-gpus" not in (group.get("rayStartParams") or {}):  # KubeRay counts only names ending in "gpu"
            ops += set_field(cluster, name, ("rayStartParams", "num-gpus"), str(count))
    listed = "; ".join(f"{node}: " + ", ".join(f"{r} {n}" for r, n in found.items()) for node, found in other.items())
    if resource == SHARED_GPU:
        why, cause = "time-sliced GPUs renamed by the device plugin (renameByDefault), and they are not nvidia.com/gpu", \
            "shared-renamed"
    else:
        why, cause = "MIG slices under the device plugin's mixed strategy, and a MIG slice is not an nvidia.com/gpu", "mig"
    return Observation(False, f"{message}: the GPU nodes advertise {listed}: {why}; the workers stay Pending",
                       cause=cause, figures={**figures, "gpu_resources": listed, "gpu_resource": resource,
                                             "resource_patch": as_json(ops)})


def _shrink_for_gpus(cluster: dict[str, Any], short: Decimal) -> dict[str, str]:
    """The worker group to shrink so the GPUs requested fit: the one that loses the fewest pods."""
    options = []
    for name, group, pods in _groups(cluster)[1:]:
        per_pod = Vector.parse((_template_container(group).get("resources") or {}).get("limits"))[GPU]
        if per_pod <= 0:
            continue
        hosts = int(group.get("numOfHosts", 1) or 1)
        need = int((short / per_pod).to_integral_value(rounding=ROUND_CEILING))
        remove = -(-need // hosts) * hosts  # whole hosts: a multi-host replica goes as one
        if remove <= pods:
            options.append((remove, name, pods - remove))
    if not options:
        return {"why": "no single worker group can give up enough GPUs"}
    _, name, fitting = min(options)
    return {"group": name, "fitting_workers": str(fitting), "scale_patch": as_json(scale(cluster, name, fitting) or [])}


def ray_gpus_backed(view: ClusterView) -> Observation:
    """No group makes Ray hand out more GPUs than its container is given: ``rayStartParams.num-gpus``
    above the GPU limit (or GPUs declared with no GPU limit) gives Ray GPU ids with no card behind
    them, and tasks that think they hold a GPU and find none (``gpu.worker-visible``'s ``phantom``)."""
    cluster = view.raycluster()
    if cluster is None:
        return Observation(False, f"RayCluster {view.target.cluster_name} not found", cause="no-raycluster")
    fine, wrong, ops, groups = [], [], [], []
    for name, group, pods in _groups(cluster):
        params = group.get("rayStartParams") or {}
        cards = container_gpus(_template_container(group)) or _shared_by_scheduler(group)
        given = sum(cards.values(), Decimal(0))
        given_text = ", ".join(f"{n} {r}" for r, n in cards.items()) or "no GPU"
        if "num-gpus" not in params:
            fine.append(f"{name} {group_gpus(group)} (from its limits)")
            continue
        declared = _declared(params["num-gpus"])
        if declared is not None and declared <= given:
            fine.append(f"{name} num-gpus {declared} on {given_text}")
            continue
        container = _template_container(group).get("name") or "its Ray container"
        if declared is None:
            wrong.append(f"group {name}: rayStartParams num-gpus {params['num-gpus']!r} is not a number of GPUs "
                         "(ray start refuses it)")
        else:
            wrong.append(f"group {name}: rayStartParams num-gpus {declared} but container {container} is given "
                         f"{given_text}: {pods * (declared - given)} of the {pods * declared} GPUs Ray hands out in its "
                         f"{pods} pod{'s' if pods != 1 else ''} have no card behind them")
        where = group_path(cluster, name)
        assert where is not None
        current = {"op": "test", "path": pointer(*where, "rayStartParams", "num-gpus"), "value": params["num-gpus"]}
        fix = {"op": "replace", "path": current["path"], "value": str(given.normalize())} if given > 0 \
            else {"op": "remove", "path": current["path"]}
        ops += guard(cluster, name) + [current, fix]
        groups.append(name)
    if wrong:
        return Observation(False, "; ".join(wrong), cause="phantom",
                           figures={"gpu_patch": as_json(ops), "phantom_groups": ", ".join(groups),
                                    "phantom_selector": ",".join(groups)})
    return Observation(True, f"every group's Ray GPUs have cards behind them: {'; '.join(fine)}")


def device_plugin(fp: Footprint) -> Observation:
    found, everywhere = fp.view.list_seen("DaemonSet")
    daemonsets = [d for d in found if DEVICE_PLUGIN_MARK in d["metadata"]["name"]]
    if not daemonsets and not everywhere:  # absent where the dump looked: not evidence it is absent
        raise NotCovered("DaemonSet", None, fp.view.source.name, fp.view.source.how_to_add("DaemonSet", None),
                         "no device plugin in the namespaces it holds")
    if not daemonsets:
        return Observation(False, "no NVIDIA device plugin DaemonSet (nvidia-device-plugin-daemonset, GPU Operator "
                           "or Helm's <release>-nvidia-device-plugin) in any namespace", cause="missing")
    parts, broken = [], None
    for ds in daemonsets:
        status = ds.get("status") or {}
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
        where = f"{ds['metadata'].get('namespace')}/{ds['metadata']['name']}"
        parts.append(f"{where} {ready}/{desired} ready")
        if desired == 0 or ready < desired:
            broken = broken or (where, ds)
    message = "; ".join(parts)
    if broken is not None:
        namespace, name = broken[0].split("/")
        return Observation(False, f"device plugin not fully ready: {message}", cause="not-ready",
                           figures={"plugin_namespace": namespace, "plugin_name": name})
    return Observation(True, message)


def sharing(fp: Footprint) -> Observation | None:
    """Advertised vs physical GPUs from GFD labels; None when no GPU node carries GFD labels."""
    findings, fine = [], []
    labelled = False
    for name, node in sorted(fp.gpu_nodes.items()):
        labels = node["metadata"].get("labels") or {}
        if "nvidia.com/gpu.count" not in labels:
            continue
        labelled = True
        advertised = Vector.parse((node.get("status") or {}).get("allocatable"))[GPU]
        physical = Decimal(labels["nvidia.com/gpu.count"])
        product = labels.get("nvidia.com/gpu.product", "GPU")
        memory = labels.get("nvidia.com/gpu.memory")
        strategy = labels.get("nvidia.com/gpu.sharing-strategy", "none")
        replicas = labels.get("nvidia.com/gpu.replicas", "1")
        card = f"{int(memory) // 1024} GiB " if memory and memory.isdigit() else ""
        if advertised > physical:
            mig = " (MIG capable)" if labels.get("nvidia.com/mig.capable") == "true" else " (no MIG on this card)"
            findings.append(
                f"{name} advertises {advertised} nvidia.com/gpu on {physical} physical {product}{mig}: "
                f"{strategy}, {replicas} replicas per card, so each Ray worker with 1 GPU shares a {card}card "
                "with no memory isolation")
        else:
            fine.append(f"{name}: {advertised} nvidia.com/gpu on {physical} physical {product}")
    if not labelled:
        return None
    if findings:
        return Observation(False, "; ".join(findings), cause="shared")
    return Observation(True, "; ".join(fine))


def ray_total(resources: dict[str, Any], expected: int | None, cluster: dict[str, Any] | None) -> Observation:
    """Ray's GPU total from the handshake vs the target's expectation and the RayCluster's spec."""
    seen = Decimal(str(resources.get("GPU", 0))).normalize()
    checks = []
    if expected is not None:
        checks.append(("expect.gpus", Decimal(expected)))
    if cluster is not None:
        checks.append((f"RayCluster {cluster['metadata']['name']}", requested_gpus(cluster)[1]))
    if not checks:
        return Observation(True, f"Ray reports {seen:f} GPUs (nothing to compare with: no expect.gpus, no cluster state)")
    wrong = [f"{what} says {value}" for what, value in checks if value != seen]
    message = f"Ray reports {seen:f} GPUs; " + ", ".join(f"{what} {value:f}" for what, value in checks)
    if wrong:
        return Observation(False, message, cause="mismatch", figures={"ray_gpus": f"{seen:f}"})
    return Observation(True, message)


def worker_visible(obs: Observation, count: int, view: ClusterView | None = None) -> Observation:
    """Judge the deep probe: every task got a GPU, and no two Ray GPUs are one physical card. A Ray
    GPU with no card behind it is fixed in the RayCluster's spec, where the state shows which group."""
    if not obs.ok:
        cause = obs.cause if obs.cause in ("head-gone", "server-init") else "tasks-failed"
        return Observation(False, f"the GPU tasks did not complete: {obs.message}", cause=cause, figures=obs.figures)
    if obs.data.get("gpu_error"):
        return Observation(False, f"{count} num_gpus=1 tasks did not finish ({obs.data['gpu_error']}): the GPUs are "
                           "busy, or no worker can take a GPU task", cause="tasks-failed")
    tasks = obs.data.get("gpu_tasks") or []
    blind = [t for t in tasks if not t.get("gpu_ids") or not t.get("cuda_visible_devices")]
    if len(tasks) < count or blind:
        return Observation(False, f"{len(blind) + count - len(tasks)} of {count} num_gpus=1 tasks saw no GPU "
                           f"(ray.get_gpu_ids() empty or CUDA_VISIBLE_DEVICES unset)", cause="no-gpu")
    physical: dict[str, list[str]] = {}
    phantom: list[str] = []  # host#id of Ray GPUs that no card answers to, where nvidia-smi listed the cards
    listed: list[int] = []  # how many cards that nvidia-smi listed, for each of them
    for t in tasks:
        uuids = t.get("uuids")
        for gpu_id in t["gpu_ids"]:
            card = physical_card(gpu_id, uuids)
            if card is not None:
                physical.setdefault(card, []).append(f"{t['host']}#{gpu_id}")
            elif uuids is not None:
                phantom.append(f"{t['host']}#{gpu_id}")
                listed.append(len(uuids))
    nodes = len({t["node"] for t in tasks})
    seen = f"{count} num_gpus=1 tasks on {nodes} node{'s' if nodes != 1 else ''} each got a GPU " \
           f"(CUDA_VISIBLE_DEVICES {', '.join(sorted({t['cuda_visible_devices'] for t in tasks}))})"
    if phantom:
        named = ", ".join(f"{where} (nvidia-smi lists {n})" for where, n in zip(phantom[:4], listed))
        spec = _spec_phantom(view)
        return Observation(False, f"{seen}, but {len(phantom)} of them name a GPU the container does not have: "
                           f"{named}{' ...' if len(phantom) > 4 else ''}" + (f"; the spec says why: {spec.message}"
                                                                          if spec else ""),
                           cause="phantom" if spec else "phantom-by-hand",
                           figures={"phantom": phantom[0], "phantom_count": str(len(phantom)),
                                    **(spec.figures if spec else {})})
    shared = {u: where for u, where in physical.items() if len(where) > 1}
    if shared:
        detail = "; ".join(f"{u[:16]}... serves {', '.join(w)}" for u, w in list(shared.items())[:3])
        return Observation(False, f"{seen}, but {len(shared)} physical GPUs serve more than one Ray GPU: {detail}",
                           cause="shared")
    identity = f"{len(physical)} distinct GPU UUIDs" if physical else "no nvidia-smi: physical identity not read"
    return Observation(True, f"{seen}; {identity}")


def _spec_phantom(view: ClusterView | None) -> Observation | None:
    """gpu.ray-gpus-backed's finding, where the cluster state holds the RayCluster: the groups whose
    num-gpus exceeds their GPUs, and the patch."""
    if view is None:
        return None
    try:
        spec = ray_gpus_backed(view)
    except (NoEvidence, ClusterReadError):
        return None
    return spec if spec.cause == "phantom" else None


def physical_card(gpu_id: str, uuids: list[str] | None) -> str | None:
    """The UUID of the card behind a Ray GPU id, from the task's own nvidia-smi listing.

    Ray's ids index the GPUs the container sees (nvidia-smi lists the same ones, in the same
    order, whatever CUDA_VISIBLE_DEVICES says); a node started with CUDA_VISIBLE_DEVICES as UUIDs
    gives the UUID itself. None: no listing, or no such card (num-gpus declared above the cards)."""
    if not uuids:
        return None
    if gpu_id in uuids:
        return gpu_id
    index = int(gpu_id) if gpu_id.isdigit() else -1
    return uuids[index] if 0 <= index < len(uuids) else None
