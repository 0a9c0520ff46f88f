"""The Kubernetes kinds raycheck reads: where each lives in the API and whether it is namespaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of a list (or of one object with ``name``)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("Pod", "", "v1", "pods", True),
    Kind("Service", "", "v1", "services", True),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", True),
    Kind("Event", "", "v1", "events", True),
    Kind("Namespace", "", "v1", "namespaces", False),
    Kind("Node", "", "v1", "nodes", False),
    Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", True),
    Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True),
    Kind("DaemonSet", "apps", "v1", "daemonsets", True),
    Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    Kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    Kind("RayCluster", "ray.io", "v1", "rayclusters", True),
)}


def known_kind(obj: dict[str, Any]) -> str | None:
    """The kind raycheck reads that ``obj`` is, or None: a kind of the same name in another API group
    is another object (Calico's ``projectcalico.org/v3`` NetworkPolicy has no ``podSelector``; an
    ``events.k8s.io`` Event no ``involvedObject``). An object without ``apiVersion`` (the items of a
    ``kubectl cluster-info dump`` list) is taken by its kind."""
    kind = obj.get("kind")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        return None
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str) and api_version and api_version.rpartition("/")[0] != info.group:
        return None
    return info.kind


def kind_of(plural_or_kind: str) -> Kind | None:
    for kind in KINDS.values():
        if plural_or_kind in (kind.kind, kind.plural):
            return kind
    return None
