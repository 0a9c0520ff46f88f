"""The objects the kind e2e applies: deploy/cronjob as shipped, pointed at the e2e's image and target.

The CronJob and its RBAC are the rendered kustomize base (``kubectl kustomize deploy/cronjob``), not
a copy: only the image and the target file in its ConfigMap change. The target is the shipped one
(the seed's names) with what the kind cluster really has: 1 worker, 1 (logical) GPU.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

Object = dict[str, Any]
# a GitHub runner's pods carry the runner's own DNS search domain after the cluster's three: 4 lookups
SEARCH_LOOKUPS = 4


def kind_target(shipped: Object) -> Object:
    """The shipped target (deploy/cronjob/target.yaml) with the kind cluster's size and search list."""
    target = copy.deepcopy(shipped)
    checks = target.setdefault("raycheck", {})
    checks["expect"] = {"gpus": 1, "workers": 1}
    checks.setdefault("thresholds", {})["dns_search_lookups"] = SEARCH_LOOKUPS
    return target


def for_kind(rendered: list[Object], image: str, target: Object) -> list[Object]:
    """The rendered base with the CronJob's container on ``image`` and ``target`` in its ConfigMap."""
    out = copy.deepcopy(rendered)
    cronjobs = [o for o in out if o["kind"] == "CronJob"]
    maps = [o for o in out if o["kind"] == "ConfigMap" and "target.yaml" in (o.get("data") or {})]
    assert len(cronjobs) == 1 and len(maps) == 1, "deploy/cronjob renders one CronJob and one target ConfigMap"
    for container in cronjobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
        container["image"] = image
    maps[0]["data"]["target.yaml"] = yaml.safe_dump(target, sort_keys=False)
    return out


def checker_bindings(rendered: list[Object]) -> list[Object]:
    """The bindings that give the CronJob's ServiceAccount its RBAC: without them raycheck reads nothing."""
    account = next(o for o in rendered if o["kind"] == "ServiceAccount")["metadata"]
    return [o for o in rendered if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
            and any(s.get("kind") == "ServiceAccount" and s.get("name") == account["name"]
                    and s.get("namespace") == account["namespace"] for s in o.get("subjects") or [])]
