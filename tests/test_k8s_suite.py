"""The k8s, rbac and security checks end to end: from a dump, live through the loopback API server
(the real ``kubernetes`` client over HTTP), and from an overlay of manifests, healthy and broken."""

from __future__ import annotations

import copy


from tests.test_connectivity_suite import assert_problem

TARGET = """\
ray:
  address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"
  namespace: ray
  cluster_name: ray-gpu
raycheck:
  client_namespace: swe-ai-fleet
  service_account: workspace-runner-sa
  dashboard_alias: internal-ray-dashboard
"""
OFFLINE = ("-m", "not network")
SEED_OUTCOMES = {"k8s.raycluster-ready": "passed", "k8s.head-service": "passed", "k8s.client-path": "passed",
                 "rbac.client-sa": "passed",
                 "rbac.least-privilege": "failed", "security.ray-exposure": "failed",
                 "gpu.node-allocatable": "passed", "gpu.ray-gpus-backed": "passed", "gpu.device-plugin": "passed",
                 "gpu.sharing": "failed",
                 "oom.recent-kills": "passed", "oom.requests-fit": "passed", "oom.limits-overcommit": "failed",
                 "oom.headroom": "passed", "oom.shm": "passed", "capacity.autoscale-range": "passed",
                 "capacity.manifests-fit": "skipped"}


def by_nodeid(run):
    return {c["nodeid"]: (c["id"], c["outcome"]) for c in run.report["checks"]}


def remove(objects, kind, name, namespace=None):
    return [o for o in objects if not (o["kind"] == kind and o["metadata"]["name"] == name
                                       and (namespace is None or o["metadata"].get("namespace") == namespace))]


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


# ----------------------------------------------------------------------------- the seed, three ways


def test_seed_from_a_dump(run_suite, seed_state, write_dump):
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(seed_state)}")
    assert run.status == 0, repr(run)  # only warnings fail on the seed
    assert {c["id"]: c["outcome"] for c in run.report["checks"]} == SEED_OUTCOMES
    # one per required (group, resource, verb), the ServiceAccount itself, ray:write under Kubernetes token auth
    assert len([c for c in run.report["checks"] if c["id"] == "rbac.client-sa"]) == 12
    least = assert_problem(run, "rbac.least-privilege", "failed", "warning", "more than the required")
    assert "ClusterRoleBinding swe-ai-fleet-ray-access" in least["message"]
    assert "kubectl delete clusterrolebinding swe-ai-fleet-ray-access" in least["remediation"]["steps"][1]["command"]
    exposure = assert_problem(run, "security.ray-exposure", "failed", "warning", "Nothing restricts")
    assert "kind: NetworkPolicy" in exposure["remediation"]["steps"][0]["command"]
    assert run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(seed_state)}", "--fail-on=warning").status == 1


def test_same_outcomes_from_dump_live_and_overlay(run_suite, seed_state, write_dump, api_server, tmp_path):
    same = ("-m", "not network and not gate")  # the gate's fit check exists only with manifests
    folder = write_dump(seed_state)
    dump = run_suite(TARGET, *same, f"--cluster-dump={folder}")
    server = api_server(seed_state)
    live = run_suite(TARGET, *same, f"--kubeconfig={server.kubeconfig(tmp_path / 'kubeconfig')}")
    # the same objects applied over the dump change nothing (over no cluster state, only the kinds
    # the manifests hold would be evidence)
    overlay = run_suite(TARGET, *same, f"--cluster-dump={folder}", f"--with-manifests={write_dump(seed_state)}")
    assert by_nodeid(dump) == by_nodeid(live) == by_nodeid(overlay), (repr(dump), repr(live), repr(overlay))
    # live, the access checks were answered by the API server's access reviews, and nothing was written
    methods = {(r.method, r.path.rsplit("/", 1)[-1]) for r in server.log}
    assert ("POST", "subjectaccessreviews") in methods
    assert {m for m, _ in methods} == {"GET", "POST"}
    assert all(r.path.endswith("subjectaccessreviews") for r in server.log if r.method == "POST")
    # and the lists were narrowed: pods by the RayCluster's label, never all pods of the cluster
    pod_lists = [r for r in server.log if r.path.endswith("/pods")]
    assert pod_lists and all("labelSelector" in r.query or "fieldSelector" in r.query for r in pod_lists)


# ----------------------------------------------------------------------------- k8s.*


def test_head_service_missing(run_suite, seed_state, write_dump):
    state = remove(seed_state, "Service", "ray-gpu-head-svc")
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(state)}")
    assert run.status == 1
    check = assert_problem(run, "k8s.head-service", "failed", "critical", "does not exist in ray")
    assert "Service ray-gpu-head-svc in ray not found" in check["message"]


def test_dns_failure_names_the_missing_service_not_coredns(run_suite, seed_state, write_dump, serve_dns, ray_head):
    state = remove(seed_state, "Service", "ray-gpu-head-svc")
    run = run_suite(TARGET, "-m", "dns", f"--cluster-dump={write_dump(state)}", dns=serve_dns(state))
    check = assert_problem(run, "dns.head-service", "failed", "critical", "because the Service ray-gpu-head-svc")
    assert "cluster state: Service ray-gpu-head-svc in ray not found" in check["message"]
    assert "coredns" not in str(check["remediation"]).lower()


