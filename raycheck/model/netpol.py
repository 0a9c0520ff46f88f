"""NetworkPolicy, evaluated as the NetworkPolicy API defines it, with what the evidence cannot tell.

A connection from pod A to pod B on a port is allowed when B's ingress allows it and A's egress
allows it. A pod that no policy of some type selects is not isolated for that type (everything
allowed); a pod that some policy selects is allowed exactly what the union of those policies' rules
allows. ``policyTypes`` defaults to Ingress, plus Egress when the policy has egress rules. A rule
with no ``from``/``to`` admits every peer, with no ``ports`` every port; a peer's podSelector alone
means pods of the policy's namespace, a namespaceSelector alone every pod of the namespaces it
selects, both together the selected pods of those namespaces; named ports are the destination
pod's container port names.

Cluster state is often partial: a pod's labels, a namespace's labels or a pod's IP may be unknown.
Every answer is then ``True``, ``False`` or ``None`` (the evidence does not decide), and a check
fails only on ``False``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from raycheck.cluster.selectors import matches

Object = dict[str, Any]
NAME_LABEL = "kubernetes.io/metadata.name"  # every namespace carries it (Kubernetes >= 1.21)


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod, as far as it is known."""

    namespace: str
    labels: Mapping[str, str] | None  # None: some pod of the namespace, labels unknown
    ip: str | None = None
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # container port name -> (port, protocol)
    name: str = ""

    def __str__(self) -> str:
        if self.name:
            return f"{self.namespace}/{self.name}"
        if self.labels is None:
            return f"pods of {self.namespace}"
        return f"pods of {self.namespace} labelled {flow(self.labels)}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool | None
    deciding: tuple[str, ...]  # the policies that isolate the pod (or, when allowed, that admit it)


def flow(labels: Mapping[str, str]) -> str:
    """Labels as a YAML flow mapping: ``{app: agent, tier: a}``; ``{}`` for none."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"


def policy_types(policy: Object) -> list[str]:
    spec = policy.get("spec") or {}
    return list(spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else [])))


def _all(values: Iterable[bool | None]) -> bool | None:
    """Three-valued AND (Kleene): False wins, then unknown (None)."""
    result: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _any(values: Iterable[bool | None]) -> bool | None:
    """Three-valued OR: True wins, then unknown (None)."""
    return _not(_all(_not(value) for value in values))


def _empty(selector: Mapping[str, Any] | None) -> bool:
    """``{}`` and ``{matchLabels: {}}`` select everything."""
    return not selector or not (selector.get("matchLabels") or selector.get("matchExpressions"))


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool | None:
    if _empty(selector):
        return True
    return None if labels is None else matches(labels, selector)


def port_matches(entry: Mapping[str, Any], port: int, protocol: str, destination: Endpoint) -> bool | None:
    """One ``ports`` entry against a destination port: number, range (``endPort``) or the name of
    one of the destination pod's container ports."""
    if entry.get("protocol", "TCP") != protocol:
        return False
    value = entry.get("port")
    if value is None:
        return True
    if isinstance(value, int):
        end = entry.get("endPort")
        return value == port or (isinstance(end, int) and value <= port <= end)
    if str(value).isdigit():
        return int(value) == port
    named = destination.ports.get(str(value))
    if named is None:
        return None if not destination.ports else False
    return named == (port, protocol)


