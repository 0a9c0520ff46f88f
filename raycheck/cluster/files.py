"""Kubernetes objects from files: single objects, ``List``s and multi-document YAML or JSON.

This is what ``kubectl get -o yaml/json`` writes, and what the bundled scenarios in
``fixtures/scenarios/`` are made of. A file that does not parse is a :class:`ConfigError` that
names the file and the line.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from raycheck.cluster.coverage import ALL, Coverage
from raycheck.cluster.kinds import KINDS, known_kind
from raycheck.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".json")


def iter_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or folder")
    for child in sorted(path.rglob("*")):
        if child.is_file() and child.suffix in SUFFIXES:
            yield child


def load_objects(path: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object below ``path``, Lists flattened, in file order."""
    objects: list[dict[str, Any]] = []
    for file in iter_files(path):
        for doc in _documents(file):
            objects.extend(_flatten(doc))
    return objects


def _documents(file: Path) -> list[Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not a text file (byte {exc.start} is not UTF-8): expected the YAML or JSON "
                          "that kubectl writes") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    if file.suffix == ".json":
        try:
            return [json.loads(text)]
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            raise ConfigError(f"{file}{f':{line}' if line else ''}: not valid JSON: "
                              f"{getattr(exc, 'msg', exc)}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _flatten(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List"):
        item_kind = str(doc["kind"])[:-4]  # PodList items may omit their kind (kubectl cluster-info dump)
        items = [item for item in doc["items"] if isinstance(item, dict)]
        if item_kind:
            for item in items:
                item.setdefault("kind", item_kind)
                if doc.get("apiVersion"):
                    item.setdefault("apiVersion", doc["apiVersion"])
        return items
    if "kind" in doc:
        return [doc]
    return []




# ----------------------------------------------------------------------------- dumps: objects and what they cover

# What `kubectl cluster-info dump` writes per namespace (and nodes.json at the top), as kinds raycheck reads.
CLUSTER_INFO_FILES = {"nodes.json": "Node", "pods.json": "Pod", "services.json": "Service", "events.json": "Event",
                      "daemonsets.json": "DaemonSet"}


@dataclass
class Dump:
    objects: list[dict[str, Any]]
    coverage: Coverage


def read_dump(root: Path) -> Dump:
    """Every object below ``root`` and what they cover (see :mod:`raycheck.cluster.coverage`).

    Bad input is a ConfigError naming the file (and line, object and field): a file that is not
    text, YAML or JSON; an object no API server would return (a quantity such as ``lots``)."""
    objects: list[dict[str, Any]] = []
    coverage = Coverage()
    namespaces: set[str] = set()  # every namespace, where a list of them was dumped
    for file in iter_files(root):
        folder = file.parent.relative_to(root).parts if root.is_dir() else ()
        folder_namespace = folder[-1] if len(folder) == 1 and _is_name(folder[0]) else None
        for doc in _documents(file):
            items = _flatten(doc)
            for obj in items:
                validate_object(obj, file)
            objects.extend(items)
            if _cover(coverage, doc, items, file, folder_namespace, at_top=root.is_dir() and not folder) == "Namespace":
                namespaces.update(str((o.get("metadata") or {}).get("name")) for o in items)
    _cover_cluster_info_dump(root, coverage)
    _cover_every_namespace(namespaces, coverage)
    return Dump(_once(objects), coverage)


def _cover_every_namespace(namespaces: set[str], coverage: Coverage) -> None:
    """A kind listed in every namespace the dump's namespace list holds (``DIR/<ns>/<plural>.yaml`` for
    each) is covered in every namespace, as one ``-A`` list would be."""
    if not namespaces:
        return
    for kind, spaces in list(coverage.spaces.items()):
        if KINDS[kind].namespaced and ALL not in spaces and namespaces <= spaces:
            coverage.add(kind, ALL)


def _once(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each object once: the same pod in ``ray/pods.yaml`` (``-n ray``) and ``pods.yaml`` (``-A``) is one
    pod, not two taking a node's capacity twice. Of two copies the newer (higher resourceVersion) stays."""
    kept: dict[tuple[str, str, str], dict[str, Any]] = {}
    unnamed: list[dict[str, Any]] = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            unnamed.append(obj)
            continue
        key = (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta["name"]))
        old = kept.get(key)
        if old is None or _version(obj) >= _version(old):
            kept[key] = obj
    return list(kept.values()) + unnamed


def _version(obj: dict[str, Any]) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else -1