def test_head_service_without_client_port_or_endpoints(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    svc = find(state, "Service", "ray-gpu-head-svc")
    svc["spec"]["ports"] = [p for p in svc["spec"]["ports"] if p["name"] != "client"]
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(state)}")
    assert_problem(run, "k8s.head-service", "failed", "critical", "no port named 'client'")
    no_endpoints = remove(remove(seed_state, "EndpointSlice", "ray-gpu-head-svc-7x2kq"), "Pod", "ray-gpu-head-7zc7c")
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(no_endpoints)}")
    assert_problem(run, "k8s.head-service", "failed", "critical", "has no ready endpoint")
    assert_problem(run, "k8s.raycluster-ready", "failed", "critical", "head pod")


def test_workers_pending_for_gpus(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    workers = [o for o in state if o["kind"] == "Pod" and o["metadata"]["labels"].get("ray.io/node-type") == "worker"]
    for pod in workers[4:]:
        pod["spec"].pop("nodeName")
        pod["status"] = {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]}
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "k8s.raycluster-ready", "failed", "critical", "4 of 8 workers ready")
    assert "4/8 workers ready" in check["message"] and "Insufficient nvidia.com/gpu" in check["message"]
    assert '"value":4' in check["remediation"]["steps"][2]["command"]


def test_head_crashlooping_and_raycluster_missing(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    head = find(state, "Pod", "ray-gpu-head-7zc7c")
    head["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    head["status"]["containerStatuses"][0].update(
        ready=False, restartCount=7, state={"waiting": {"reason": "CrashLoopBackOff"}})
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "k8s.raycluster-ready", "failed", "critical", "CrashLoopBackOff (7 restarts)")
    assert "--previous" in check["remediation"]["steps"][1]["command"]
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(remove(seed_state, 'RayCluster', 'ray-gpu'))}")
    assert_problem(run, "k8s.raycluster-ready", "failed", "critical", "does not exist in ray")


# ----------------------------------------------------------------------------- rbac.*


def _without_seed_rbac(state):
    return [o for o in state if o["kind"] not in ("ClusterRoleBinding", "RoleBinding", "Role")]


def test_binding_in_the_wrong_namespace_misses_every_permission(run_suite, seed_state, write_dump):
    state = _without_seed_rbac(seed_state) + [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "ray-access", "namespace": "swe-ai-fleet"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ray-client-access"},
        "subjects": [{"kind": "ServiceAccount", "name": "workspace-runner-sa", "namespace": "swe-ai-fleet"}]}]
    run = run_suite(TARGET, "-m", "rbac", f"--cluster-dump={write_dump(state)}")
    access = [c for c in run.report["checks"] if "test_client_sa_may[" in c["nodeid"]]
    assert len(access) == 10 and all(c["outcome"] == "failed" for c in access), repr(run)
    assert run.status == 1


def test_role_missing_two_verbs(run_suite, seed_state, write_dump):
    state = _without_seed_rbac(seed_state) + [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "ray-client", "namespace": "ray"},
         "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
                   {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "list", "create"]},
                   {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["get", "list", "delete"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "ray-client", "namespace": "ray"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ray-client"},
         "subjects": [{"kind": "ServiceAccount", "name": "workspace-runner-sa", "namespace": "swe-ai-fleet"}]}]
    run = run_suite(TARGET, "-m", "rbac", f"--cluster-dump={write_dump(state)}")
    failed = [c for c in run.report["checks"] if c["id"] == "rbac.client-sa" and c["outcome"] == "failed"]
    assert sorted(c["message"].split(" may not ")[1].split(":")[0] for c in failed) == \
        ["create ray.io/rayjobs in ray", "delete ray.io/rayclusters in ray"]
    yaml_fix = failed[0]["remediation"]["steps"][0]["command"]
    assert "resources: [rayclusters]\n  verbs: [delete]" in yaml_fix and "resources: [rayjobs]\n  verbs: [create]" in yaml_fix
    assert "kind: RoleBinding" in yaml_fix and "namespace: ray" in yaml_fix
    assert "Role missing" not in yaml_fix
    least = run.check("rbac.least-privilege")
    assert least["outcome"] == "passed", least  # a namespaced Role within the required list


# ----------------------------------------------------------------------------- security.ray-exposure


def _policy(ingress):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "ray-head-ingress", "namespace": "ray"},
            "spec": {"podSelector": {"matchLabels": {"ray.io/node-type": "head"}}, "policyTypes": ["Ingress"],
                     "ingress": ingress}}


def test_policy_admitting_only_the_client_namespace_passes(run_suite, seed_state, write_dump):
    state = seed_state + [_policy([{"from": [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "swe-ai-fleet"}}}]}])]
    run = run_suite(TARGET, "-m", "security and not rbac", f"--cluster-dump={write_dump(state)}")
    check = run.check("security.ray-exposure")
    assert check["outcome"] == "passed", check
    assert "only from ray, swe-ai-fleet" in check["message"]


def test_policy_admitting_every_namespace_fails(run_suite, seed_state, write_dump):
    state = seed_state + [_policy([{"from": [{"namespaceSelector": {}}], "ports": [{"port": 10001}]}])]
    run = run_suite(TARGET, "-m", "security and not rbac", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "security.ray-exposure", "failed", "warning", "admits more than")
    assert "10001 (client) from every namespace" in check["message"]


# ----------------------------------------------------------------------------- no state (API faults: test_fault_matrix.py)


def test_no_cluster_state_skips_with_the_reason(run_suite):
    run = run_suite(TARGET, *OFFLINE)
    assert run.status == 0
    assert all(c["outcome"] == "skipped" and "no Kubernetes state" in c["message"] for c in run.report["checks"])
