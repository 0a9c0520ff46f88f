"""The NetworkPolicy evaluator on the cases the NetworkPolicy API documentation describes, and on
what partial evidence cannot decide (None, never a guess)."""

from __future__ import annotations

from raycheck.model.netpol import Endpoint, PolicySet

HEAD = Endpoint("ray", {"ray.io/cluster": "c", "ray.io/node-type": "head"}, "10.244.0.10",
                {"client": (10001, "TCP"), "dashboard": (8265, "TCP")}, "head")
AGENT = Endpoint("agents", {"app": "agent"}, "10.244.1.5")
NAMESPACES = {"ray": {}, "agents": {"team": "a"}, "other": {}}


def np(namespace, spec, name="p"):
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ingress(*policies, namespaces=NAMESPACES, source=AGENT, port=10001, protocol="TCP"):
    return PolicySet(policies, namespaces).ingress(HEAD, source, port, protocol).allowed


def egress(*policies, namespaces=NAMESPACES, source=AGENT, port=10001, protocol="TCP"):
    return PolicySet(policies, namespaces).egress(source, HEAD, port, protocol).allowed


def test_a_pod_no_policy_selects_is_not_isolated():
    other = np("ray", {"podSelector": {"matchLabels": {"ray.io/node-type": "worker"}}, "policyTypes": ["Ingress"]})
    assert ingress() is True and ingress(other) is True


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    deny_in = np("ray", {"podSelector": {}})
    assert ingress(deny_in) is False
    only_egress_rules = np("agents", {"podSelector": {}, "egress": [{"ports": [{"port": 443}]}]})
    assert egress(only_egress_rules) is False and egress(only_egress_rules, port=443) is True
    assert PolicySet([only_egress_rules], NAMESPACES).ingress(AGENT, HEAD, 80, "TCP").allowed is False


def test_peers_namespace_and_pod_selectors_and_and_or():
    both = {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"app": "agent"}}}
    assert ingress(np("ray", {"podSelector": {}, "ingress": [{"from": [both]}]})) is True
    other_pods = {**both, "podSelector": {"matchLabels": {"app": "notebook"}}}
    assert ingress(np("ray", {"podSelector": {}, "ingress": [{"from": [other_pods]}]})) is False
    # two peers are OR: either admits
    either = [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"team": "a"}}}]
    assert ingress(np("ray", {"podSelector": {}, "ingress": [{"from": either}]})) is True
    # a podSelector alone means the policy's own namespace
    assert ingress(np("ray", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})) is False


def test_policies_add_up():
    deny = np("ray", {"podSelector": {}, "policyTypes": ["Ingress"]}, "deny")
    allow = np("ray", {"podSelector": {"matchLabels": {"ray.io/node-type": "head"}},
                       "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 10001}]}]}, "allow")
    verdict = PolicySet([deny, allow], NAMESPACES).ingress(HEAD, AGENT, 10001, "TCP")
    assert verdict.allowed is True and verdict.deciding == ("allow",)
    assert ingress(deny, allow, port=8265) is False


def test_ports_numbers_names_ranges_and_protocols():
    def rule(ports):
        return np("ray", {"podSelector": {}, "ingress": [{"ports": ports}]})
    assert ingress(rule([{"port": "client"}])) is True  # the destination's container port name
    assert ingress(rule([{"port": "dashboard"}])) is False
    assert ingress(rule([{"port": 10000, "endPort": 10010}])) is True
    assert ingress(rule([{"port": 10001, "protocol": "UDP"}])) is False
    assert ingress(rule([{"protocol": "TCP"}])) is True  # every port of that protocol


def test_ip_blocks_with_exceptions():
    def rule(block):
        return np("ray", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": block}]}]})
    assert ingress(rule({"cidr": "10.244.0.0/16"})) is True
    assert ingress(rule({"cidr": "10.244.0.0/16", "except": ["10.244.1.0/24"]})) is False
    assert ingress(rule({"cidr": "10.244.0.0/16"}), source=Endpoint("agents", {"app": "agent"})) is None  # no IP


def test_what_the_evidence_cannot_decide_is_none():
    by_label = np("agents", {"podSelector": {"matchLabels": {"app": "agent"}}, "policyTypes": ["Egress"]})
    unknown_pod = Endpoint("agents", None)
    assert egress(by_label, source=unknown_pod) is None  # is the agent selected? its labels would say
    assert egress(np("agents", {"podSelector": {}, "policyTypes": ["Egress"]}), source=unknown_pod) is False
    by_team = np("ray", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]})
    assert ingress(by_team, namespaces=None) is None  # namespaces not read: their labels unknown
    by_name = np("ray", {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agents"}}}]}]})
    assert ingress(by_name, namespaces=None) is True  # every namespace carries its name label
