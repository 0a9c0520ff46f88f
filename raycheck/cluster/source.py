"""What every cluster source answers: a list of objects for a query, or the reason it cannot."""

from __future__ import annotations

import gc
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol

from raycheck.cluster.kinds import KINDS, known_kind
from raycheck.errors import ConfigError
from raycheck.cluster.coverage import Coverage
from raycheck.cluster.files import read_dump

if TYPE_CHECKING:
    from raycheck.model.rbac import Authorizer

Object = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """A list request: a kind, optionally one namespace, narrowed by labels and fields."""

    kind: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.namespace, tuple(sorted(self.labels.items())), tuple(sorted(self.fields.items())))

    def describe(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        sel = ",".join(f"{k}={v}" for k, v in {**self.labels, **self.fields}.items())
        return f"list {KINDS[self.kind].plural}{where}" + (f" ({sel})" if sel else "")


class ClusterReadError(Exception):
    """The source could not answer: forbidden (403), missing API (404), unavailable, timed out."""

    def __init__(self, query: Query | None, status: int | None, cause: str, detail: str,
                 verb: str = "list", resource: str | None = None) -> None:
        self.query, self.status, self.cause, self.detail = query, status, cause, detail
        self.verb, self.resource = verb, resource
        what = query.describe() if query else "request"
        super().__init__(f"{what}: {detail}")

    def figures(self) -> dict[str, str]:
        """What the ``_cluster-read`` remediation quotes: the resource, its group, the verbs to grant,
        and where: a Role in the namespace that was read, a ClusterRole for what was read cluster-wide."""
        kind = KINDS[self.query.kind] if self.query else None
        group = kind.group if kind else ("authorization.k8s.io" if self.resource else "")
        namespace = self.query.namespace if self.query and kind and kind.namespaced else None
        return {
            "grant_role": "role" if namespace else "clusterrole",
            "grant_binding": "rolebinding" if namespace else "clusterrolebinding",
            "grant_namespace_flag": f" -n {namespace}" if namespace else "",
            "verb": self.verb,
            "grant_verbs": "get,list,watch" if self.verb == "list" else self.verb,
            "resource": kind.plural if kind else (self.resource or "?"),
            "api_group_flag": f".{group}" if group else "",
            "scope_namespace": (self.query.namespace if self.query else None) or "(all namespaces)",
            "http_status": str(self.status or "none"),
            "read_error": self.detail,
        }


class Source(Protocol):
    """A cluster source: ``list`` answers a query or raises :class:`ClusterReadError`."""

    name: str

    def list(self, query: Query) -> list[Object]: ...

    def describe(self) -> dict[str, Any]:
        """What the report says about this source: its name and what reading it cost or skipped."""
        ...

    def authorizer(self) -> Authorizer | None:
        """Who decides access questions, where the source has its own (the live API server); None:
        raycheck evaluates the RBAC objects the source holds."""
        ...

    def covers(self, kind: str, namespace: str | None) -> bool:
        """Whether the source holds evidence about ``kind`` in ``namespace`` (None: every namespace)."""
        ...

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        """The command that adds ``kind`` (in ``namespace``) to this source."""
        ...

    def covered_namespaces(self, kind: str) -> set[str]:
        """The namespaces ``kind`` is evidence in (``{"*"}``: every one)."""
        ...


def _field(obj: Object, path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return None if value is None else str(value)


def select(objects: Iterable[Object], query: Query) -> list[Object]:
    """The objects a query selects, evaluated the way the API server does."""
    out = []
    namespaced = KINDS[query.kind].namespaced
    for obj in objects:
        if known_kind(obj) != query.kind:
            continue
        meta = obj.get("metadata") or {}
        if namespaced and query.namespace and meta.get("namespace", "default") != query.namespace:
            continue
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in query.labels.items()):
            continue
        if any(_field(obj, k) != v for k, v in query.fields.items()):
            continue
        out.append(obj)
    return out


class MemorySource:
    """Objects held in memory: a dump, a bundled scenario, or the result of an overlay.

    Lists by field or label are answered from indexes built on first use, so the per-node and
    per-cluster queries of a 60,000-pod dump do not each scan every pod.
    """

    def __init__(self, objects: Iterable[Object], name: str = "dump", coverage: Coverage | None = None,
                 root: Path | None = None) -> None:
        """``coverage``: what the objects are evidence about (default: each object's kind where it
        occurs); ``root``: the dump folder they were read from, for the commands that add to it."""
        self.name = name
        self.root = root
        self.by_kind: dict[str, list[Object]] = {}
        self.ignored: dict[str, int] = {}
        self._indexes: dict[tuple[str, str, str], dict[str | None, list[Object]]] = {}
        for obj in objects:
            kind = known_kind(obj)
            if kind is not None:
                self.by_kind.setdefault(kind, []).append(obj)
            else:
                name = str(obj.get("kind")) + (f" ({obj.get('apiVersion')})" if obj.get("kind") in KINDS else "")
                self.ignored[name] = self.ignored.get(name, 0) + 1
        if coverage is None:
            coverage = Coverage()
            coverage.add_objects([o for items in self.by_kind.values() for o in items])
        self.coverage = coverage

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "objects": sum(len(v) for v in self.by_kind.values()),
                "ignored_kinds": dict(sorted(self.ignored.items())), "covered": self.coverage.describe()}

    def authorizer(self) -> None:
        return None

    def covers(self, kind: str, namespace: str | None) -> bool:
        return self.coverage.covers(kind, namespace)

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        return add_command(kind, namespace, self.root)

    def covered_namespaces(self, kind: str) -> set[str]:
        return self.coverage.namespaces(kind)

    def _index(self, kind: str, how: str, key: str) -> dict[str | None, list[Object]]:
        """Objects of ``kind`` by the value of a field path (how='field') or a label (how='label')."""
        index_key = (kind, how, key)
        if index_key not in self._indexes:
            index: dict[str | None, list[Object]] = {}
            for obj in self.by_kind.get(kind, []):
                value = _field(obj, key) if how == "field" else ((obj.get("metadata") or {}).get("labels") or {}).get(key)
                index.setdefault(value, []).append(obj)
            self._indexes[index_key] = index
        return self._indexes[index_key]

    def list(self, query: Query) -> list[Object]:
        if query.fields:
            path, value = sorted(query.fields.items())[0]
            candidates = self._index(query.kind, "field", path).get(value, [])
        elif query.labels:
            label, value = sorted(query.labels.items())[0]
            candidates = self._index(query.kind, "label", label).get(value, [])
        else:
            candidates = self.by_kind.get(query.kind, [])
        return select(candidates, query)

    def objects(self) -> list[Object]:
        return [obj for items in self.by_kind.values() for obj in items]


