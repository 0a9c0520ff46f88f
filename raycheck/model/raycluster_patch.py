"""JSON patches of a RayCluster, as remediations give them: addressed to the group that needs the
change (never group 0 by default), guarded by ``test`` ops, exact about KubeRay's replica rules.

The RayCluster CRD has no scale subresource and takes no strategic merge patch, and a merge patch
would replace the whole list of worker groups: a JSON patch (RFC 6902) by index is the one way to
change one group. An index can go stale between the run and the paste, so every patch first tests
that the index still holds the group it was computed for; a stale patch is refused whole.
"""

from __future__ import annotations

import json
from typing import Any

from raycheck.model.kuberay import ray_container_index

Object = dict[str, Any]
Op = dict[str, Any]
HEAD_GROUP = "headgroup"  # the head's ray.io/group label


def pointer(*parts: str | int) -> str:
    """A JSON pointer, each part escaped: ``nvidia.com/gpu`` is ``nvidia.com~1gpu`` in a path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def group_index(cluster: Object | None, name: str) -> int | None:
    """The worker group's position in ``spec.workerGroupSpecs`` (None: no such group, or no spec known)."""
    groups = ((cluster or {}).get("spec") or {}).get("workerGroupSpecs") or []
    return next((i for i, g in enumerate(groups) if g.get("groupName") == name), None)


def group_path(cluster: Object, name: str) -> tuple[str | int, ...] | None:
    """Where group ``name`` lives in the RayCluster (the head is ``headgroup``, as its pods' label says)."""
    if name == HEAD_GROUP:
        return ("spec", "headGroupSpec")
    index = group_index(cluster, name)
    return None if index is None else ("spec", "workerGroupSpecs", index)


def group_spec(cluster: Object, name: str) -> dict[str, Any] | None:
    path = group_path(cluster, name)
    if path is None:
        return None
    node: Any = cluster
    for part in path:
        node = node[part]
    return node


def guard(cluster: Object, name: str) -> list[Op]:
    """The ``test`` op that refuses the patch when the group's index no longer holds ``name``."""
    path = group_path(cluster, name)
    if path is None or name == HEAD_GROUP:
        return []
    return [{"op": "test", "path": pointer(*path, "groupName"), "value": name}]


def container_at(cluster: Object, name: str) -> tuple[str | int, ...]:
    """Where the Ray container of group ``name``'s pod template is, from the group's spec (found as
    KubeRay finds it, not by position: the autoscaler sidecar can come first)."""
    spec = group_spec(cluster, name) or {}
    return ("template", "spec", "containers", ray_container_index((spec.get("template") or {}).get("spec") or {}))


def scale(cluster: Object, name: str, pods: int) -> list[Op] | None:
    """Ops that make worker group ``name`` want ``pods`` pods (rounded down to whole hosts).

    KubeRay wants ``replicas`` clamped to [minReplicas, maxReplicas], times ``numOfHosts``: a
    minReplicas above the new count is lowered too, or the patch would change nothing. With the
    in-tree autoscaler on, it owns ``replicas``: the cap is ``maxReplicas`` instead."""
    path, spec = group_path(cluster, name), group_spec(cluster, name)
    if path is None or spec is None or name == HEAD_GROUP:
        return None
    hosts = int(spec.get("numOfHosts", 1) or 1)
    replicas = max(0, pods) // hosts
    ops = guard(cluster, name)
    autoscaled = bool((cluster.get("spec") or {}).get("enableInTreeAutoscaling"))
    maximum = spec.get("maxReplicas")
    if autoscaled or (maximum is not None and int(maximum) < replicas):
        ops.append(_set(spec, path, "maxReplicas", replicas))
    if not autoscaled:
        ops.append(_set(spec, path, "replicas", replicas))
    if int(spec.get("minReplicas", 0) or 0) > replicas:
        ops.append(_set(spec, path, "minReplicas", replicas))
    return ops


def cap(cluster: Object, name: str, pods: int) -> list[Op] | None:
    """Ops that bound worker group ``name``'s whole autoscaling range by ``pods`` pods: maxReplicas
    there, and minReplicas and replicas lowered where they are above it."""
    path, spec = group_path(cluster, name), group_spec(cluster, name)
    if path is None or spec is None or name == HEAD_GROUP:
        return None
    replicas = max(0, pods) // int(spec.get("numOfHosts", 1) or 1)
    ops = guard(cluster, name) + [_set(spec, path, "maxReplicas", replicas)]
    for key in ("minReplicas", "replicas"):
        if spec.get(key) is not None and int(spec[key]) > replicas:
            ops.append(_set(spec, path, key, replicas))
    return ops


def _set(spec: dict[str, Any], path: tuple[str | int, ...], key: str, value: Any) -> Op:
    """``replace`` where the field exists, ``add`` where it does not (``replace`` of a missing member fails)."""
    return {"op": "replace" if key in spec else "add", "path": pointer(*path, key), "value": value}


def set_field(cluster: Object, name: str, relative: tuple[str | int, ...], value: Any) -> list[Op]:
    """Ops that set one field below group ``name``'s spec, creating the objects on the way that are missing
    (RFC 6902 ``add`` needs the parent to exist: an API server refuses it otherwise)."""
    path, spec = group_path(cluster, name), group_spec(cluster, name)
    assert path is not None and spec is not None
    ops: list[Op] = []
    node: Any = spec
    for depth, part in enumerate(relative[:-1]):
        child = node.get(part) if isinstance(node, dict) else \
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
        if child is None:
            nested: Any = value
            for inner in reversed(relative[depth + 1:]):
                nested = {inner: nested}
            return ops + [{"op": "add", "path": pointer(*path, *relative[:depth + 1]), "value": nested}]
        node = child
    last = relative[-1]
    ops.append({"op": "replace" if isinstance(node, dict) and last in node else "add",
                "path": pointer(*path, *relative), "value": value})
    return ops


def append(cluster: Object, name: str, relative: tuple[str | int, ...], item: Any) -> list[Op]:
    """Ops that append ``item`` to a list below group ``name``'s spec: ``add .../-`` where the list
    exists, else ``add`` of a one-item list (an API server refuses ``-`` on a missing list)."""
    node: Any = group_spec(cluster, name)
    for part in relative:
        node = node.get(part) if isinstance(node, dict) else \
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
        if node is None:
            return set_field(cluster, name, relative, [item])
    path = group_path(cluster, name)
    assert path is not None
    return [{"op": "add", "path": pointer(*path, *relative, "-"), "value": item}]


def as_json(ops: list[Op]) -> str:
    """The patch as ``kubectl patch --type=json -p '...'`` takes it (compact; never holds a single quote)."""
    text = json.dumps(ops, separators=(",", ":"))
    assert "'" not in text, text
    return text
