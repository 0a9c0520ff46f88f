"""Where the Ray cluster lives: its pods, the nodes they run on, and everything else bound there.

Reads only what concerns the Ray cluster: its pods by label, the nodes they are bound to by
name, the pods on those nodes by ``spec.nodeName``, and GPU nodes by the GPU Feature Discovery
label. A 2,000-node cluster is never listed whole for a Ray cluster on a few nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from raycheck.model.capacity import (
    GPU, Cluster, NodeShape, PodShape, counts_on_node, node_shape, other_gpu_resource, pod_shape,
)
from raycheck.cluster.coverage import NotCovered
from raycheck.cluster.view import ClusterView

GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}


@dataclass
class Footprint:
    view: ClusterView

    @cached_property
    def ray_pods(self) -> list[dict[str, Any]]:
        return self.view.ray_pods()

    @cached_property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """The nodes the Ray pods are bound to."""
        names = sorted({p["spec"]["nodeName"] for p in self.ray_pods if (p.get("spec") or {}).get("nodeName")})
        if names and not self.view.covers("Node", None):
            source = self.view.source
            raise NotCovered("Node", None, source.name, source.how_to_add("Node", None),
                             f"the Ray pods are bound to {', '.join(names)}: what they request there is known, "
                             "what the nodes can allocate is not")
        found = {}
        for name in names:
            node = self.view.get("Node", None, name)
            if node is not None:
                found[name] = node
        return found

    @cached_property
    def gpu_nodes(self) -> dict[str, dict[str, Any]]:
        """Nodes labelled by GPU Feature Discovery; without GFD, every node that advertises GPUs
        (``nvidia.com/gpu``, MIG slices ``nvidia.com/mig-<profile>`` under the mixed strategy, or
        ``nvidia.com/gpu.shared`` under time-slicing's renameByDefault)."""
        labelled = self.view.list("Node", labels=GPU_NODE_LABEL)
        if not labelled:
            labelled = [n for n in self.view.list("Node")
                        if any((name == GPU or other_gpu_resource(name)) and value not in (None, "0")
                               for name, value in ((n.get("status") or {}).get("allocatable") or {}).items())]
        return {n["metadata"]["name"]: n for n in labelled}

    @cached_property
    def all_nodes(self) -> dict[str, dict[str, Any]]:
        """Every node: where Ray pods that are bound nowhere yet (Pending, or proposed by the
        manifests) could go."""
        return {n["metadata"]["name"]: n for n in self.view.list("Node")}

    def bound(self, node: str) -> list[PodShape]:
        """Every pod bound to ``node``, of any namespace: they all take its capacity."""
        if not self.view.covers("Pod", None):
            source = self.view.source
            raise NotCovered("Pod", None, source.name, source.how_to_add("Pod", None),
                             f"pods of every namespace take {node}'s capacity, not only the Ray cluster's")
        return [pod_shape(p) for p in self.view.list("Pod", fields={"spec.nodeName": node}) if counts_on_node(p)]

    def cluster(self, nodes: dict[str, dict[str, Any]] | None = None) -> Cluster:
        """The capacity model of ``nodes`` (default: the Ray pods' nodes) with what is bound there."""
        chosen = self.nodes if nodes is None else nodes
        shapes: list[NodeShape] = [node_shape(n) for n in chosen.values()]
        return Cluster.of(shapes, [p for name in chosen for p in self.bound(name)])

    def candidate_nodes(self, needs_gpu: bool) -> dict[str, dict[str, Any]]:
        """Where Ray pods could go: the GPU nodes for GPU pods, else the nodes Ray already uses."""
        return dict(self.gpu_nodes) if needs_gpu else dict(self.nodes)
