"""Kubernetes objects from files: single objects, ``List``s and multi-document YAML or JSON.

This is what ``kubectl get -o yaml/json`` writes, and what the bundled scenarios in
``fixtures/scenarios/`` are made of. A file that does not parse is a :class:`ConfigError` that
names the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import yaml

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
    text = file.read_text(encoding="utf-8")
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
        return items
    if "kind" in doc:
        return [doc]
    return []


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]
