"""Where the bundled scenarios are: ``fixtures/scenarios/`` in a checkout, ``raycheck/fixtures/scenarios/``
in an installed package (the same folder: the wheel installs ``fixtures/`` as ``raycheck.fixtures``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(str(files("raycheck.fixtures") / "scenarios"))


def write_snapshot(folder: Path, objects: list[dict[str, Any]]) -> Path:
    """Write ``objects`` as a complete dump, as the commands raycheck's skips give write one: a
    cluster-scoped kind as ``kubectl get <plural> -o yaml > DIR/<plural>.yaml``, a namespaced kind as
    ``kubectl get <plural> -n <ns> -o yaml > DIR/<ns>/<plural>.yaml`` for every namespace (an empty
    list where it has none: evidence that there are none), which with ``namespaces.yaml`` covers every
    namespace. Without Namespace objects a namespaced kind is one ``-A`` list, ``DIR/<plural>.yaml``."""
    from raycheck.cluster.kinds import KINDS

    def write(path: Path, items: list[dict[str, Any]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    folder.mkdir(parents=True, exist_ok=True)
    namespaces = sorted({o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"})
    for kind in KINDS.values():
        items = [o for o in objects if o.get("kind") == kind.kind]
        if not kind.namespaced or not namespaces:
            write(folder / f"{kind.plural}.yaml", items)
            continue
        where = {(o.get("metadata") or {}).get("namespace") or "default" for o in items}
        for namespace in sorted(set(namespaces) | where):
            write(folder / namespace / f"{kind.plural}.yaml",
                  [o for o in items if ((o.get("metadata") or {}).get("namespace") or "default") == namespace])
    return folder
