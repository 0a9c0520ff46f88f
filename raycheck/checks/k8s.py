"""The RayCluster and its head Service, as cluster state shows them (checks ``k8s.*``)."""

from __future__ import annotations

from raycheck.model.kuberay import desired_workers, pod_ready, pod_trouble, ray_container
from raycheck.cluster.coverage import NotCovered
from raycheck.cluster.source import ClusterReadError, Object
from raycheck.cluster.view import ClusterView
from raycheck.observation import Observation


# GCS port names seen in head Services: KubeRay's default, its samples', and older ones'
GCS_PORT_NAMES = ("gcs-server", "gcs", "redis")


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
    ready_workers = sum(pod_ready(p) for p in workers)
    troubles = sorted({t for p in heads + workers if (t := pod_trouble(p))})
    said = kuberay_says(cluster)
    figures = {"pod_trouble": "; ".join(troubles) or "none", "desired_workers": str(desired),
               "ready_workers": str(ready_workers), "kuberay_says": said or "nothing"}
    head = next((p for p in heads if pod_ready(p)), heads[0] if heads else None)  # a replacement may be starting
    head_text = "no head pod" if head is None else \
        f"head {head['metadata']['name']} " + ("ready" if pod_ready(head) else f"not ready ({pod_trouble(head)})")
    # the pods decide; KubeRay's status is quoted (it may lack a state, or say ready while workers are Pending)
    message = f"{where}: {head_text}, {ready_workers}/{desired} workers ready"
    if troubles:
        message += f"; {_describe_troubles(heads + workers)}"
    if said:
        message += f"; KubeRay: {said}"
    quota = "exceeded quota" in (said or "") or any("exceeded quota" in t for t in troubles)
    if head is None or not pod_ready(head):
        return Observation(False, message, cause="quota" if quota else "head-not-ready", figures=figures)
    if ready_workers < desired:
        cause = "quota" if quota else "gpu-pending" if any("nvidia.com/gpu" in t for t in troubles) else \
            "gcs-wait" if any("wait-gcs-ready" in t for t in troubles) else "workers-not-ready"
        return Observation(False, message, cause=cause, figures=figures)
    return Observation(True, message, figures=figures)


def kuberay_says(cluster: Object) -> str | None:
    """What the RayCluster's status tells, quoted: its state (absent on old KubeRay), the reason of a
    failed state, and the conditions that are not as they should be (with reason and message)."""
    status = cluster.get("status") or {}
    parts = []
    if status.get("state"):
        parts.append(f"state {status['state']}" + (f" ({status['reason']})" if status.get("reason") else ""))
    elif status.get("reason"):
        parts.append(f"reason {status['reason']}")
    for cond in status.get("conditions") or []:
        kind, value = cond.get("type"), cond.get("status")
        bad = (kind == "ReplicaFailure" and value == "True") or (kind in ("HeadPodReady", "RayClusterProvisioned")
                                                                and value == "False")
        if bad:
            detail = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            parts.append(f"{kind}={value}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts) or None


def _describe_troubles(pods: list[Object]) -> str:
    """Pod troubles counted: "8 pods Init: wait-gcs-ready running (...), the longest since <time>"."""
    counts: dict[str, list[str]] = {}
    for pod in pods:
        trouble = pod_trouble(pod)
        if trouble:
            text, _, since = trouble.partition(" since ")
            counts.setdefault(text, []).append(since)
    out = []
    for text, sinces in sorted(counts.items()):
        n = len(sinces)
        times = sorted(s for s in sinces if s)
        when = (f" since {times[0]}" if n == 1 else f", the longest since {times[0]}") if times else ""
        out.append(f"{n} pod{'s' if n > 1 else ''} {text}{when}")
    return ", ".join(out)


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
    cluster = view.raycluster_if_known()
    if service is None:
        actual = head_service_name(cluster) if cluster is not None else None
        hint = f"; the RayCluster's head service is {actual}" if actual and actual != target.head_service else ""
        return Observation(False, f"{where} not found{hint}", cause="missing",
                           figures={"actual_service": actual or "none"})
    ports = {p.get("name"): p.get("port") for p in (service.get("spec") or {}).get("ports") or []}
    if ports.get("client") != target.client_port:
        shown = ", ".join(f"{n or '(unnamed)'}={p}" for n, p in ports.items()) or "none"
        declared = _declared_head_ports(cluster)
        why = f"; the head container declares only {declared}, and KubeRay's Service copies the declared ports" \
            if declared and "client" not in declared else ""
        return Observation(False, f"{where} has no port named 'client' on {target.client_port} (ports: {shown}){why}",
                           cause="no-client-port", figures={"service_ports": shown})
    addresses, basis = ready_endpoints(view, service)
    if not addresses:
        return Observation(False, f"{where} has port client {target.client_port} but no ready endpoints "
                           f"({basis})", cause="no-endpoints")
    kind = "headless" if (service.get("spec") or {}).get("clusterIP") == "None" else "ClusterIP"  # before KubeRay 1.2
    gcs = next((f"{n} {ports[n]}" for n in GCS_PORT_NAMES if n in ports), None)
    return Observation(True, f"{where} ({kind}) has port client {target.client_port}"
                       + (f", GCS port {gcs}" if gcs else "") + f" and ready endpoints "
                       f"{', '.join(addresses[:4])}{' ...' if len(addresses) > 4 else ''} ({basis})")


def head_service_name(cluster: Object) -> str | None:
    """The head Service's name as KubeRay has it: from its status, else the spec's override, else its default."""
    head = cluster.get("spec", {}).get("headGroupSpec") or {}
    return ((cluster.get("status") or {}).get("head") or {}).get("serviceName") \
        or ((head.get("headService") or {}).get("metadata") or {}).get("name") \
        or f"{cluster['metadata']['name']}-head-svc"


def _declared_head_ports(cluster: Object | None) -> str | None:
    """The port names the RayCluster's head container declares (None when it declares none: KubeRay adds its defaults)."""
    if cluster is None:
        return None
    template = ((cluster.get("spec") or {}).get("headGroupSpec") or {}).get("template") or {}
    ports = ray_container(template.get("spec") or {}).get("ports") or []
    return ", ".join(f"{p.get('name') or '(unnamed)'} {p.get('containerPort')}" for p in ports) or None


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

