"""KubeRay's own rules, as its operator applies them: how many workers a group wants, and the
pods and head Service it makes of a RayCluster (names, labels, ports), not yet scheduled.

The overlay (``--with-manifests``), the capacity model and the checks all reason with these, so
they live here once, apart from any of them.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

Object = dict[str, Any]

KUBERAY_LABELS = {"app.kubernetes.io/created-by": "kuberay-operator", "app.kubernetes.io/name": "kuberay"}
INT32_MAX = 2147483647


def suffix(seed: str) -> str:
    """A stable 5-character pod-name suffix in Kubernetes' alphabet."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:5])


def desired_workers(group: dict[str, Any]) -> int:
    """KubeRay's desired pod count for a worker group: replicas clamped to [min, max], times hosts."""
    if group.get("suspend"):
        return 0
    minimum = int(group.get("minReplicas", 0) or 0)
    maximum = int(group.get("maxReplicas", INT32_MAX) if group.get("maxReplicas") is not None else INT32_MAX)
    replicas = int(group.get("replicas", minimum) if group.get("replicas") is not None else minimum)
    return max(minimum, min(replicas, maximum)) * int(group.get("numOfHosts", 1) or 1)


def _pod(cluster: Object, name: str, node_type: str, group: str, template: dict[str, Any]) -> Object:
    meta = cluster["metadata"]
    spec = copy.deepcopy(template.get("spec") or {})
    inject_shm(spec)
    if node_type == "head":
        inject_autoscaler(cluster, spec)
    labels = {**(template.get("metadata") or {}).get("labels", {}), **KUBERAY_LABELS,
              "ray.io/cluster": meta["name"], "ray.io/group": group, "ray.io/node-type": node_type,
              "ray.io/is-ray-node": "yes", "ray.io/identifier": f"{meta['name']}-{node_type}"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": meta.get("namespace", "default"), "labels": labels,
                     "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": meta["name"],
                                          "controller": True}]},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


# KubeRay's autoscaler sidecar when the RayCluster asks for none of its own (BuildAutoscalerContainer)
AUTOSCALER_RESOURCES = {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "500m", "memory": "512Mi"}}


def inject_autoscaler(cluster: Object, spec: dict[str, Any]) -> None:
    """The autoscaler sidecar KubeRay adds to the head pod under ``enableInTreeAutoscaling``: it
    takes the head node's CPU and memory too (``autoscalerOptions.resources``, else 500m and 512Mi)."""
    cluster_spec = cluster.get("spec") or {}
    containers = spec.setdefault("containers", [])
    if not cluster_spec.get("enableInTreeAutoscaling") or any(
            isinstance(c, dict) and c.get("name") == AUTOSCALER_CONTAINER for c in containers):
        return
    options = cluster_spec.get("autoscalerOptions") or {}
    image = options.get("image") or ray_container(spec).get("image") or ""
    containers.append({"name": AUTOSCALER_CONTAINER, "image": image,
                       "resources": copy.deepcopy(options.get("resources") or AUTOSCALER_RESOURCES)})


# on the pods and head Service KubeRay would make but has not (the overlay's of --with-manifests, the
# ones a remediation's change makes it create): their spec is evidence, their state (unscheduled, not
# ready, never restarted) is not
NOT_CREATED = "raycheck.io/not-created"


def mark_not_created(obj: Object, why: str) -> Object:
    """``obj`` marked as made by raycheck's reading of KubeRay, not by KubeRay: ``why`` says when it would be."""
    obj.setdefault("metadata", {}).setdefault("annotations", {})[NOT_CREATED] = why
    return obj


def not_created(objects: list[Object]) -> str | None:
    """Why ``objects`` do not exist yet, when every one of them is so marked (None when any exists, or none is given)."""
    whys = [((o.get("metadata") or {}).get("annotations") or {}).get(NOT_CREATED) for o in objects]
    return whys[0] if whys and all(whys) else None


# the head Service's ports when the head's Ray container declares none (KubeRay's getDefaultPorts)
DEFAULT_HEAD_PORTS = {"client": 10001, "dashboard": 8265, "gcs-server": 6379, "metrics": 8080, "serve": 8000}


