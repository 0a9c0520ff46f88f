"""GPU visibility (checks ``gpu.*``): advertised, shared, plugged in, and what Ray actually sees."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from raycheck.cluster.coverage import NotCovered
from raycheck.model.capacity import GPU, Vector
from raycheck.model.kuberay import desired_workers
from raycheck.model.footprint import Footprint
from raycheck.observation import Observation

DEVICE_PLUGIN_MARK = "nvidia-device-plugin"


def group_gpus(group: dict[str, Any]) -> Decimal:
    """The GPUs Ray gives one pod of a group: ``num-gpus`` if set, else the container's GPU limit (KubeRay)."""
    params = group.get("rayStartParams") or {}
    if "num-gpus" in params:
        return Decimal(str(params["num-gpus"]))
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return Vector.parse((containers[0].get("resources") or {}).get("limits"))[GPU]


def requested_gpus(cluster: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(nvidia.com/gpu the RayCluster's pods request, GPUs Ray will count) at the desired sizes."""
    spec = cluster.get("spec") or {}
    requested = ray = Decimal(0)
    for group in [spec.get("headGroupSpec") or {}] + list(spec.get("workerGroupSpecs") or []):
        count = 1 if group is spec.get("headGroupSpec") else desired_workers(group)
        containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        requested += count * Vector.parse((containers[0].get("resources") or {}).get("limits"))[GPU]
        ray += count * group_gpus(group)
    return requested, ray


def node_allocatable(fp: Footprint) -> Observation:
    cluster = fp.view.raycluster()
    if cluster is None:
        return Observation(False, f"RayCluster {fp.view.target.cluster_name} not found", cause="no-raycluster")
    requested, _ = requested_gpus(cluster)
    nodes = fp.gpu_nodes
    allocatable = sum((Vector.parse((n.get("status") or {}).get("allocatable"))[GPU] for n in nodes.values()),
                      Decimal(0))
    per_node = ", ".join(f"{name} {Vector.parse((n.get('status') or {}).get('allocatable'))[GPU]}"
                         for name, n in sorted(nodes.items())) or "no GPU nodes"
    message = f"RayCluster {cluster['metadata']['name']} requests {requested} nvidia.com/gpu; nodes advertise " \
              f"{allocatable} ({per_node})"
    if requested > allocatable:
        return Observation(False, message, cause="short",
                           figures={"gpus_requested": str(requested), "gpus_allocatable": str(allocatable)})
    return Observation(True, message)


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


def worker_visible(obs: Observation, count: int) -> Observation:
    """Judge the deep probe: every task got a GPU, and no two Ray GPUs are one physical card."""
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
        return Observation(False, f"{seen}, but {len(phantom)} of them name a GPU the container does not have: "
                           f"{named}{' ...' if len(phantom) > 4 else ''}", cause="phantom",
                           figures={"phantom": phantom[0], "phantom_count": str(len(phantom))})
    shared = {u: where for u, where in physical.items() if len(where) > 1}
    if shared:
        detail = "; ".join(f"{u[:16]}... serves {', '.join(w)}" for u, w in list(shared.items())[:3])
        return Observation(False, f"{seen}, but {len(shared)} physical GPUs serve more than one Ray GPU: {detail}",
                           cause="shared")
    identity = f"{len(physical)} distinct GPU UUIDs" if physical else "no nvidia-smi: physical identity not read"
    return Observation(True, f"{seen}; {identity}")


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
