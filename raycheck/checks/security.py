"""Who can reach the head's Ray ports (check ``security.ray-exposure``).

Without token authentication (Ray < 2.52, or not enabled) whoever reaches 10001 or 8265 runs
code on the cluster (CVE-2023-48022, "ShadowRay"). This decides, from the NetworkPolicies of the
Ray namespace as the NetworkPolicy API defines them, which namespaces may open those ports on the
head pod; with token authentication on, reachable ports are a defence-in-depth warning, never
"unauthenticated".
"""

from __future__ import annotations

from typing import Any

from raycheck.cluster.selectors import matches
from raycheck.cluster.source import Object
from raycheck.cluster.view import ClusterView
from raycheck.model.kuberay import token_auth
from raycheck.model.netpol import Endpoint, port_matches, policy_types
from raycheck.observation import Observation

ALL = "every namespace"


def head_pod(view: ClusterView) -> Object | None:
    heads = [p for p in view.ray_pods() if (p["metadata"].get("labels") or {}).get("ray.io/node-type") == "head"]
    return heads[0] if heads else None


def _ingress_policies(policies: list[Object], labels: dict[str, str]) -> list[Object]:
    return [p for p in policies if "Ingress" in policy_types(p)
            and matches(labels, (p.get("spec") or {}).get("podSelector") or {})]


def _port_allowed(rule: dict[str, Any], port: int, head: Endpoint) -> bool:
    entries = rule.get("ports") or []
    return not entries or any(port_matches(e, port, "TCP", head) is not False for e in entries)


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
    pod = head_pod(view)
    labels = dict((pod or {}).get("metadata", {}).get("labels") or
                  {"ray.io/cluster": target.cluster_name, "ray.io/node-type": "head"})
    head = Endpoint(target.ray_namespace, labels, ports={name: (port, "TCP") for name, port in ports.items()})
    auth = token_auth(view.raycluster_if_known(), pod)
    policies = _ingress_policies(view.list("NetworkPolicy", target.ray_namespace), labels)
    allowed = {target.ray_namespace, target.client_namespace}
    figures = {"allowed_namespaces": ", ".join(sorted(allowed)), "auth": auth.evidence}
    if not policies:
        return Observation(False, f"no NetworkPolicy in {target.ray_namespace} selects the head pod: ports "
                           f"{target.client_port} and {target.dashboard_port} ({auth.evidence}) accept connections "
                           "from every namespace", cause="open-token" if auth.required else "open", figures=figures)
    namespaces = view.list("Namespace")
    exposed: dict[str, set[str]] = {}
    for name, port in ports.items():
        sources: set[str] = set()
        for policy in policies:
            for rule in (policy.get("spec") or {}).get("ingress") or []:
                if _port_allowed(rule, port, head):
                    sources |= _sources(rule, target.ray_namespace, namespaces)
        extra = sources - allowed
        if extra:
            exposed[f"{port} ({name})"] = extra
    names = ", ".join(p["metadata"]["name"] for p in policies)
    if exposed:
        detail = "; ".join(f"{port} from {', '.join(sorted(src))}" for port, src in exposed.items())
        return Observation(False, f"NetworkPolicy {names} admits {detail}, beyond {', '.join(sorted(allowed))} "
                           f"({auth.evidence})", cause="too-wide-token" if auth.required else "too-wide",
                           figures=figures)
    return Observation(True, f"NetworkPolicy {names} admits {target.client_port} and {target.dashboard_port} only "
                       f"from {', '.join(sorted(allowed))} ({auth.evidence})")
