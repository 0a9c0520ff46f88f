"""k8s.client-path and security.ray-exposure: the NetworkPolicies between the client namespace and
the head, proven both ways on the seed, and each remediation applied back to the dump."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from tests.test_connectivity_suite import assert_problem
from tests.test_k8s_suite import TARGET

NP = "networking.k8s.io/v1"


def policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": NP, "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# KubeRay's spec.networkPolicy.mode: DenyAll, written out as its controller makes it: the head admits
# only the pods of its own RayCluster (and the rules the spec adds)
KUBERAY_DENY_ALL_HEAD = policy("ray-gpu-head", "ray", {
    "podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "head"}},
    "policyTypes": ["Ingress", "Egress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu"}}}]}],
    "egress": [{"to": [{"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu"}}}]}]})
DEFAULT_DENY_EGRESS = policy("default-deny-egress", "swe-ai-fleet", {"podSelector": {}, "policyTypes": ["Egress"]})
AGENTS_EGRESS = policy("agents-egress", "swe-ai-fleet", {
    "podSelector": {"matchLabels": {"app": "agent"}}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}]})


def check(run_suite, write_dump, state, *args, target=TARGET, check_id="k8s.client-path"):
    return run_suite(target, "-m", "k8s or security", f"--cluster-dump={write_dump(state)}", *args).check(check_id)


def heredoc_objects(command: str) -> list[dict[str, Any]]:
    """The objects a remediation's ``kubectl apply -f - <<'EOF'`` would create."""
    body = re.search(r"<<'EOF'\n(.*)\nEOF", command, re.S)
    assert body, command
    return [d for d in yaml.safe_load_all(body.group(1)) if d]


def applied(state, remediation: dict[str, Any]) -> list[dict[str, Any]]:
    """``state`` with every ``kubectl apply`` step of the remediation applied."""
    out = copy.deepcopy(state)
    for step in remediation["steps"]:
        if (step["command"] or "").startswith("kubectl apply -f - <<'EOF'"):
            out += heredoc_objects(step["command"])
    return out