def _cover_cluster_info_dump(root: Path, coverage: Coverage) -> None:
    """``kubectl cluster-info dump --all-namespaces``: a folder for every namespace, so its kinds are
    covered in every namespace. Without ``--all-namespaces`` it writes only default and kube-system,
    which then cover only themselves (as folders do)."""
    if not root.is_dir() or not (root / "nodes.json").is_file():
        return
    namespaces = {d.name for d in root.iterdir() if d.is_dir() and (d / "pods.json").is_file()}
    if namespaces - {"default", "kube-system"}:
        for name, kind in CLUSTER_INFO_FILES.items():
            if all((root / ns / name).is_file() for ns in namespaces) and KINDS[kind].namespaced:
                coverage.add(kind, ALL)


def _cover(coverage: Coverage, doc: Any, items: list[dict[str, Any]], file: Path, folder_namespace: str | None,
           at_top: bool) -> str | None:
    """Add what one document covers; the kind of a list of one kind (None for loose objects)."""
    kind = _list_kind(doc, items, file)
    if kind is None:  # loose objects: each covers its kind where it occurs
        coverage.add_objects(items)
    elif not KINDS[kind].namespaced:
        coverage.add(kind, None)
    elif folder_namespace is not None:  # DIR/<namespace>/<plural>.yaml: kubectl get <plural> -n <namespace>
        coverage.add(kind, folder_namespace)
        coverage.add_objects(items)
    elif at_top and len({(o.get("metadata") or {}).get("namespace") or "default" for o in items}) != 1:
        coverage.add(kind, ALL)  # DIR/<plural>.yaml: kubectl get <plural> -A
    else:
        # objects all in one namespace are what `kubectl get <plural> -n <namespace>` writes as much as
        # what -A writes: evidence about that namespace only (-A of pods always spans kube-system too)
        coverage.add_objects(items)
    return kind


def _list_kind(doc: Any, items: list[dict[str, Any]], file: Path) -> str | None:
    """The kind a list of one kind holds: a typed list (``PodList``) or a ``List`` in a file named after
    the kind's plural (``pods.yaml``) whose items are all of that kind; None for anything else."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return None
    typed = str(doc.get("kind", ""))[:-4]
    if typed in KINDS:
        return typed if known_kind({"kind": typed, "apiVersion": doc.get("apiVersion")}) else None
    named = next((k.kind for k in KINDS.values() if _named_after(file, k.kind)), None)
    if named is not None and all(known_kind(o) == named for o in items):
        return named
    return None


def _named_after(file: Path, kind: str) -> bool:
    return file.stem in (KINDS[kind].plural, kind.lower())


def _is_name(text: str) -> bool:
    return 0 < len(text) <= 63 and all(c.isalnum() or c == "-" for c in text) and text.lower() == text


# ----------------------------------------------------------------------------- objects an API server would return

def _resources(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field path, quantity text) of every resource quantity raycheck computes with."""
    out: list[tuple[str, Any]] = []

    def pod_spec(spec: Any, path: str) -> None:
        if not isinstance(spec, dict):
            return
        for group in ("containers", "initContainers"):
            for i, container in enumerate(spec.get(group) or []):
                resources = (container or {}).get("resources") or {} if isinstance(container, dict) else {}
                for part in ("requests", "limits"):
                    for name, value in (resources.get(part) or {}).items():
                        out.append((f"{path}.{group}[{i}].resources.{part}.{name}", value))
        for name, value in (spec.get("overhead") or {}).items():
            out.append((f"{path}.overhead.{name}", value))

    kind = obj.get("kind")
    if kind == "Pod":
        pod_spec(obj.get("spec"), "spec")
    elif kind == "Node":
        for part in ("allocatable", "capacity"):
            for name, value in ((obj.get("status") or {}).get(part) or {}).items():
                out.append((f"status.{part}.{name}", value))
    elif kind == "RayCluster":
        spec = obj.get("spec") or {}
        pod_spec(((spec.get("headGroupSpec") or {}).get("template") or {}).get("spec"), "spec.headGroupSpec.template.spec")
        for i, group in enumerate(spec.get("workerGroupSpecs") or []):
            if isinstance(group, dict):
                pod_spec((group.get("template") or {}).get("spec"), f"spec.workerGroupSpecs[{i}].template.spec")
    return out


@functools.lru_cache(maxsize=4096)  # a 60,000-pod dump repeats a few dozen spellings
def _is_quantity(text: str) -> bool:
    from raycheck.model.capacity import quantity

    try:
        quantity(text)
    except (ValueError, ArithmeticError):
        return False
    return True


def validate_object(obj: dict[str, Any], file: Path) -> None:
    """Refuse what no API server returns: a resource quantity that does not parse."""
    for path, value in _resources(obj):
        if not _is_quantity(str(value)):
            meta = obj.get("metadata") or {}
            name = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
            raise ConfigError(f"{file}: {obj.get('kind')} {name}: {path}: {value!r} is not a Kubernetes quantity "
                              "(e.g. 500m, 2, 16Gi, 1953125Ki)") from None
