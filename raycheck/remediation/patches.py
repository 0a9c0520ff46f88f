"""The three patch types of ``kubectl patch``, applied as kube-apiserver applies them.

* JSON patch (RFC 6902) as the API server's library, evanphx/json-patch v4, applies it: where v4
  departs from the RFC, the API server's answer is what counts (``replace`` of a missing member of
  an object sets it, ``test`` of a missing member against ``null`` passes, negative array indices
  count from the end; ``test`` compares numbers by value, 8 is 8.0). ``tests/test_patches.py`` holds
  this against the pinned kubectl, which applies patches locally with the same library. Everything else the RFC refuses is refused, with v4's words: ``add`` under
  a path that does not exist (``/spec/volumes/-`` on a pod spec without ``volumes``), ``remove`` or
  ``replace`` of what is not there, an index past the end, a failed ``test``.
* JSON merge patch (RFC 7386): objects merge, ``null`` deletes, anything else replaces.
* Strategic merge patch (Kubernetes): a merge patch in which the lists the Go types mark
  ``patchStrategy: merge`` merge item by item on their ``patchMergeKey`` (containers, env,
  volumes by ``name``; volumeMounts by ``mountPath``; ports by ``containerPort``, a Service's by
  ``port``), with the ``$patch: delete|replace`` directives. Custom resources have no Go types:
  the API server refuses a strategic patch of one (415).

Functions return new documents and never change their arguments (the verifier patches copies of
objects it shares with the run).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

JSON = Any


class PatchError(Exception):
    """The API server refuses the patch; the message is the library's or the server's."""


# ----------------------------------------------------------------------------- RFC 6902 (evanphx/json-patch v4)


def _decode(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _container(doc: JSON, path: str) -> tuple[JSON, str] | None:
    """The object or array that holds ``path``'s last part, and that part; None when a part of the
    way is missing (v4's ``findObject``)."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    node = doc
    for part in parts[1:-1]:
        key = _decode(part)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            index = _index(key, len(node))
            node = node[index] if index is not None and 0 <= index < len(node) else None
        else:
            return None
        if not isinstance(node, (dict, list)):
            return None
    return node, _decode(parts[-1])


_ATOI = re.compile(r"[+-]?[0-9]+")


def _index(key: str, size: int) -> int | None:
    """An array index as Go's ``strconv.Atoi`` reads it, negative ones counted from the end."""
    if not _ATOI.fullmatch(key):
        return None
    index = int(key, 10)
    return index + size if index < 0 else index


def _array_index(array: list[JSON], key: str, op: str, path: str, adding: bool = False) -> int:
    index = _index(key, len(array) + (1 if adding else 0))
    if index is None:
        if adding:
            raise PatchError(f"error in add for path: '{path}': value was not a proper array index: '{key}'")
        raise PatchError(f"error in {op} for path: '{path}': strconv.Atoi: parsing {key!r}: invalid syntax")
    limit = len(array) + (1 if adding else 0)
    if not 0 <= index < limit:
        raise PatchError(f"error in {op} for path: '{path}': Unable to access invalid index: {int(key)}: "
                         "invalid index referenced")
    return index


def _same(a: JSON, b: JSON) -> bool:
    """v4's equality: objects by members, arrays by items, numbers by value (8 is 8.0), other
    scalars by value and type ("10" is not 10)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return a == b if numbers else (type(a) is type(b) and a == b)


def json_patch(doc: JSON, operations: Any) -> JSON:
    """``doc`` with the RFC 6902 ``operations`` applied, as the API server applies them."""
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict):
            raise PatchError("json: cannot unmarshal a non-object into Go value of type jsonpatch.Operation")
        kind = op.get("op") if isinstance(op.get("op"), str) else "unknown"
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f"Unexpected kind: {kind}")
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"{kind} operation failed to decode path: missing value")
        doc = _apply_op(doc, kind, path, op)
    return doc


def _apply_op(doc: JSON, kind: str, path: str, op: dict[str, Any]) -> JSON:
    if kind == "add":
        _add(doc, path, copy.deepcopy(op.get("value")), "add")
    elif kind == "remove":
        _remove(doc, path, "remove")
    elif kind == "replace":
        if path == "":
            value = op.get("value")
            if not isinstance(value, (dict, list)):
                raise PatchError("replace operation value must be object or array")
            return copy.deepcopy(value)
        found = _container(doc, path)
        if found is None:
            raise PatchError(f"replace operation does not apply: doc is missing path: {path}: missing value")
        holder, key = found
        if isinstance(holder, list):
            index = _index(key, len(holder))
            if index is None or not 0 <= index < len(holder):
                raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
            holder[index] = copy.deepcopy(op.get("value"))
        else:
            holder[key] = copy.deepcopy(op.get("value"))  # v4: a missing member is set, as add would
    elif kind in ("move", "copy"):
        source = op.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{kind} operation failed to decode from: missing value")
        found = _container(doc, source)
        if found is None:
            raise PatchError(f"{kind} operation does not apply: doc is missing from path: {source}: missing value")
        holder, key = found
        value = holder[_array_index(holder, key, kind, source)] if isinstance(holder, list) else holder.get(key)
        if kind == "move":
            _remove(doc, source, "move")
        _add(doc, path, copy.deepcopy(value), kind)
    else:
        _test(doc, path, op)
    return doc


def _add(doc: JSON, path: str, value: JSON, op: str) -> None:
    found = _container(doc, path)
    if found is None:
        where = "destination path" if op in ("move", "copy") else "path"
        quoted = f'"{path}"' if op == "add" else path
        raise PatchError(f"{op} operation does not apply: doc is missing {where}: {quoted}: missing value")
    holder, key = found
    if isinstance(holder, list):
        if key == "-":
            holder.append(value)
        else:
            holder.insert(_array_index(holder, key, "add", path, adding=True), value)
    else:
        holder[key] = value


def _remove(doc: JSON, path: str, op: str) -> None:
    found = _container(doc, path)
    if found is None:
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    holder, key = found
    if isinstance(holder, list):
        del holder[_array_index(holder, key, op, path)]
    elif key in holder:
        del holder[key]
    else:
        raise PatchError(f"error in {op} for path: '{path}': Unable to remove nonexistent key: {key}: missing value")


def _test(doc: JSON, path: str, op: dict[str, Any]) -> None:
    expected = op.get("value")
    if path == "":
        if not _same(doc, expected):
            raise PatchError(f"testing value {path} failed: test failed")
        return
    found = _container(doc, path)
    if found is None:
        raise PatchError(f"test operation does not apply: is missing path: {path}: missing value")
    holder, key = found
    if isinstance(holder, list):
        actual = holder[_array_index(holder, key, "test", path)]
    else:
        actual = holder.get(key)
    if actual is None and expected is None:
        return
    if actual is None or expected is None or not _same(actual, expected):
        raise PatchError(f"testing value {path} failed: test failed")


# ----------------------------------------------------------------------------- RFC 7386


def merge_patch(doc: JSON, patch: JSON) -> JSON:
    """``doc`` with the RFC 7386 merge ``patch`` applied."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# ----------------------------------------------------------------------------- strategic merge patch

# patchMergeKey of the lists whose Go type says patchStrategy: merge, in a PodSpec ("*": an item)
_POD_SPEC_KEYS = {
    ("containers",): "name", ("initContainers",): "name", ("ephemeralContainers",): "name",
    ("volumes",): "name", ("imagePullSecrets",): "name", ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey", ("resourceClaims",): "name", ("schedulingGates",): "name",
    **{(group, "*", field): key for group in ("containers", "initContainers", "ephemeralContainers")
       for field, key in (("env", "name"), ("ports", "containerPort"), ("volumeMounts", "mountPath"),
                          ("volumeDevices", "devicePath"))},
}
_METADATA_KEYS = {("metadata", "ownerReferences"): "uid"}
_MERGED_PRIMITIVES = {("metadata", "finalizers")}
# where each kind keeps its PodSpec
_POD_SPECS = {"Pod": ("spec",), "Deployment": ("spec", "template", "spec"), "DaemonSet": ("spec", "template", "spec"),
              "StatefulSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
              "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
_OTHER_KEYS = {"Service": {("spec", "ports"): "port"}}


def merge_keys(kind: str) -> dict[tuple[str, ...], str]:
    """The merge key of every list of ``kind`` that merges item by item."""
    keys = dict(_METADATA_KEYS)
    prefix = _POD_SPECS.get(kind)
    if prefix is not None:
        keys.update({prefix + path: key for path, key in _POD_SPEC_KEYS.items()})
    keys.update(_OTHER_KEYS.get(kind, {}))
    return keys


def strategic_merge_patch(doc: JSON, patch: JSON, kind: str) -> JSON:
    """``doc`` with a strategic merge ``patch`` applied, for an object of a built-in ``kind``."""
    return _smp(doc, patch, (), merge_keys(kind))


def _smp(doc: JSON, patch: JSON, path: tuple[str, ...], keys: dict[tuple[str, ...], str]) -> JSON:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive} in map: {json.dumps(patch)}")
    out = dict(doc) if isinstance(doc, dict) else {}
    orders = {name.split("/", 1)[1]: value for name, value in patch.items()
              if name.startswith("$setElementOrder/") and isinstance(value, list)}
    for name, value in patch.items():
        if name.startswith("$setElementOrder/"):
            continue  # read above: the order of a merged list's items
        if name.startswith("$deleteFromPrimitiveList/"):
            field = name.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        if name.startswith("$"):
            raise PatchError(f"unknown patch directive {name} (raycheck applies $patch, $setElementOrder, "
                             "$deleteFromPrimitiveList)")
        here = path + (name,)
        if value is None:
            out.pop(name, None)
        elif isinstance(value, dict) and isinstance(value.get("$patch"), str) and value["$patch"] == "delete":
            out.pop(name, None)
        elif isinstance(value, list) and here in keys:
            order = [o.get(keys[here]) if isinstance(o, dict) else o for o in orders[name]] if name in orders else None
            out[name] = _merge_list(out.get(name), value, here, keys, order)
        elif isinstance(value, list) and here in _MERGED_PRIMITIVES:
            current = list(out.get(name) or [])
            out[name] = current + [v for v in value if v not in current]
        elif isinstance(value, dict):
            out[name] = _smp(out.get(name), value, here, keys)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _merge_list(current: Any, patch: list[JSON], path: tuple[str, ...], keys: dict[tuple[str, ...], str],
                order: list[JSON] | None = None) -> list[JSON]:
    """A list merged item by item on its merge key, ordered as apimachinery's strategic merge orders
    it: the patch's items in the patch's order (or ``$setElementOrder``'s), the items only the server
    has in their order, interleaved where the server's order relates them."""
    key = keys[path]
    server = [item for item in (current if isinstance(current, list) else [])]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    merged: list[JSON] = []
    deleted = []
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {json.dumps(item)} does not contain declared merge key: {key}")
        if item.get("$patch") == "delete":
            deleted.append(item[key])
            continue
        same = next((old for old in server if isinstance(old, dict) and old.get(key) == item[key]), None)
        merged.append(_smp(same if same is not None else {}, item, path + ("*",), keys))
    in_patch = [m[key] for m in merged] + deleted
    server_only = [old for old in server if not (isinstance(old, dict) and old.get(key) in in_patch)]
    if order is not None:  # $setElementOrder: the items it names in its order, the others where they were
        every = merged + server_only
        merged = [next(m for m in every if isinstance(m, dict) and m.get(key) == k) for k in order
                  if any(isinstance(m, dict) and m.get(key) == k for m in every)]
        server_only = [m for m in server_only if not (isinstance(m, dict) and m.get(key) in order)]
    server_order = [old.get(key) if isinstance(old, dict) else None for old in server]
    return _merge_sorted(server_only, merged, server_order, key)


def _merge_sorted(left: list[JSON], right: list[JSON], server_order: list[Any], key: str) -> list[JSON]:
    """apimachinery's ``mergeSortedSlice``: ``left`` (server-only items) put into ``right`` (the patch's),
    each before the first item it precedes in the server's order, both relative orders kept."""
    def position(item: JSON) -> int:
        value = item.get(key) if isinstance(item, dict) else None
        return server_order.index(value) if value in server_order else -1

    out, i, j = [], 0, 0
    while i < len(left) or j < len(right):
        if j < len(right) and i < len(left):
            first, second = position(left[i]), position(right[j])
            take_left = first >= 0 and second >= 0 and first < second
        else:
            take_left = i < len(left)
        if take_left:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out
