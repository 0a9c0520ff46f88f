"""KubeRay's own rules, as its operator applies them: how many workers a group wants, and the
pods and head Service it makes of a RayCluster (names, labels, ports), not yet scheduled.

The overlay (``--with-manifests``), the capacity model and the checks all reason with these, so
they live here once, apart from any of them.
"""

from __future__ import annotations

import copy
import hashlib
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
    labels = {**(template.get("metadata") or {}).get("labels", {}), **KUBERAY_LABELS,
              "ray.io/cluster": meta["name"], "ray.io/group": group, "ray.io/node-type": node_type,
              "ray.io/is-ray-node": "yes", "ray.io/identifier": f"{meta['name']}-{node_type}"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": meta.get("namespace", "default"), "labels": labels,
                     "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": meta["name"],
                                          "controller": True}]},
        "spec": copy.deepcopy(template.get("spec") or {}),
        "status": {"phase": "Pending"},
    }


def expand_raycluster(cluster: Object) -> list[Object]:
    """The head Service and pods KubeRay would create for ``cluster``."""
    meta, spec = cluster["metadata"], cluster["spec"]
    name, namespace = meta["name"], meta.get("namespace", "default")
    head = spec["headGroupSpec"]
    out = [_pod(cluster, f"{name}-head-{suffix(f'{namespace}/{name}/head')}", "head", "headgroup", head["template"])]
    for group in spec.get("workerGroupSpecs") or []:
        group_name = group["groupName"]
        for i in range(desired_workers(group)):
            pod_name = f"{name}-{group_name}-worker-{suffix(f'{namespace}/{name}/{group_name}/{i}')}"
            out.append(_pod(cluster, pod_name, "worker", group_name, group["template"]))
    ports = [{"name": p["name"], "port": p["containerPort"], "targetPort": p["containerPort"],
              "protocol": p.get("protocol", "TCP")}
             for c in head["template"]["spec"]["containers"][:1] for p in c.get("ports") or [] if p.get("name")]
    service_name = (head.get("headService") or {}).get("metadata", {}).get("name") or f"{name}-head-svc"
    out.append({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service_name, "namespace": namespace,
                     "labels": {**KUBERAY_LABELS, "ray.io/cluster": name, "ray.io/node-type": "head"}},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "ports": ports,
                 "selector": {**KUBERAY_LABELS, "ray.io/cluster": name, "ray.io/node-type": "head"}},
    })
    return out