def head_service_ports(cluster: Object) -> dict[str, int]:
    """The ports KubeRay gives the head Service (``getServicePorts``): the head's Ray container's
    declared ports (an unnamed one as ``<port>-port``), its defaults when it declares none, and
    ``metrics`` 8080 when not declared. Sorted by name, as KubeRay sorts them."""
    template = (((cluster.get("spec") or {}).get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}
    declared = {(p.get("name") or f"{p.get('containerPort')}-port"): int(p["containerPort"])
                for p in ray_container(template).get("ports") or [] if isinstance(p.get("containerPort"), int)}
    ports = declared or dict(DEFAULT_HEAD_PORTS)
    ports.setdefault("metrics", DEFAULT_HEAD_PORTS["metrics"])
    return dict(sorted(ports.items()))


def expand_raycluster(cluster: Object) -> list[Object]:
    """The head Service and pods KubeRay would create for ``cluster``."""
    meta, spec = cluster["metadata"], cluster["spec"]
    name, namespace = meta["name"], meta.get("namespace", "default")
    head = spec["headGroupSpec"]
    out = [_pod(cluster, f"{name}-head-{suffix(f'{namespace}/{name}/head')}", "head", "headgroup", head["template"])]
    if spec.get("suspend"):  # a suspended RayCluster has no pods: KubeRay deletes them all
        out = []
    for group in [] if spec.get("suspend") else spec.get("workerGroupSpecs") or []:
        group_name = group["groupName"]
        for i in range(desired_workers(group)):
            pod_name = f"{name}-{group_name}-worker-{suffix(f'{namespace}/{name}/{group_name}/{i}')}"
            out.append(_pod(cluster, pod_name, "worker", group_name, group["template"]))
    ports = [{"name": port_name, "port": number, "targetPort": number, "protocol": "TCP"}
             for port_name, number in head_service_ports(cluster).items()]
    service_name = head_service_name(cluster)
    out.append({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service_name, "namespace": namespace,
                     "labels": {**KUBERAY_LABELS, "ray.io/cluster": name, "ray.io/node-type": "head"}},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "ports": ports,
                 "selector": {**KUBERAY_LABELS, "ray.io/cluster": name, "ray.io/node-type": "head"}},
    })
    return out + network_policies(cluster)


NETWORK_POLICY_TYPES = {"DenyAll": ["Ingress", "Egress"], "DenyAllIngress": ["Ingress"], "DenyAllEgress": ["Egress"]}


def network_policies(cluster: Object) -> list[Object]:
    """The NetworkPolicies KubeRay makes for ``spec.networkPolicy.mode`` (named as its controller
    names them, ``<cluster>-head`` and ``<cluster>-workers``): the pods of the same RayCluster are
    admitted, plus the rules the spec adds (``head``, ``worker``); everything else is denied."""
    spec = cluster.get("spec") or {}
    settings = spec.get("networkPolicy") or {}
    types = NETWORK_POLICY_TYPES.get(settings.get("mode", ""))
    if not types:
        return []
    meta = cluster["metadata"]
    same = [{"podSelector": {"matchLabels": {"ray.io/cluster": meta["name"]}}}]
    out = []
    for node_type, suffix, own in (("head", "head", settings.get("head") or {}),
                                   ("worker", "workers", settings.get("worker") or {})):
        policy: Object = {"podSelector": {"matchLabels": {"ray.io/cluster": meta["name"], "ray.io/node-type": node_type}},
                          "policyTypes": types}
        if "Ingress" in types:
            policy["ingress"] = [{"from": same}] + list(own.get("ingressRules") or [])
        if "Egress" in types:
            policy["egress"] = [{"to": same}] + list(own.get("egressRules") or [])
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": f"{meta['name']}-{suffix}", "namespace": meta.get("namespace", "default"),
                                 "labels": {**KUBERAY_LABELS, "ray.io/cluster": meta["name"]}},
                    "spec": policy})
    return out


def head_service_name(cluster: Object) -> str:
    """The head Service's name as KubeRay has it: from its status, else the spec's override, else its default."""
    head = cluster.get("spec", {}).get("headGroupSpec") or {}
    return ((cluster.get("status") or {}).get("head") or {}).get("serviceName") \
        or ((head.get("headService") or {}).get("metadata") or {}).get("name") \
        or f"{cluster['metadata']['name']}-head-svc"


# ----------------------------------------------------------------------------- pods as KubeRay makes them

AUTOSCALER_CONTAINER = "autoscaler"


def ray_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """The container Ray runs in, found as KubeRay finds it rather than by position: the autoscaler
    sidecar KubeRay injects into the head can come first. The one that runs ``ray start``, else the
    first that is not the sidecar; an empty mapping for a spec without containers."""
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, dict)]
    starts = [c for c in containers
              if "ray start" in " ".join(str(part) for part in (c.get("command") or []) + (c.get("args") or []))]
    others = [c for c in containers if c.get("name") != AUTOSCALER_CONTAINER]
    return (starts or others or containers or [{}])[0]


def ray_container_index(pod_spec: dict[str, Any]) -> int:
    """The Ray container's position in ``containers``: a JSON patch addresses it by index."""
    container = ray_container(pod_spec)
    return next((i for i, c in enumerate(pod_spec.get("containers") or []) if c is container), 0)


TOKEN_AUTH_SINCE = (2, 52)  # Ray's token authentication (RAY_AUTH_MODE=token) exists from 2.52


@dataclass(frozen=True)
class TokenAuth:
    """Whether the Ray cluster requires a token, and what says so."""

    required: bool
    evidence: str  # "token authentication required: spec.authOptions.mode: token", "unauthenticated in Ray 2.49.2"