class PolicySet:
    """The NetworkPolicies of the namespaces read, and the labels of the namespaces known."""

    def __init__(self, policies: Iterable[Object], namespace_labels: Mapping[str, Mapping[str, str]] | None) -> None:
        self.policies = list(policies)
        self.namespace_labels = namespace_labels  # None: Namespace objects not read (only their names are known)

    def _namespace_selects(self, selector: Mapping[str, Any], namespace: str) -> bool | None:
        if _empty(selector):
            return True
        labels = dict((self.namespace_labels or {}).get(namespace) or {})
        labels[NAME_LABEL] = namespace
        if self.namespace_labels is None or namespace not in self.namespace_labels:
            keys = set(selector.get("matchLabels") or {}) | {e.get("key") for e in selector.get("matchExpressions") or []}
            if keys - {NAME_LABEL}:
                return None  # the selector asks for labels nobody read
        return matches(labels, selector)

    def _peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool | None:
        if "ipBlock" in peer:
            block = peer.get("ipBlock") or {}
            if other.ip is None:
                return None
            address = ipaddress.ip_address(other.ip)
            inside = address in ipaddress.ip_network(block.get("cidr", "0.0.0.0/0"), strict=False)
            excluded = any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
            return inside and not excluded
        if "namespaceSelector" in peer:
            in_namespace = self._namespace_selects(peer.get("namespaceSelector") or {}, other.namespace)
        else:
            in_namespace = other.namespace == policy_ns
        return _all([in_namespace, _selects(peer.get("podSelector"), other.labels)])

    def _rule_allows(self, rule: Mapping[str, Any], peers_key: str, policy_ns: str, other: Endpoint, port: int,
                     protocol: str, destination: Endpoint) -> bool | None:
        entries = rule.get("ports") or []
        ports = _any(port_matches(e, port, protocol, destination) for e in entries) if entries else True
        peers = rule.get(peers_key)
        admitted = _any(self._peer_matches(p, policy_ns, other) for p in peers) if peers else True
        return _all([ports, admitted])

    def _decide(self, kind: str, pod: Endpoint, other: Endpoint, port: int, protocol: str,
                destination: Endpoint) -> Verdict:
        rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        selecting: list[tuple[Object, bool | None]] = []
        for policy in self.policies:
            meta = policy.get("metadata") or {}
            if meta.get("namespace") != pod.namespace or kind not in policy_types(policy):
                continue
            selected = _selects((policy.get("spec") or {}).get("podSelector"), pod.labels)
            if selected is not False:
                selecting.append((policy, selected))
        if not selecting:
            return Verdict(True, ())
        names = tuple(p["metadata"]["name"] for p, _ in selecting)
        allows = [(p, s, _any(self._rule_allows(r, peers_key, pod.namespace, other, port, protocol, destination)
                              for r in (p.get("spec") or {}).get(rules_key) or [])) for p, s in selecting]
        admitting = tuple(p["metadata"]["name"] for p, s, a in allows if a is True and s is True)
        if admitting:
            return Verdict(True, admitting)
        certain = [a for p, s, a in allows if s is True]
        if certain and all(a is False for _, _, a in allows):
            return Verdict(False, tuple(p["metadata"]["name"] for p, s, _ in allows if s is True))
        return Verdict(None, names)

    def ingress(self, destination: Endpoint, source: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """May ``source`` open ``port`` on ``destination``, as far as ``destination``'s ingress goes?"""
        return self._decide("Ingress", destination, source, port, protocol, destination)

    def egress(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """May ``source`` open ``port`` on ``destination``, as far as ``source``'s egress goes?"""
        return self._decide("Egress", source, destination, port, protocol, destination)


def asks_namespace_labels(policies: Iterable[Object]) -> bool:
    """Whether a peer selects namespaces by a label other than their name (then their labels decide)."""
    for policy in policies:
        spec = policy.get("spec") or {}
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for peer in (rule.get("from") or []) + (rule.get("to") or []):
                selector = peer.get("namespaceSelector") or {}
                keys = set(selector.get("matchLabels") or {}) | {e.get("key") for e in selector.get("matchExpressions") or []}
                if keys - {NAME_LABEL}:
                    return True
    return False


def container_ports(pod_spec: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """The named container ports of a pod (what a NetworkPolicy's named port refers to)."""
    return {p["name"]: (int(p.get("containerPort", 0)), p.get("protocol", "TCP"))
            for c in pod_spec.get("containers") or [] for p in c.get("ports") or [] if p.get("name")}