def agent_pod(labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "agent-7d9f-x2k4p", "namespace": "swe-ai-fleet",
                         "labels": {**labels, "pod-template-hash": "7d9f"}},
            "spec": {"serviceAccountName": "workspace-runner-sa", "nodeName": "wrx80-node1",
                     "containers": [{"name": "agent", "image": "registry.example/agent:1.4.0"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.40"}}


def test_no_policy_anywhere_passes(run_suite, seed_state, write_dump):
    result = check(run_suite, write_dump, seed_state)
    assert result["outcome"] == "passed" and "no NetworkPolicy isolates either side" in result["message"]
    assert "a CNI's own policies, such as CiliumNetworkPolicy or Calico's, are not read" in result["message"]


def test_kuberay_deny_all_keeps_the_client_namespace_out_and_the_fix_lets_it_in(run_suite, seed_state, write_dump):
    state = seed_state + [KUBERAY_DENY_ALL_HEAD]
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(state)}")
    result = assert_problem(run, "k8s.client-path", "failed", "critical", "Ingress policies in ray (ray/ray-gpu-head)")
    assert result["cause"] == "ingress"
    assert "ingress of pods of swe-ai-fleet is denied by NetworkPolicy ray-gpu-head in ray (no ingress rule admits " \
           "it) to: ray/ray-gpu-head-7zc7c 10001/TCP (client), ray/ray-gpu-head-7zc7c 8265/TCP (dashboard)" \
           in result["message"]
    added = heredoc_objects(result["remediation"]["steps"][0]["command"])
    assert [(o["kind"], o["metadata"]["namespace"]) for o in added] == [("NetworkPolicy", "ray")]
    assert added[0]["spec"]["ingress"][0]["ports"] == [{"port": 10001, "protocol": "TCP"},
                                                        {"port": 8265, "protocol": "TCP"}]
    assert result["remediation"]["steps"][0]["danger"]
    fixed = check(run_suite, write_dump, applied(state, result["remediation"]))
    assert fixed["outcome"] == "passed", fixed
    assert "ray-gpu-head-from-swe-ai-fleet" in fixed["message"]


def test_default_deny_egress_in_the_client_namespace(run_suite, seed_state, write_dump):
    state = seed_state + [DEFAULT_DENY_EGRESS]
    result = check(run_suite, write_dump, state)
    assert result["outcome"] == "failed" and result["cause"] == "egress"
    assert "egress of pods of swe-ai-fleet is denied by NetworkPolicy default-deny-egress in swe-ai-fleet" \
           in result["message"]
    assert "53/UDP" in result["message"] and "53/TCP" in result["message"]  # DNS too
    added = heredoc_objects(result["remediation"]["steps"][0]["command"])
    assert added[0]["metadata"]["namespace"] == "swe-ai-fleet" and added[0]["spec"]["policyTypes"] == ["Egress"]
    assert "nicolaka/netshoot:v0.13" in result["remediation"]["steps"][1]["command"]
    assert check(run_suite, write_dump, applied(state, result["remediation"]))["outcome"] == "passed"


def test_both_sides_closed(run_suite, seed_state, write_dump):
    state = seed_state + [KUBERAY_DENY_ALL_HEAD, DEFAULT_DENY_EGRESS]
    result = check(run_suite, write_dump, state)
    assert result["outcome"] == "failed" and result["cause"] == "both"
    assert check(run_suite, write_dump, applied(state, result["remediation"]))["outcome"] == "passed"


def test_agents_known_only_by_their_pods_or_the_target(run_suite, seed_state, write_dump, tmp_path):
    state = seed_state + [AGENTS_EGRESS]
    unknown = check(run_suite, write_dump, state)
    assert unknown["outcome"] == "skipped" and "which pods are the agents is not known" in unknown["message"]
    assert "set raycheck.client_pod_labels" in unknown["message"]
    # the agents' pods in the dump decide: they run as the client ServiceAccount, labelled app=agent
    found = check(run_suite, write_dump, state + [agent_pod({"app": "agent"})])
    assert found["outcome"] == "failed" and "pods of swe-ai-fleet labelled {app: agent}" in found["message"]
    labels = heredoc_objects(found["remediation"]["steps"][0]["command"])[0]["spec"]["podSelector"]
    assert labels == {"matchLabels": {"app": "agent"}}  # the pod-template hash is no part of it
    # or the target names them; other pods of the namespace are not isolated
    named = TARGET + "  client_pod_labels: {app: agent}\n"
    assert check(run_suite, write_dump, state, target=named)["outcome"] == "failed"
    other = TARGET + "  client_pod_labels: {app: notebook}\n"
    assert check(run_suite, write_dump, state, target=other)["outcome"] == "passed"


def test_namespace_selector_on_a_team_label_needs_the_namespaces(run_suite, seed_state, write_dump):
    by_team = policy("head-from-teams", "ray", {
        "podSelector": {"matchLabels": {"ray.io/node-type": "head"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}],
                     "ports": [{"port": "client"}, {"port": "dashboard"}]}]})
    dump = write_dump(seed_state + [by_team])
    (dump / "namespaces.yaml").unlink()  # `kubectl get namespaces` not run: their labels are unknown
    undecided = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={dump}").check("k8s.client-path")
    assert undecided["outcome"] == "skipped" and "a namespaceSelector asks for labels" in undecided["message"]
    labelled = copy.deepcopy(seed_state) + [by_team]
    for ns in labelled:
        if ns["kind"] == "Namespace" and ns["metadata"]["name"] == "swe-ai-fleet":
            ns["metadata"]["labels"]["team"] = "agents"
    # named ports resolve against the head container's ports
    assert check(run_suite, write_dump, labelled)["outcome"] == "passed"
    assert check(run_suite, write_dump, [o for o in labelled if o["kind"] != "Namespace" or
                                         o["metadata"]["name"] != "swe-ai-fleet"] +
                 [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swe-ai-fleet"}}])["outcome"] == "failed"


def test_kuberay_network_policy_of_overlaid_manifests(run_suite, seed_state, write_dump):
    """The gate: a RayCluster manifest with spec.networkPolicy brings KubeRay's policies with it."""
    cluster = copy.deepcopy(next(o for o in seed_state if o["kind"] == "RayCluster"))
    cluster["spec"]["networkPolicy"] = {"mode": "DenyAllIngress"}
    cluster.pop("status", None)
    dump = write_dump(seed_state)
    manifests = write_dump([cluster], complete=False)
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={dump}", f"--with-manifests={manifests}")
    result = run.check("k8s.client-path")
    assert result["outcome"] == "failed" and "NetworkPolicy ray-gpu-head in ray" in result["message"], repr(run)
    # the manifests' policies alone are no evidence about the cluster's: a pods-only base says nothing
    pods_only = write_dump([o for o in seed_state if o["kind"] == "Pod"], complete=False)
    base_unknown = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={pods_only}", f"--with-manifests={manifests}")
    assert base_unknown.check("k8s.client-path")["outcome"] == "skipped"


# ----------------------------------------------------------------------------- security.ray-exposure


def test_exposure_with_token_auth_is_defence_in_depth(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    cluster = next(o for o in state if o["kind"] == "RayCluster")
    cluster["spec"]["rayVersion"] = "2.53.0"
    cluster["spec"]["authOptions"] = {"mode": "token"}
    run = run_suite(TARGET, "-m", "security", f"--cluster-dump={write_dump(state)}")
    result = assert_problem(run, "security.ray-exposure", "failed", "warning", "a stolen or leaked token")
    assert result["cause"] == "open-token"
    assert "token authentication required: spec.authOptions.mode: token" in result["message"]
    assert "unauthenticated" not in result["message"] + str(result["remediation"])


def test_exposure_names_the_ray_version_without_auth(run_suite, seed_state, write_dump):
    result = check(run_suite, write_dump, seed_state, check_id="security.ray-exposure")
    assert result["outcome"] == "failed" and "unauthenticated in Ray 2.49.2" in result["message"]
    # RAY_AUTH_MODE on a Ray that has no token authentication changes nothing
    state = copy.deepcopy(seed_state)
    for pod in state:
        if pod["kind"] == "Pod" and pod["metadata"]["labels"].get("ray.io/node-type") == "head":
            pod["spec"]["containers"][0].setdefault("env", []).append({"name": "RAY_AUTH_MODE", "value": "token"})
    result = check(run_suite, write_dump, state, check_id="security.ray-exposure")
    assert result["cause"] == "open" and "but Ray 2.49.2 has no token authentication (2.52+)" in result["message"]
