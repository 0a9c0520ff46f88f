"""A copy of the cluster state that a remediation's changes are applied to, never the cluster.

:class:`ChangedSource` answers lists as its base source does, with the objects a change touched
replaced (copy-on-write: only those are copied; the 60,000 pods of a dump stay shared, never
changed). It takes the writes ``kubectl`` would send (:class:`~raycheck.remediation.kubectl.Operation`)
and answers them as kube-apiserver does: a patch of a missing object is ``NotFound``, a create of an
existing one ``AlreadyExists``, a JSON patch that does not apply is refused with the library's
words, a strategic merge patch of a custom resource is ``415``, a pod's spec is immutable but for
its images, quantities and a RayCluster's counts are validated as the API server's schemas do.

What it covers is its base's: an object a change creates is no evidence about its kind where the
base had none, so verification never turns a skipped check into a verdict.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from raycheck.cluster.kinds import KINDS
from raycheck.cluster.source import Object, Query, Source, select
from raycheck.model.capacity import quantity
from raycheck.remediation.patches import PatchError, json_patch, merge_patch, strategic_merge_patch

if TYPE_CHECKING:
    from raycheck.remediation.kubectl import Operation, Target

Key = tuple[str, str, str]
Change = tuple["Object | None", "Object | None"]  # (before, after): None before = created, after = deleted
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CUSTOM_GROUPS = ("ray.io",)  # no Go types: no strategic merge patch


class Refused(Exception):
    """The API server refuses the request (the message is what kubectl would print)."""


def key(obj: Object) -> Key:
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    namespaced = KINDS[kind].namespaced if kind in KINDS else True
    return kind, (meta.get("namespace") or "default") if namespaced else "", meta.get("name", "")


def resource_name(kind: str) -> str:
    """``rayclusters.ray.io``, ``pods``: how the API server names a kind's resource in errors."""
    info = KINDS[kind]
    return f"{info.plural}.{info.group}" if info.group else info.plural


