"""Who can reach the head's Ray ports (check ``security.ray-exposure``).

Ray 2.49 has no authentication: whoever reaches 10001 or 8265 runs code on the cluster
(CVE-2023-48022, "ShadowRay"). This decides, from the NetworkPolicies of the Ray namespace as
the NetworkPolicy API defines them, which namespaces may open those ports on the head pod.
"""

from __future__ import annotations

from typing import Any

from raycheck.cluster.selectors import matches
from raycheck.cluster.source import Object
from raycheck.cluster.view import ClusterView
from raycheck.observation import Observation

ALL = "every namespace"


def head_labels(view: ClusterView) -> dict[str, str]:
    heads = [p for p in view.ray_pods() if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    if heads:
        return dict(heads[0]["metadata"].get("labels") or {})
    return {"ray.io/cluster": view.target.cluster_name, "ray.io/node-type": "head"}


def _ingress_policies(policies: list[Object], labels: dict[str, str]) -> list[Object]:
    selected = []
    for policy in policies:
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes") or ["Ingress"]  # absent: Ingress (plus Egress if egress rules exist)
        if "Ingress" in types and matches(labels, spec.get("podSelector") or {}):
            selected.append(policy)
    return selected


def _port_allowed(rule: dict[str, Any], port: int, name: str) -> bool:
    ports = rule.get("ports") or []
    if not ports:
        return True
    for p in ports:
        value = p.get("port")
        if p.get("protocol", "TCP") != "TCP":
            continue
        if value is None or value == port or value == name:
            return True
        end = p.get("endPort")
        if isinstance(value, int) and end and value <= port <= end:
            return True
    return False


def _sources(rule: dict[str, Any], ray_ns: str, namespaces: list[Object]) -> set[str]:
    """Namespaces (or 'every namespace', or CIDRs) a rule admits."""
    peers = rule.get("from")
    if not peers:
        return {ALL}
    out: set[str] = set()
    for peer in peers:
        if "ipBlock" in peer:
            out.add(f"ipBlock {peer['ipBlock'].get('cidr')}")
        elif "namespaceSelector" in peer:
            selector = peer["namespaceSelector"] or {}
            if not selector:
                out.add(ALL)
                continue
            names = [n["metadata"]["name"] for n in namespaces
                     if matches({**(n["metadata"].get("labels") or {}),
                                 "kubernetes.io/metadata.name": n["metadata"]["name"]}, selector)]
            wanted = (selector.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
            if wanted and wanted not in names:
                names.append(wanted)
            out.update(names)
        else:
            out.add(ray_ns)  # podSelector alone: pods of the policy's own namespace
    return out


def ray_exposure(view: ClusterView) -> Observation:
    target = view.target
    ports = {"client": target.client_port, "dashboard": target.dashboard_port}
    labels = head_labels(view)
    policies = _ingress_policies(view.list("NetworkPolicy", target.ray_namespace), labels)
    allowed = {target.ray_namespace, target.client_namespace}
    figures = {"allowed_namespaces": ", ".join(sorted(allowed))}
    if not policies:
        return Observation(False, f"no NetworkPolicy in {target.ray_namespace} selects the head pod: ports "
                           f"{target.client_port} and {target.dashboard_port} (unauthenticated in Ray 2.49) accept "
                           "connections from every namespace", cause="open", figures=figures)
    namespaces = view.list("Namespace")
    exposed: dict[str, set[str]] = {}
    for name, port in ports.items():
        sources: set[str] = set()
        for policy in policies:
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                if _port_allowed(rule, port, name):
                    sources |= _sources(rule, target.ray_namespace, namespaces)
        extra = sources - allowed
        if extra:
            exposed[f"{port} ({name})"] = extra
    names = ", ".join(p["metadata"]["name"] for p in policies)
    if exposed:
        detail = "; ".join(f"{port} from {', '.join(sorted(src))}" for port, src in exposed.items())
        return Observation(False, f"NetworkPolicy {names} admits {detail}, beyond {', '.join(sorted(allowed))}",
                           cause="too-wide", figures=figures)
    return Observation(True, f"NetworkPolicy {names} admits {target.client_port} and {target.dashboard_port} only "
                       f"from {', '.join(sorted(allowed))}")
