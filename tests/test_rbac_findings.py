"""RBAC verdicts that name their cause, and remediations that never take from anyone else: dangling
roleRefs, a missing ServiceAccount, group subjects, Kubernetes' default bindings, shared bindings,
Ray's Kubernetes token mode. Each proven both ways on the seed."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.test_connectivity_suite import PLACEHOLDER, assert_problem
from tests.test_k8s_suite import TARGET

RBAC = "rbac.authorization.k8s.io/v1"
SA = {"kind": "ServiceAccount", "name": "workspace-runner-sa", "namespace": "swe-ai-fleet"}


def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]],
            namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}}


def role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules}


RAY_CLIENT_RULES = [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
                    {"apiGroups": ["ray.io"], "resources": ["rayclusters", "rayjobs"],
                     "verbs": ["get", "list", "create", "delete"]}]
# Kubernetes' bootstrap bindings: they reach every authenticated subject
DEFAULTS = [binding("ClusterRoleBinding", n, "ClusterRole", n,
                    [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}])
            for n in ("system:basic-user", "system:discovery", "system:public-info-viewer")] + [
    role("ClusterRole", "system:basic-user", [{"apiGroups": ["authorization.k8s.io"],
                                               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                                               "verbs": ["create"]}]),
    role("ClusterRole", "system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/version"],
                                              "verbs": ["get"]}]),
    role("ClusterRole", "system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/version"], "verbs": ["get"]}])]


def without_seed_rbac(state):
    return [o for o in state if o["kind"] not in ("ClusterRoleBinding", "RoleBinding", "Role")]


def rbac_run(run_suite, write_dump, state):
    return run_suite(TARGET, "-m", "rbac", f"--cluster-dump={write_dump(state)}")


def first_failed(run, check_id: str, title: str) -> dict[str, Any]:
    """The first failed result of ``check_id`` (rbac.client-sa has one per need), with its remediation checked."""
    check = next((c for c in run.report["checks"] if c["id"] == check_id and c["outcome"] == "failed"), None)
    assert check is not None, repr(run)
    texts = [check["remediation"]["title"]] + [s["text"] + (s["command"] or "") for s in check["remediation"]["steps"]]
    assert title in texts[0] and not [t for t in texts if PLACEHOLDER.search(t)], texts
    return check


def access_results(run):
    return [c for c in run.report["checks"] if "test_client_sa_may[" in c["nodeid"]]


def test_a_binding_to_a_misspelt_role_is_named_and_recreated_with_all_its_subjects(run_suite, seed_state, write_dump):
    other = {"kind": "ServiceAccount", "name": "batch", "namespace": "swe-ai-fleet"}
    state = without_seed_rbac(seed_state) + [
        role("Role", "ray-client-access", RAY_CLIENT_RULES, "ray"),
        binding("RoleBinding", "swe-ai-fleet-ray-access", "Role", "ray-client-acces", [SA, other], "ray")]
    run = rbac_run(run_suite, write_dump, state)
    failed = access_results(run)
    assert len(failed) == 10 and all(c["outcome"] == "failed" for c in failed)
    assert "RoleBinding swe-ai-fleet-ray-access in ray refers to Role ray-client-acces, which does not exist (did it " \
           "mean Role ray-client-access?)" in failed[0]["message"]
    check = first_failed(run, "rbac.client-sa", "refers to Role ray-client-acces")
    command = check["remediation"]["steps"][0]["command"]
    assert command == ("kubectl delete rolebinding swe-ai-fleet-ray-access -n ray && kubectl create rolebinding "
                       "swe-ai-fleet-ray-access -n ray --role=ray-client-access "
                       "--serviceaccount=swe-ai-fleet:workspace-runner-sa --serviceaccount=swe-ai-fleet:batch")
    fixed = without_seed_rbac(seed_state) + [
        role("Role", "ray-client-access", RAY_CLIENT_RULES, "ray"),
        binding("RoleBinding", "swe-ai-fleet-ray-access", "Role", "ray-client-access", [SA, other], "ray")]
    assert all(c["outcome"] == "passed" for c in access_results(rbac_run(run_suite, write_dump, fixed)))


def test_a_binding_to_a_role_that_never_existed_gets_that_role(run_suite, seed_state, write_dump):
    state = without_seed_rbac(seed_state) + [
        binding("RoleBinding", "agents", "Role", "ray-agents", [SA], "ray")]
    check = first_failed(rbac_run(run_suite, write_dump, state), "rbac.client-sa",
                         "RoleBinding agents in ray refers to Role ray-agents, which does not exist")
    assert check["cause"] == "dangling-role"
    command = check["remediation"]["steps"][0]["command"]
    assert "kind: Role\nmetadata:\n  name: ray-agents\n  namespace: ray\nrules:" in command


def test_a_missing_service_account_is_a_finding(run_suite, seed_state, write_dump):
    state = [o for o in seed_state if o["kind"] != "ServiceAccount"] + [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "workspace-runner", "namespace": "swe-ai-fleet"}}]
    run = rbac_run(run_suite, write_dump, state)
    check = next(c for c in run.report["checks"] if c["nodeid"].endswith("test_client_sa_exists"))
    assert check["outcome"] == "failed" and check["cause"] == "no-serviceaccount"
    assert "ServiceAccount workspace-runner-sa does not exist in swe-ai-fleet (there is workspace-runner" in check["message"]
    assert check["remediation"]["steps"][0]["command"] == "kubectl create serviceaccount workspace-runner-sa -n swe-ai-fleet"


def test_group_subjects_grant(run_suite, seed_state, write_dump):
    state = without_seed_rbac(seed_state) + [
        role("Role", "ray-client", RAY_CLIENT_RULES, "ray"),
        binding("RoleBinding", "fleet", "Role", "ray-client",
                [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:swe-ai-fleet"}],
                "ray")]
    run = rbac_run(run_suite, write_dump, state)
    assert all(c["outcome"] == "passed" for c in access_results(run)), repr(run)
    assert "allowed by RoleBinding fleet in ray -> Role ray-client" in access_results(run)[0]["message"]


def test_default_bindings_are_never_findings_nor_deleted(run_suite, seed_state, write_dump):
    run = rbac_run(run_suite, write_dump, seed_state + DEFAULTS)
    check = assert_problem(run, "rbac.least-privilege", "failed", "warning", "swe-ai-fleet-ray-access")
    commands = " ".join(s["command"] or "" for s in check["remediation"]["steps"])
    for default in ("system:basic-user", "system:discovery", "system:public-info-viewer"):
        assert default not in check["message"] and default not in commands
    assert "kubectl delete clusterrolebinding swe-ai-fleet-ray-access" in commands
    assert check["remediation"]["steps"][1]["danger"]
    # with the excess gone, the defaults alone pass
    healthy = without_seed_rbac(seed_state) + DEFAULTS + [
        role("Role", "ray-client", RAY_CLIENT_RULES, "ray"), binding("RoleBinding", "ray-client", "Role", "ray-client", [SA], "ray")]
    least = rbac_run(run_suite, write_dump, healthy).check("rbac.least-privilege")
    assert least["outcome"] == "passed" and "from Kubernetes' default bindings" in least["message"]


def test_a_shared_binding_loses_only_the_client(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    crb = next(o for o in state if o["kind"] == "ClusterRoleBinding")
    crb["subjects"] = [{"kind": "ServiceAccount", "name": "ci", "namespace": "build"}, SA,
                       {"kind": "User", "name": "alice@example.com"}]
    check = rbac_run(run_suite, write_dump, state).check("rbac.least-privilege")
    command = check["remediation"]["steps"][1]["command"]
    assert "kubectl delete" not in command
    ops = json.loads(re.search(r"-p '(.*)'", command).group(1))
    assert ops == [{"op": "test", "path": "/subjects/1/kind", "value": "ServiceAccount"},
                   {"op": "test", "path": "/subjects/1/name", "value": "workspace-runner-sa"},
                   {"op": "remove", "path": "/subjects/1"}]
    assert "it keeps its 2 other subjects" in check["remediation"]["steps"][1]["text"]


def test_excess_through_a_group_is_named_not_removed(run_suite, seed_state, write_dump):
    state = without_seed_rbac(seed_state) + [
        role("Role", "ray-client", RAY_CLIENT_RULES, "ray"), binding("RoleBinding", "ray-client", "Role", "ray-client", [SA], "ray"),
        role("ClusterRole", "view-all", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]),
        binding("ClusterRoleBinding", "all-sa-view", "ClusterRole", "view-all",
                [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts"}])]
    check = rbac_run(run_suite, write_dump, state).check("rbac.least-privilege")
    assert check["outcome"] == "failed" and check["cause"] == "excess-shared"
    assert "every ServiceAccount of the cluster" in str(check["remediation"])
    assert not any((s["command"] or "").startswith(("kubectl delete", "kubectl patch")) for s in check["remediation"]["steps"])


def test_kubernetes_token_mode_needs_ray_write(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    cluster = next(o for o in state if o["kind"] == "RayCluster")
    cluster["spec"]["authOptions"] = {"mode": "token", "enableK8sTokenAuth": True}
    run = rbac_run(run_suite, write_dump, state)
    check = next(c for c in run.report["checks"] if "kubernetes_token" in c["nodeid"])
    assert check["outcome"] == "failed" and check["cause"] == "k8s-token"
    assert "may not ray:write ray.io/rayclusters in ray ray-gpu" in check["message"]
    grant = check["remediation"]["steps"][0]["command"]
    assert "resourceNames: [ray-gpu]" in grant and 'verbs: ["ray:write"]' in grant
    granted = state + [role("Role", "ray-write", [{"apiGroups": ["ray.io"], "resources": ["rayclusters"],
                                                  "resourceNames": ["ray-gpu"], "verbs": ["ray:write"]}], "ray"),
                       binding("RoleBinding", "ray-write", "Role", "ray-write", [SA], "ray")]
    passed = next(c for c in rbac_run(run_suite, write_dump, granted).report["checks"] if "kubernetes_token" in c["nodeid"])
    assert passed["outcome"] == "passed", passed
