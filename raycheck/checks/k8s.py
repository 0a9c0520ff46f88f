"""The RayCluster and its head Service, as cluster state shows them (checks ``k8s.*``)."""

from __future__ import annotations

from typing import Any

from raycheck.model.kuberay import (
    DEFAULT_HEAD_PORTS, desired_workers, expand_raycluster, head_service_name, not_created, pod_ready, pod_trouble,
    ray_container,
)
from raycheck.model.netpol import Endpoint, PolicySet, Verdict, asks_namespace_labels, container_ports, flow
from raycheck.model.raycluster_patch import HEAD_GROUP, append, as_json, container_at, scale, set_field
from raycheck.cluster.coverage import NoEvidence, NotApplied, NotCovered
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
    if (cluster.get("spec") or {}).get("suspend") is True:
        said = kuberay_says(cluster)
        return Observation(False, f"{where} is suspended (spec.suspend: true): KubeRay deleted its pods and "
                           "makes none until it is resumed" + (f"; KubeRay: {said}" if said else ""), cause="suspended")
    pods = view.ray_pods()
    if why := not_created(pods):
        raise NotApplied(f"the pods of RayCluster {target.cluster_name}", why,
                         "whether they become ready is known once KubeRay has made them")
    heads = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    workers = [p for p in pods if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "worker"]
    desired = sum(desired_workers(g) for g in (cluster.get("spec") or {}).get("workerGroupSpecs") or [])
    ready_workers = sum(pod_ready(p) for p in workers)
    troubles = sorted({t for p in heads + workers if (t := pod_trouble(p))})
    said = "; ".join(x for x in (kuberay_says(cluster), _kuberay_warning(view, cluster)) if x) or None
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
        gpu_short = _scale_to_ready(cluster, workers, "nvidia.com/gpu")
        cause = "quota" if quota else ("gpu-pending" if "scale_patch" in gpu_short else "gpu-unschedulable") \
            if gpu_short else \
            "gcs-wait" if any("wait-gcs-ready" in t for t in troubles) else "workers-not-ready"
        return Observation(False, message, cause=cause, figures={**figures, **(gpu_short or {})})
    return Observation(True, message, figures=figures)


def _scale_to_ready(cluster: Object, workers: list[Object], resource: str) -> dict[str, str] | None:
    """For workers the scheduler cannot place for want of ``resource``: the group they belong to, and
    the patch that asks for the workers of it that do run (None when no pod waits for ``resource``)."""
    waiting = [p for p in workers if resource in (pod_trouble(p) or "")]
    if not waiting:
        return None
    group = (waiting[0]["metadata"].get("labels") or {}).get("ray.io/group", "")
    running = sum(1 for p in workers if pod_ready(p) and (p["metadata"].get("labels") or {}).get("ray.io/group") == group)
    ops = scale(cluster, group, running) if running else None  # none runs: scaling to zero is no fix
    return {"pending_group": group, **({"scale_patch": as_json(ops)} if ops else {})}


