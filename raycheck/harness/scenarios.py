"""Where the bundled scenarios are: ``fixtures/scenarios/`` in a checkout, ``raycheck/fixtures/scenarios/``
in an installed package (the same folder: the wheel installs ``fixtures/`` as ``raycheck.fixtures``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(str(files("raycheck.fixtures") / "scenarios"))


def write_snapshot(folder: Path, objects: list[dict[str, Any]]) -> Path:
    """Write ``objects`` as a complete dump: one ``<plural>.yaml`` per kind raycheck reads, as
    ``kubectl get <plural> -A -o yaml > DIR/<plural>.yaml`` writes it (an empty list for a kind with no
    objects: evidence that there are none), so the dump covers every kind in every namespace."""
    from raycheck.cluster.kinds import KINDS

    folder.mkdir(parents=True, exist_ok=True)
    for kind in KINDS.values():
        items = [o for o in objects if o.get("kind") == kind.kind]
        document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
        (folder / f"{kind.plural}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder
