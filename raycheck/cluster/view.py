"""The checks' single view of cluster state, whatever the source; each query asked once."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from raycheck.cluster.coverage import ALL, NotCovered
from raycheck.cluster.source import ClusterReadError, Object, Query, Source
from raycheck.config import Target
from raycheck.model.kuberay import head_service_name
from raycheck.model.rbac import Authorizer, RbacEvaluator

ORIGIN_LABEL = "ray.io/originated-from-cr-name"  # KubeRay's label on what a RayService or RayJob made
RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


class ClusterView:
    def __init__(self, source: Source, target: Target) -> None:
        self.source = source
        self.target = target
        self._cache: dict[tuple[Any, ...], list[Object]] = {}
        self._failed: dict[tuple[Any, ...], ClusterReadError] = {}  # asked once: a slow list costs one timeout
        self._seen: dict[tuple[str, str | None, str], Object] = {}  # every object any list returned, by name

    def list(self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None,
             fields: dict[str, str] | None = None) -> list[Object]:
        if not self.source.covers(kind, namespace):
            raise NotCovered(kind, namespace, self.source.name, self.source.how_to_add(kind, namespace))
        query = Query(kind, namespace, labels or {}, fields or {})
        key = query.key()
        if key in self._failed:
            raise self._failed[key]
        if key not in self._cache:
            try:
                self._cache[key] = self.source.list(query)
            except ClusterReadError as exc:
                self._failed[key] = exc
                raise
            for obj in self._cache[key]:
                meta = obj.get("metadata") or {}
                self._seen[(kind, meta.get("namespace"), meta.get("name", ""))] = obj
        return self._cache[key]

    def covers(self, kind: str, namespace: str | None = None) -> bool:
        """Whether a list of ``kind`` would be evidence (for checks that use a kind only to explain)."""
        return self.source.covers(kind, namespace)

    def list_seen(self, kind: str, labels: dict[str, str] | None = None) -> tuple[list[Object], bool]:
        """``kind`` in every namespace the source covers it in, and whether that is every namespace
        (a cluster-info dump without --all-namespaces covers two): for checks that may find what
        they look for in part of the cluster, and may not conclude it is absent from the rest."""
        if self.covers(kind, None):
            return self.list(kind, None, labels), True
        spaces = sorted(s for s in self.source.covered_namespaces(kind) if s and s != ALL)
        return [o for ns in spaces for o in self.list(kind, ns, labels)], False

    def get(self, kind: str, namespace: str | None, name: str) -> Object | None:
        """One object by name: from a list already made in this run (the GPU nodes listed by label,
        say), else asked for by name."""
        seen = self._seen.get((kind, namespace, name))
        if seen is not None:
            return seen
        found = self.list(kind, namespace, fields={"metadata.name": name})
        return found[0] if found else None

    # -- the Ray cluster

    def raycluster(self) -> Object | None:
        """The target's RayCluster: by name; else, for one a RayService or RayJob made
        (``<owner>-<random>``, its head Service ``<owner>-head-svc``), the one whose head Service is the
        target's or that KubeRay labels as originated from a resource of the target's name."""
        named = self.get("RayCluster", self.target.ray_namespace, self.target.cluster_name)
        if named is not None:
            return named
        owned = [c for c in self.list("RayCluster", self.target.ray_namespace)
                 if head_service_name(c) == self.target.head_service
                 or ((c.get("metadata") or {}).get("labels") or {}).get(ORIGIN_LABEL) == self.target.cluster_name]
        return owned[0] if len(owned) == 1 else None

    def raycluster_if_known(self) -> Object | None:
        """The RayCluster where the source can tell it, else None: for checks that only compare with it."""
        try:
            return self.raycluster()
        except (ClusterReadError, NotCovered):
            return None

    def ray_pods(self) -> list[Object]:
        """The pods of the target's RayCluster (``ray.io/cluster``), under its own name when a RayService
        or RayJob named it."""
        pods = self.list("Pod", self.target.ray_namespace, {"ray.io/cluster": self.target.cluster_name})
        if pods:
            return pods
        cluster = self.raycluster_if_known()
        name = ((cluster or {}).get("metadata") or {}).get("name")
        if name and name != self.target.cluster_name:
            return self.list("Pod", self.target.ray_namespace, {"ray.io/cluster": name})
        return self.list("Pod", self.target.ray_namespace, {ORIGIN_LABEL: self.target.cluster_name})

    def head_service(self) -> Object | None:
        return self.get("Service", self.target.ray_namespace, self.target.head_service)

    def endpoint_slices(self, service: str) -> list[Object]:
        return self.list("EndpointSlice", self.target.ray_namespace, {"kubernetes.io/service-name": service})

    # -- access

    @cached_property
    def rbac(self) -> RbacEvaluator:
        """Every RBAC object, cluster-wide: bindings anywhere may grant the client SA access."""
        return RbacEvaluator(obj for kind in RBAC_KINDS for obj in self.list(kind))

    @cached_property
    def authorizer(self) -> Authorizer:
        """The source's own authorizer where it has one (live: the API server's access reviews), else
        raycheck's evaluator of the RBAC objects (a dump, an overlay)."""
        return self.source.authorizer() or self.rbac
