"""The overlay source: manifests applied on top of a source, as ``kubectl apply`` would.

Objects are created or replaced by (kind, namespace, name). A RayCluster is expanded into what
KubeRay would create for it: the head Service and the pods (head, and each worker group's
replicas clamped to [minReplicas, maxReplicas] times numOfHosts), named and labelled as KubeRay
names and labels them, not yet scheduled. Pods of a replaced RayCluster disappear with it.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

from raycheck.cluster.kinds import KINDS
from raycheck.cluster.source import Object, Query, Source, select
from raycheck.config import ConfigError
from raycheck.scenario import iter_files, load_objects

KUBERAY_LABELS = {"app.kubernetes.io/created-by": "kuberay-operator", "app.kubernetes.io/name": "kuberay"}
INT32_MAX = 2147483647


def suffix(seed: str) -> str:
    """A stable 5-character pod-name suffix in Kubernetes' alphabet."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:5])


def key(obj: Object) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    namespaced = KINDS[obj["kind"]].namespaced if obj.get("kind") in KINDS else True
    return obj.get("kind", ""), (meta.get("namespace") or "default") if namespaced else "", meta.get("name", "")


def desired_workers(group: dict[str, Any]) -> int:
    """KubeRay's desired pod count for a worker group: replicas clamped to [min, max], times hosts."""
    if group.get("suspend"):
        return 0
    minimum = int(group.get("minReplicas", 0) or 0)
    maximum = int(group.get("maxReplicas", INT32_MAX) if group.get("maxReplicas") is not None else INT32_MAX)
    replicas = int(group.get("replicas", minimum) if group.get("replicas") is not None else minimum)
    return max(minimum, min(replicas, maximum)) * int(group.get("numOfHosts", 1) or 1)


def validate_raycluster(obj: Object, where: str) -> None:
    """The fields the RayCluster CRD requires; a manifest without them is bad input."""
    name = (obj.get("metadata") or {}).get("name")
    label = f"{where}: RayCluster {name or '(no name)'}"
    if not name:
        raise ConfigError(f"{label}: metadata.name is required")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise ConfigError(f"{label}: spec is required")
    head = spec.get("headGroupSpec")
    if not isinstance(head, dict) or not isinstance((head.get("template") or {}).get("spec"), dict):
        raise ConfigError(f"{label}: spec.headGroupSpec.template.spec is required")
    if not (head["template"]["spec"].get("containers") or []):
        raise ConfigError(f"{label}: spec.headGroupSpec.template.spec.containers must not be empty")
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        if not isinstance(group, dict) or not group.get("groupName"):
            raise ConfigError(f"{label}: spec.workerGroupSpecs[{i}].groupName is required")
        if not ((group.get("template") or {}).get("spec") or {}).get("containers"):
            raise ConfigError(f"{label}: spec.workerGroupSpecs[{i}].template.spec.containers is required")


def load_manifests(path: Path) -> list[Object]:
    """Manifests to overlay, each RayCluster checked for the fields the CRD requires."""
    objects: list[Object] = []
    for file in iter_files(path):
        for obj in load_objects(file):
            if obj.get("kind") == "RayCluster":
                validate_raycluster(obj, str(file))
            objects.append(obj)
    return objects


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


class OverlaySource:
    """``base`` with ``manifests`` applied over it."""

    def __init__(self, base: Source, manifests: list[Object]) -> None:
        self.base = base
        self.name = f"{base.name} + {len(manifests)} manifests"
        applied: dict[tuple[str, str, str], Object] = {}
        for obj in manifests:
            obj = copy.deepcopy(obj)
            if obj.get("kind") in KINDS and KINDS[obj["kind"]].namespaced:
                obj.setdefault("metadata", {}).setdefault("namespace", "default")
            applied[key(obj)] = obj
        self.replaced_clusters = {(k[1], k[2]) for k in applied if k[0] == "RayCluster"}
        # a RayCluster whose pods come with the manifests (a dump applied as manifests) is not expanded
        with_pods = {(k[1], (o["metadata"].get("labels") or {}).get("ray.io/cluster"))
                     for k, o in applied.items() if k[0] == "Pod"}
        for obj in list(applied.values()):
            if obj.get("kind") == "RayCluster" and key(obj)[1:] not in with_pods:
                for child in expand_raycluster(obj):
                    applied.setdefault(key(child), child)
        self.applied = applied

    def _shadowed(self, obj: Object) -> bool:
        if key(obj) in self.applied:
            return True
        meta = obj.get("metadata") or {}
        cluster = (meta.get("labels") or {}).get("ray.io/cluster")
        return obj.get("kind") == "Pod" and (meta.get("namespace", "default"), cluster) in self.replaced_clusters

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "source": self.name, "manifests_applied": len(self.applied)}

    def list(self, query: Query) -> list[Object]:
        kept = [obj for obj in self.base.list(query) if not self._shadowed(obj)]
        return kept + select(self.applied.values(), query)
