"""The overlay source: manifests applied on top of a source, as ``kubectl apply`` would.

Objects are created or replaced by (kind, namespace, name). A RayCluster is expanded into what
KubeRay would create for it: the head Service and the pods (head, and each worker group's
replicas clamped to [minReplicas, maxReplicas] times numOfHosts), named and labelled as KubeRay
names and labels them, not yet scheduled. Pods of a replaced RayCluster disappear with it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from raycheck.cluster.coverage import Coverage
from raycheck.cluster.kinds import KINDS
from raycheck.cluster.source import Object, Query, Source, select
from raycheck.errors import ConfigError
from raycheck.cluster.files import iter_files, load_objects
from raycheck.model.kuberay import expand_raycluster, mark_not_created


ADDITIVE_KINDS = ("NetworkPolicy",)
PROPOSED = "a RayCluster of --with-manifests, not applied yet"


def key(obj: Object) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    namespaced = KINDS[obj["kind"]].namespaced if obj.get("kind") in KINDS else True
    return obj.get("kind", ""), (meta.get("namespace") or "default") if namespaced else "", meta.get("name", "")


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
                    if child.get("kind") in ("Pod", "Service"):
                        mark_not_created(child, PROPOSED)
                    applied.setdefault(key(child), child)
        self.applied = applied
        # NetworkPolicies add up: the manifests' own say nothing of the policies already in the cluster,
        # so they cover nothing the base does not (a partial set would read as a denial)
        self._applied_coverage = Coverage()
        self._applied_coverage.add_objects([o for o in applied.values() if o.get("kind") not in ADDITIVE_KINDS])

    def _shadowed(self, obj: Object) -> bool:
        if key(obj) in self.applied:
            return True
        meta = obj.get("metadata") or {}
        cluster = (meta.get("labels") or {}).get("ray.io/cluster")
        return obj.get("kind") == "Pod" and (meta.get("namespace", "default"), cluster) in self.replaced_clusters

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "source": self.name, "manifests_applied": len(self.applied)}

    def covers(self, kind: str, namespace: str | None) -> bool:
        """What the base covers, and the manifests' own kinds where they apply them."""
        return self.base.covers(kind, namespace) or self._applied_coverage.covers(kind, namespace)

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        return self.base.how_to_add(kind, namespace)

    def covered_namespaces(self, kind: str) -> set[str]:
        return self.base.covered_namespaces(kind) | self._applied_coverage.namespaces(kind)

    def authorizer(self) -> None:
        """The manifests may change RBAC: evaluate the overlaid objects, never ask the live server."""
        return None

    def list(self, query: Query) -> list[Object]:
        kept = [obj for obj in self.base.list(query) if not self._shadowed(obj)]
        return kept + select(self.applied.values(), query)