def dump_source(path: Path) -> MemorySource:
    """Every object below ``path`` (a bad file is a ConfigError naming it and its line).

    A dump is read once and never changes during a run: the collector is paused while its tens of
    thousands of objects are built, and they are then frozen out of later collections (which
    otherwise re-scan them, seconds for a 60,000-pod dump, pytest's own end-of-run collect included).
    """
    gc.disable()
    try:
        dump = read_dump(path)
        source = MemorySource(dump.objects, name=f"dump {path}", coverage=dump.coverage,
                              root=path if path.is_dir() else path.parent)
    finally:
        gc.enable()
    gc.freeze()
    if not source.by_kind and not dump.coverage.spaces:  # a wrong folder, not a cluster without objects
        others = sum(source.ignored.values())
        found = f"only {others} objects of kinds raycheck does not read" if others else "no objects"
        raise ConfigError(f"{path}: {found}; expected the output of `kubectl get <kinds> -A -o yaml` "
                          "or `kubectl cluster-info dump --all-namespaces --output-directory=DIR`")
    return source


def add_command(kind: str, namespace: str | None, root: Path | None) -> str:
    """``kubectl get`` that writes ``kind`` where a dump folder is read as covering it."""
    info = KINDS[kind]
    resource = f"{info.plural}.{info.group}" if info.group and "." in info.group and not info.group.endswith(
        ".k8s.io") else info.plural
    folder = shlex.quote(str(root)) if root is not None else "DIR"
    if not info.namespaced:
        return f"kubectl get {resource} -o yaml > {folder}/{info.plural}.yaml"
    if namespace is None:
        return f"kubectl get {resource} -A -o yaml > {folder}/{info.plural}.yaml"
    return f"mkdir -p {folder}/{namespace} && kubectl get {resource} -n {namespace} -o yaml > " \
           f"{folder}/{namespace}/{info.plural}.yaml"