class ChangedSource:
    """``base`` with changes applied over it, copy-on-write."""

    def __init__(self, base: Source) -> None:
        self.base = base
        self.name = f"{base.name}, with the remediation applied"
        self.changed: dict[Key, Object | None] = {}  # None: deleted

    # -- the Source protocol: the base's answers, with the changed objects in place

    def list(self, query: Query) -> list[Object]:
        changed = self.changed
        kept = [o for o in self.base.list(query) if key(o) not in changed] if changed else self.base.list(query)
        return kept + select((o for o in changed.values() if o is not None), query)

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "source": self.name}

    def authorizer(self) -> None:
        """The changed RBAC objects decide: raycheck evaluates them (no live server knows them)."""
        return None

    def covers(self, kind: str, namespace: str | None) -> bool:
        return self.base.covers(kind, namespace)

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        return self.base.how_to_add(kind, namespace)

    def covered_namespaces(self, kind: str) -> set[str]:
        return self.base.covered_namespaces(kind)

    # -- objects

    def get(self, kind: str, namespace: str | None, name: str) -> Object | None:
        wanted = (kind, (namespace or "default") if KINDS[kind].namespaced else "", name)
        if wanted in self.changed:
            return self.changed[wanted]
        found = self.base.list(Query(kind, namespace if KINDS[kind].namespaced else None,
                                     fields={"metadata.name": name}))
        return found[0] if found else None

    def put(self, obj: Object) -> None:
        self.changed[key(obj)] = obj

    def drop(self, obj: Object) -> None:
        self.changed[key(obj)] = None

    def find(self, target: Target) -> list[Object]:
        """The objects a command addresses by name or label (NotFound for a name that is not there)."""
        if target.labels:
            return self.list(Query(target.kind, target.namespace, dict(target.labels)))
        out = []
        for name in target.names:
            obj = self.get(target.kind, target.namespace, name)
            if obj is None:
                raise Refused(f'Error from server (NotFound): {resource_name(target.kind)} "{name}" not found')
            out.append(obj)
        return out

    # -- writes, as the API server takes them

    def write(self, op: Operation) -> list[Change]:
        """Apply one operation; the objects it changed (Refused when the API server would refuse it)."""
        handler = {"patch": self._patch, "apply": self._apply, "create": self._create, "delete": self._delete,
                   "label": self._label, "annotate": self._label}[op.verb]
        return handler(op)

    def _patch(self, op: Operation) -> list[Change]:
        assert op.target is not None
        (before,) = self.find(op.target)
        kind = op.target.kind
        try:
            if op.patch_type == "json":
                after = json_patch(before, op.patch)
            elif op.patch_type == "merge":
                after = merge_patch(before, op.patch)
            elif KINDS[kind].group in CUSTOM_GROUPS:
                raise Refused("Error from server (UnsupportedMediaType): the body of the request was in an unknown "
                              "format - accepted media types include: application/json-patch+json, "
                              "application/merge-patch+json, application/apply-patch+yaml")
            else:
                after = strategic_merge_patch(before, op.patch, kind)
        except PatchError as exc:
            raise Refused(f"the API server refuses the patch: {exc}") from None
        validate(before, after)
        self.put(after)
        return [(before, after)]

    def _apply(self, op: Operation) -> list[Change]:
        out = []
        for manifest in op.objects:
            kind, namespace, name = key(manifest)
            before = self.get(kind, namespace, name)
            config = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
            desired = copy.deepcopy(manifest)
            desired.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = config
            if before is None:
                validate(None, desired)
                self.put(desired)
                out.append((None, desired))
                continue
            previous = ((before.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
            patch = _with_deletions(desired, json.loads(previous) if previous else {})
            after = merge_patch(before, patch) if KINDS[kind].group in CUSTOM_GROUPS else \
                strategic_merge_patch(before, patch, kind)
            validate(before, after)
            self.put(after)
            out.append((before, after))
        return out

    def _create(self, op: Operation) -> list[Change]:
        out: list[Change] = []
        for obj in op.objects:
            kind, namespace, name = key(obj)
            if self.get(kind, namespace, name) is not None:
                raise Refused(f'Error from server (AlreadyExists): {resource_name(kind)} "{name}" already exists')
            validate(None, obj)
            created = copy.deepcopy(obj)
            self.put(created)
            out.append((None, created))
        return out

    def _delete(self, op: Operation) -> list[Change]:
        assert op.target is not None
        try:
            found = self.find(op.target)
        except Refused:
            if op.ignore_missing:
                return []
            raise
        for obj in found:
            self.drop(obj)
        return [(obj, None) for obj in found]

    def _label(self, op: Operation) -> list[Change]:
        assert op.target is not None
        field = "labels" if op.verb == "label" else "annotations"
        out = []
        for before in self.find(op.target):
            after = copy.deepcopy(before)
            values = after.setdefault("metadata", {}).setdefault(field, {})
            for name, value in op.changes:
                if value is None:
                    values.pop(name, None)
                elif name in values and values[name] != value and not op.overwrite:
                    raise Refused(f"error: '{name}' already has a value ({values[name]}), and --overwrite is false")
                else:
                    values[name] = value
            self.put(after)
            out.append((before, after))
        return out


def _with_deletions(desired: Object, last: Any) -> Object:
    """The patch ``kubectl apply`` sends: the desired object, and ``null`` for every member the last
    applied configuration had and the desired one has not (lists are replaced or merged, not diffed)."""
    if not isinstance(last, dict):
        return desired
    out = dict(desired)
    for name, value in last.items():
        if name not in desired:
            out[name] = None
        elif isinstance(value, dict) and isinstance(desired[name], dict):
            out[name] = _with_deletions(desired[name], value)
    return out


# ----------------------------------------------------------------------------- validation, as the API server's


_POD_MUTABLE = ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations")
_RAYCLUSTER_INTEGERS = ("replicas", "minReplicas", "maxReplicas", "numOfHosts")


def validate(before: Object | None, after: Object) -> None:
    """Refuse what the API server would: a changed identity, a pod spec change beyond its images,
    a quantity that is not one, a RayCluster count that is not an integer."""
    kind = after.get("kind")
    name = (after.get("metadata") or {}).get("name")
    if before is not None:
        for path in (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")):
            old, new = _at(before, path), _at(after, path)
            if old != new:
                raise Refused(f"the API server refuses the change: {'.'.join(path)} may not change "
                              f"({old!r} to {new!r})")
    if kind == "Pod" and before is not None:
        _pod_immutable(before, after, name)
    for where, spec in _pod_specs(after):
        for i, container in enumerate(spec.get("containers") or []):
            for section in ("requests", "limits"):
                for resource, value in ((container.get("resources") or {}).get(section) or {}).items():
                    try:
                        quantity(value)
                    except (ValueError, ArithmeticError):
                        raise Refused(f'{kind} "{name}" is invalid: {where}.containers[{i}].resources.{section}.'
                                      f"{resource}: Invalid value: {json.dumps(value)}: quantities must match the "
                                      "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'") from None
    if kind == "RayCluster":
        for i, group in enumerate((after.get("spec") or {}).get("workerGroupSpecs") or []):
            for field in _RAYCLUSTER_INTEGERS:
                value = group.get(field) if isinstance(group, dict) else None
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    raise Refused(f'RayCluster.ray.io "{name}" is invalid: spec.workerGroupSpecs[{i}].{field}: '
                                  f"Invalid value: {json.dumps(value)}: must be an integer of at least 0")


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _pod_specs(obj: Object) -> list[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [("spec", spec)]
    if obj.get("kind") == "RayCluster":
        out = [("spec.headGroupSpec.template.spec",
                ((spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {})]
        out += [(f"spec.workerGroupSpecs[{i}].template.spec", ((g.get("template") or {}).get("spec") or {}))
                for i, g in enumerate(spec.get("workerGroupSpecs") or []) if isinstance(g, dict)]
        return out
    template = (spec.get("template") or {}).get("spec")
    return [("spec.template.spec", template)] if isinstance(template, dict) else []


def _pod_immutable(before: Object, after: Object, name: str) -> None:
    """A pod's spec changes only in its containers' images (and a few scheduling fields)."""
    def comparable(spec: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in spec.items() if k not in _POD_MUTABLE}
        for field in ("containers", "initContainers"):
            out[field] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(field) or []]
        return out

    if comparable(before.get("spec") or {}) != comparable(after.get("spec") or {}):
        raise Refused(f'Pod "{name}" is invalid: spec: Forbidden: pod updates may not change fields other than '
                      "`spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                      "`spec.tolerations` (only additions to existing tolerations), "
                      "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
