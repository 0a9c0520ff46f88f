"""The RayCluster and its head Service, as cluster state shows them (checks ``k8s.*``)."""

from __future__ import annotations

from raycheck.model.kuberay import desired_workers
from raycheck.cluster.coverage import NotCovered
from raycheck.cluster.source import ClusterReadError, Object
from raycheck.cluster.view import ClusterView
from raycheck.observation import Observation


def pod_ready(pod: Object) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_trouble(pod: Object) -> str | None:
    """Why a pod is not ready, in the words ``kubectl describe`` would use; None if it is."""
    if pod_ready(pod):
        return None
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            restarts = cs.get("restartCount", 0)
            return f"{waiting['reason']}" + (f" ({restarts} restarts)" if restarts else "")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"Pending: {cond.get('message') or cond.get('reason') or 'unschedulable'}"
    return status.get("phase") or "not ready"


def raycluster_ready(view: ClusterView) -> Observation:
    target = view.target
    where = f"RayCluster {target.cluster_name} in {target.ray_namespace}"
    try:
        cluster = view.raycluster()
    except ClusterReadError as exc:
        if exc.status == 404:  # the list endpoint itself is missing: no CRD
            return Observation(False, f"the API has no rayclusters.ray.io ({exc.detail}): KubeRay is not installed",
                               cause="no-crd")
        raise
    if cluster is None:
        return Observation(False, f"{where} not found", cause="missing")
    pods = view.ray_pods()
    heads = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    workers = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker"]
    desired = sum(desired_workers(g) for g in (cluster.get("spec") or {}).get("workerGroupSpecs") or [])
    status = cluster.get("status") or {}
    ready_workers = sum(pod_ready(p) for p in workers)
    state = status.get("state") or "unknown"
    troubles = sorted({t for p in heads + workers if (t := pod_trouble(p))})
    figures = {"pod_trouble": "; ".join(troubles) or "none", "desired_workers": str(desired),
               "ready_workers": str(ready_workers)}
    head_text = f"head {heads[0]['metadata']['name']} ready" if heads and pod_ready(heads[0]) else \
        (f"head {heads[0]['metadata']['name']} not ready ({pod_trouble(heads[0])})" if heads else "no head pod")
    message = f"{where}: {head_text}, {ready_workers}/{desired} workers ready (state {state})"
    if troubles:
        message += f"; {_describe_troubles(heads + workers)}"
    if not heads or not pod_ready(heads[0]):
        return Observation(False, message, cause="head-not-ready", figures=figures)
    if ready_workers < desired:
        cause = "gpu-pending" if any("nvidia.com/gpu" in t for t in troubles) else "workers-not-ready"
        return Observation(False, message, cause=cause, figures=figures)
    return Observation(True, message, figures=figures)


def _describe_troubles(pods: list[Object]) -> str:
    counts: dict[str, int] = {}
    for pod in pods:
        trouble = pod_trouble(pod)
        if trouble:
            counts[trouble] = counts.get(trouble, 0) + 1
    return ", ".join(f"{n} pod{'s' if n > 1 else ''} {t}" for t, n in sorted(counts.items()))


def ready_endpoints(view: ClusterView, service: Object) -> tuple[list[str], str]:
    """Ready endpoint addresses of a Service, from EndpointSlices or, without any, from its pods."""
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    slices = view.endpoint_slices(service["metadata"]["name"]) \
        if view.covers("EndpointSlice", service["metadata"].get("namespace")) else []
    if slices:
        addresses = [a for s in slices for e in s.get("endpoints") or []
                     if (e.get("conditions") or {}).get("ready", True) or publish_not_ready
                     for a in e.get("addresses") or []]
        return addresses, "EndpointSlices"
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return [], "no selector and no EndpointSlices"
    pods = view.list("Pod", service["metadata"].get("namespace"), dict(selector))
    addresses = [(p.get("status") or {}).get("podIP") or p["metadata"]["name"] for p in pods
                 if pod_ready(p) or (publish_not_ready and (p.get("status") or {}).get("podIP"))]
    return addresses, "selected pods"


def head_service(view: ClusterView) -> Observation:
    target = view.target
    service = view.head_service()
    where = f"Service {target.head_service} in {target.ray_namespace}"
    if service is None:
        cluster = view.raycluster()
        actual = ((cluster or {}).get("status") or {}).get("head", {}).get("serviceName")
        hint = f"; the RayCluster's head service is {actual}" if actual and actual != target.head_service else ""
        return Observation(False, f"{where} not found{hint}", cause="missing",
                           figures={"actual_service": actual or "none"})
    ports = {p.get("name"): p.get("port") for p in (service.get("spec") or {}).get("ports") or []}
    if ports.get("client") != target.client_port:
        shown = ", ".join(f"{n or '(unnamed)'}={p}" for n, p in ports.items()) or "none"
        return Observation(False, f"{where} has no port named 'client' on {target.client_port} (ports: {shown})",
                           cause="no-client-port", figures={"service_ports": shown})
    addresses, basis = ready_endpoints(view, service)
    if not addresses:
        return Observation(False, f"{where} has port client {target.client_port} but no ready endpoints "
                           f"({basis})", cause="no-endpoints")
    kind = "headless" if (service.get("spec") or {}).get("clusterIP") == "None" else "ClusterIP"
    return Observation(True, f"{where} ({kind}) has port client {target.client_port} and ready endpoints "
                       f"{', '.join(addresses[:4])}{' ...' if len(addresses) > 4 else ''} ({basis})")


def head_service_state(view: ClusterView | None) -> tuple[str, str] | None:
    """Why the head name may not resolve, from cluster state: (cause, message), or None if unknown."""
    if view is None:
        return None
    try:
        observation = head_service(view)
    except (ClusterReadError, NotCovered):
        return None
    if observation.cause == "missing":
        return "service-missing", observation.message
    if observation.cause == "no-endpoints":
        return "no-endpoints", observation.message
    return None