def _kuberay_warning(view: ClusterView, cluster: Object) -> str | None:
    """KubeRay's last Warning event on the RayCluster, quoted (``FailedToCreateHeadPod``: 'pods
    "..." is forbidden: exceeded quota: ...'): its status may say ready while no pod could be made."""
    namespace, name = cluster["metadata"].get("namespace", view.target.ray_namespace), cluster["metadata"]["name"]
    if not view.covers("Event", namespace):
        return None
    try:
        events = view.list("Event", namespace)
    except ClusterReadError:
        return None
    warnings = sorted((e for e in events if e.get("type") == "Warning"
                       and (e.get("involvedObject") or {}).get("kind") == "RayCluster"
                       and (e.get("involvedObject") or {}).get("name") == name),
                      key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    if not warnings:
        return None
    last = warnings[-1]
    return f"event {last.get('reason', 'Warning')}: {str(last.get('message', ''))[:300]}"


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
        figures = {"service_ports": shown}
        cause = "no-client-port-by-hand"
        if cluster is not None:
            ops = declare_client_port(cluster, target.client_port)
            cause = "no-client-port" if ops else "stale-service"
            figures["client_port_patch"] = as_json(ops)
        return Observation(False, f"{where} has no port named 'client' on {target.client_port} (ports: {shown}){why}",
                           cause=cause, figures=figures)
    if why := not_created([service]):
        raise NotApplied(f"Service {target.head_service} and the head pod it selects", why,
                         f"its client port {target.client_port} is declared; its endpoints exist once the head runs")
    addresses, basis = ready_endpoints(view, service)
    if not addresses:
        return Observation(False, f"{where} has port client {target.client_port} but no ready endpoints "
                           f"({basis})", cause="no-endpoints")
    kind = "headless" if (service.get("spec") or {}).get("clusterIP") == "None" else "ClusterIP"  # before KubeRay 1.2
    gcs = next((f"{n} {ports[n]}" for n in GCS_PORT_NAMES if n in ports), None)
    return Observation(True, f"{where} ({kind}) has port client {target.client_port}"
                       + (f", GCS port {gcs}" if gcs else "") + f" and ready endpoints "
                       f"{', '.join(addresses[:4])}{' ...' if len(addresses) > 4 else ''} ({basis})")


def declare_client_port(cluster: Object, port: int) -> list[dict[str, Any]]:
    """The patch that makes the head's Ray container declare ``client`` on ``port`` (KubeRay's head
    Service copies the declared ports): name the port where it is declared unnamed or otherwise, else
    add it; nothing when it is declared already (the Service predates it)."""
    at = container_at(cluster, HEAD_GROUP)
    container = ray_container(((cluster.get("spec") or {}).get("headGroupSpec") or {}).get("template", {}).get("spec") or {})
    if not container.get("ports"):
        # KubeRay's defaults: client is among them on 10001; declaring one port would drop the others
        if port == DEFAULT_HEAD_PORTS["client"]:
            return []
        return set_field(cluster, HEAD_GROUP, (*at, "ports"), [
            {"name": name, "containerPort": port if name == "client" else number, "protocol": "TCP"}
            for name, number in DEFAULT_HEAD_PORTS.items()])
    for index, declared in enumerate(container.get("ports") or []):
        if declared.get("containerPort") == port:
            if declared.get("name") == "client":
                return []
            return set_field(cluster, HEAD_GROUP, (*at, "ports", index, "name"), "client")
    return append(cluster, HEAD_GROUP, (*at, "ports"), {"name": "client", "containerPort": port, "protocol": "TCP"})


def _declared_head_ports(cluster: Object | None) -> str | None:
    """The port names the RayCluster's head container declares (None when it declares none: KubeRay
    gives the Service its defaults, client 10001 among them)."""
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
    except (ClusterReadError, NoEvidence):
        return None
    if observation.cause == "missing":
        return "service-missing", observation.message
    if observation.cause == "no-endpoints":
        return "no-endpoints", observation.message
    return None



# ----------------------------------------------------------------------------- the client's network path

KUBE_DNS = {"k8s-app": "kube-dns"}  # CoreDNS keeps kube-dns's label
DNS_PORTS = {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")}
HASH_LABELS = ("pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name")


def client_path(view: ClusterView) -> Observation:
    """May the agents' pods open the head's client and dashboard ports, and ask cluster DNS? Egress
    policies of the client namespace and ingress policies of the Ray namespace (and of kube-system,
    where read), evaluated as the NetworkPolicy API defines them. Fails only on a path some policy
    certainly denies; what the evidence cannot decide is skipped, saying what would decide it."""
    target = view.target
    policies = view.list("NetworkPolicy", target.ray_namespace)
    if target.client_namespace != target.ray_namespace:
        policies = policies + view.list("NetworkPolicy", target.client_namespace)
    dns_ingress_read = _optional(view, "NetworkPolicy", "kube-system")
    policies += dns_ingress_read or []
    namespaces = _optional(view, "Namespace", None)
    labels = None if namespaces is None else {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                                              for n in namespaces}
    rules = PolicySet(policies, labels)
    head, dns, clients = _head_endpoint(view), _dns_endpoint(view), _client_endpoints(view)
    head_ports = {"client": _pod_port(head, "client", target.client_port),
                  "dashboard": _pod_port(head, "dashboard", target.dashboard_port)}
    paths = [(f"{head} {head_ports['client']}/TCP (client)", head, head_ports["client"], "TCP", "client"),
             (f"{head} {head_ports['dashboard']}/TCP (dashboard)", head, head_ports["dashboard"], "TCP", "dashboard"),
             (f"DNS {dns} 53/UDP", dns, 53, "UDP", "dns"), (f"DNS {dns} 53/TCP", dns, 53, "TCP", "dns")]
    denied: dict[str, list[str]] = {}
    unknown, admitted, blocking, blocked_ports = [], [], set(), set()
    blocked_sides: set[str] = set()
    for client in clients:
        for what, destination, port, protocol, label in paths:
            out = rules.egress(client, destination, port, protocol)
            into = rules.ingress(destination, client, port, protocol) \
                if destination is head or dns_ingress_read is not None else Verdict(True, ())
            for side, verdict, where in (("egress", out, target.client_namespace),
                                         ("ingress", into, destination.namespace)):
                if verdict.allowed is False:
                    blocked_sides.add(side if side == "egress" or destination is head else "dns-ingress")
                    blocking.update(f"{where}/{name}" for name in verdict.deciding)
                    blocked_ports.add(label)
                    denied.setdefault(f"{side} of {client} is denied by NetworkPolicy {', '.join(verdict.deciding)} "
                                      f"in {where} (no {side} rule admits it) to", []).append(what)
                elif verdict.allowed is None:
                    unknown.append(f"{side} {client} -> {what} (NetworkPolicy {', '.join(verdict.deciding)} in {where})")
                elif verdict.deciding:
                    admitted.append(f"{side} by {', '.join(verdict.deciding)}")
    if denied:
        common = _common_labels(clients)
        figures = {"client_labels": flow(common), "client_labels_arg": ",".join(f"{k}={v}" for k, v in sorted(common.items()))
                   or "app=raycheck-probe", "head_client_port": str(head_ports["client"]),
                   "head_dashboard_port": str(head_ports["dashboard"]), "dns_labels": flow(dict(dns.labels or KUBE_DNS)),
                   "blocking": ", ".join(sorted(blocking)), "blocked_ports": ",".join(sorted(blocked_ports))}
        sides = blocked_sides - {"dns-ingress"}
        cause = "both" if len(sides) == 2 else sides.pop() if sides else "dns-ingress"
        return Observation(False, "; ".join(f"{why}: {', '.join(what)}" for why, what in denied.items()),
                           cause=cause, figures=figures)
    if unknown:
        raise _undecided(view, clients, labels, policies, unknown)
    where = "; ".join(sorted(set(admitted))) or "no NetworkPolicy isolates either side"
    caveat = "" if dns_ingress_read is not None else " (kube-system's ingress policies not read)"
    # a CNI's own policies (CiliumNetworkPolicy, Calico's GlobalNetworkPolicy) are no NetworkPolicy: said,
    # so that a pass is not read as more than it is
    return Observation(True, f"{', '.join(str(c) for c in clients)} may reach {head} on {head_ports['client']} and "
                       f"{head_ports['dashboard']} and cluster DNS on 53: {where}{caveat} (Kubernetes NetworkPolicies; "
                       "a CNI's own policies, such as CiliumNetworkPolicy or Calico's, are not read)")


def _optional(view: ClusterView, kind: str, namespace: str | None, labels: dict[str, str] | None = None,
              fields: dict[str, str] | None = None) -> list[Object] | None:
    """A list that only sharpens the verdict: None where the source does not hold it or may not read it."""
    if not view.covers(kind, namespace):
        return None
    try:
        return view.list(kind, namespace, labels, fields)
    except ClusterReadError:
        return None


def _head_endpoint(view: ClusterView) -> Endpoint:
    """The head pod as policies see it: its labels, IP and named ports; from the RayCluster's template
    (the labels KubeRay gives it) when the pods are not in the cluster state."""
    target = view.target
    try:
        heads = [p for p in view.ray_pods() if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    except NotCovered:
        heads = []
    if heads:
        pod = heads[0]
        return Endpoint(target.ray_namespace, pod["metadata"].get("labels") or {}, (pod.get("status") or {}).get("podIP"),
                        container_ports(pod.get("spec") or {}), pod["metadata"]["name"])
    cluster = view.raycluster()
    if cluster is None:
        return Endpoint(target.ray_namespace, {"ray.io/cluster": target.cluster_name, "ray.io/node-type": "head"},
                        name=f"{target.cluster_name} head")
    head_pod = next(o for o in expand_raycluster(cluster) if o["kind"] == "Pod")
    return Endpoint(target.ray_namespace, head_pod["metadata"]["labels"], None,
                    container_ports(head_pod["spec"]), f"{target.cluster_name} head")


def _dns_endpoint(view: ClusterView) -> Endpoint:
    for pod in _optional(view, "Pod", "kube-system", labels=KUBE_DNS) or []:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("k8s-app") == "kube-dns":
            return Endpoint("kube-system", labels, (pod.get("status") or {}).get("podIP"),
                            container_ports(pod.get("spec") or {}) or DNS_PORTS, pod["metadata"]["name"])
    return Endpoint("kube-system", KUBE_DNS, None, DNS_PORTS)


def _client_endpoints(view: ClusterView) -> list[Endpoint]:
    """The agents' pods: the target's client_pod_labels; else the label sets of the client
    namespace's pods that run as the client ServiceAccount; else some pod of the namespace."""
    target = view.target
    if target.client_pod_labels is not None:
        return [Endpoint(target.client_namespace, target.client_pod_labels)]
    pods = _optional(view, "Pod", target.client_namespace, fields={"spec.serviceAccountName": target.service_account})
    sets: dict[frozenset[tuple[str, str]], Endpoint] = {}
    for pod in pods or []:
        if (pod.get("spec") or {}).get("serviceAccountName") == target.service_account:
            labels = {k: v for k, v in (pod["metadata"].get("labels") or {}).items() if k not in HASH_LABELS}
            sets.setdefault(frozenset(labels.items()), Endpoint(target.client_namespace, labels,
                                                                (pod.get("status") or {}).get("podIP")))
    return list(sets.values())[:5] or [Endpoint(target.client_namespace, None)]


def _common_labels(clients: list[Endpoint]) -> dict[str, str]:
    """The labels every agent pod carries: the podSelector of a policy scoped to them ({} when unknown)."""
    known = [dict(c.labels) for c in clients if c.labels is not None]
    if not known:
        return {}
    return {k: v for k, v in known[0].items() if all(other.get(k) == v for other in known[1:])}


def _pod_port(endpoint: Endpoint, name: str, default: int) -> int:
    """The container port a NetworkPolicy must name: the head's port of that name, else the Service's."""
    return endpoint.ports.get(name, (default, "TCP"))[0]


def _undecided(view: ClusterView, clients: list[Endpoint], namespaces: object, policies: list[Object],
               unknown: list[str]) -> NotCovered:
    """What keeps the verdict open, as the evidence to add."""
    target = view.target
    detail = f"cannot decide {'; '.join(unknown[:2])}"
    if namespaces is None and asks_namespace_labels(policies):
        return NotCovered("Namespace", None, view.source.name, view.source.how_to_add("Namespace", None),
                          f"{detail}: a namespaceSelector asks for labels")
    if any(c.labels is None for c in clients):
        return NotCovered("Pod", target.client_namespace, view.source.name,
                          f"set raycheck.client_pod_labels in the target file, or "
                          f"{view.source.how_to_add('Pod', target.client_namespace)}",
                          f"{detail}: which pods are the agents is not known")
    return NotCovered("Pod", target.ray_namespace, view.source.name,
                      view.source.how_to_add("Pod", target.ray_namespace), f"{detail}: pod IPs decide an ipBlock")