def ray_version(cluster: Object | None, pod: Object | None) -> tuple[int, ...] | None:
    """The cluster's Ray version: ``spec.rayVersion``, else the tag of the head's Ray image."""
    text = str(((cluster or {}).get("spec") or {}).get("rayVersion") or "")
    if not text and pod is not None:
        text = str(ray_container(pod.get("spec") or {}).get("image", "")).rpartition(":")[2].split("-")[0]
    parts = text.split(".")
    return tuple(int(p) for p in parts[:3]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:3]) else None


def token_auth(cluster: Object | None, head: Object | None) -> TokenAuth:
    """Token authentication as the cluster's objects show it: KubeRay's ``spec.authOptions.mode:
    token`` (it injects ``RAY_AUTH_MODE=token`` into every container), or ``RAY_AUTH_MODE=token`` in
    the head's Ray container; only Ray >= 2.52 has it."""
    version = ray_version(cluster, head)
    shown = ".".join(map(str, version)) if version else None
    says = None
    if (((cluster or {}).get("spec") or {}).get("authOptions") or {}).get("mode") == "token":
        says = "spec.authOptions.mode: token"
    for source in (head, ((cluster or {}).get("spec") or {}).get("headGroupSpec")):
        spec = (source or {}).get("spec") or ((source or {}).get("template") or {}).get("spec") or {}
        env = {e.get("name"): e.get("value") for e in ray_container(spec).get("env") or [] if isinstance(e, dict)}
        if says is None and env.get("RAY_AUTH_MODE") == "token":
            says = "RAY_AUTH_MODE=token in the head container"
    if says and version is not None and version < TOKEN_AUTH_SINCE:
        return TokenAuth(False, f"unauthenticated: {says}, but Ray {shown} has no token authentication (2.52+)")
    if says:
        return TokenAuth(True, f"token authentication required: {says}")
    if version is not None and version < TOKEN_AUTH_SINCE:
        return TokenAuth(False, f"unauthenticated in Ray {shown}")
    return TokenAuth(False, "unauthenticated: no token authentication configured")


def ray_container_status(pod: Object) -> dict[str, Any] | None:
    """The status of the pod's Ray container (matched by name), None when the pod has none yet."""
    name = ray_container(pod.get("spec") or {}).get("name")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == name), None)


def pod_ready(pod: Object) -> bool:
    """Running, Ready, and not on its way out (a pod listed with a deletionTimestamp is terminating)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_trouble(pod: Object) -> str | None:
    """Why a pod is not ready, in the words ``kubectl get``/``describe`` would use; None if it is."""
    if pod_ready(pod):
        return None
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return f"Terminating since {meta['deletionTimestamp']}"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"Pending: {cond.get('message') or cond.get('reason') or 'unschedulable'}"
    init = _init_trouble(pod)
    if init is not None:
        return init
    own = ray_container_status(pod)
    for cs in ([own] if own else []) + [s for s in status.get("containerStatuses") or [] if s is not own]:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            restarts = cs.get("restartCount", 0)
            return f"{waiting['reason']}" + (f" ({restarts} restarts)" if restarts else "") + \
                (f" in {cs['name']}" if cs is not own and cs.get("name") else "")
    return status.get("phase") or "not ready"


def _init_trouble(pod: Object) -> str | None:
    """The init container that has not finished (KubeRay's workers wait in ``wait-gcs-ready`` until
    the head's GCS answers), and since when."""
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    for cs in statuses:
        state = cs.get("state") or {}
        done = state.get("terminated") or {}
        if done and done.get("exitCode", 0) == 0:
            continue
        name = cs.get("name", "?")
        if "running" in state:
            since = state["running"].get("startedAt")
            return f"Init: {name} running" + (" (waiting for the head's GCS)" if name == "wait-gcs-ready" else "") + \
                (f" since {since}" if since else "")
        if done:
            return f"Init: {name} failed (exit {done.get('exitCode')}{', ' + done['reason'] if done.get('reason') else ''})"
        waiting = state.get("waiting") or {}
        return f"Init: {name} {waiting.get('reason') or 'waiting'}"
    return None


def shm_volume(container: dict[str, Any]) -> dict[str, Any]:
    """The ``/dev/shm`` KubeRay injects into a Ray container that mounts none: a memory-backed
    emptyDir sized to the container's memory limit (the object store lives there)."""
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    empty_dir: dict[str, Any] = {"medium": "Memory"}
    if limit is not None:
        empty_dir["sizeLimit"] = limit
    return {"name": "shared-mem", "emptyDir": empty_dir}


def inject_shm(pod_spec: dict[str, Any]) -> None:
    """Add KubeRay's ``/dev/shm`` to ``pod_spec`` (in place) unless its Ray container mounts one."""
    container = ray_container(pod_spec)
    if not container or any(m.get("mountPath") == "/dev/shm" for m in container.get("volumeMounts") or []):
        return
    pod_spec.setdefault("volumes", []).append(shm_volume(container))
    container.setdefault("volumeMounts", []).append({"name": "shared-mem", "mountPath": "/dev/shm"})
