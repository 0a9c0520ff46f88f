"""Real object shapes (FACTS.md, "Real-world object shapes"): what KubeRay and the kubelet really
write, each proven both ways on the seed: the healthy shape passes, the broken one fails with the
cause named in the message and its remediation rendered."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.test_k8s_suite import TARGET


def by_name(objects: list[dict[str, Any]], kind: str, prefix: str = "") -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)]


def workers(objects):
    return by_name(objects, "Pod", "ray-gpu-gpu-workers-worker-")


def head(objects):
    return by_name(objects, "Pod", "ray-gpu-head-")[0]


def raycluster(objects):
    return by_name(objects, "RayCluster")[0]


def pending_unschedulable(pod: dict[str, Any], message: str) -> None:
    """A Pending pod the scheduler could not place: no node, no containerStatuses."""
    pod["spec"].pop("nodeName", None)
    pod["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
         "lastTransitionTime": "2026-11-22T09:20:00Z"}]}


def waiting_for_gcs(pod: dict[str, Any], since: str) -> None:
    """A worker in KubeRay's init container until the head's GCS answers (Init:0/1)."""
    pod["spec"]["initContainers"] = [{"name": "wait-gcs-ready", "image": "rayproject/ray:2.49.2-py311",
                                      "command": ["/bin/bash", "-lc", "--"], "args": ["until ray health-check; do sleep 5; done"]}]
    pod["status"] = {"phase": "Pending", "conditions": [
        {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"},
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        {"type": "PodScheduled", "status": "True"}],
        "initContainerStatuses": [{"name": "wait-gcs-ready", "ready": False, "restartCount": 0,
                                   "state": {"running": {"startedAt": since}}}],
        "containerStatuses": [{"name": "ray-worker", "ready": False, "restartCount": 0,
                               "state": {"waiting": {"reason": "PodInitializing"}}}]}


def k8s_check(run_suite, write_dump, state, check="k8s.raycluster-ready", *args):
    return run_suite(TARGET, "-m", "k8s or oom", f"--cluster-dump={write_dump(state)}", *args).check(check)


def assert_fails(check, cause_words, title_words=()):
    assert check["outcome"] == "failed", check
    for words in cause_words:
        assert words in check["message"], (words, check["message"])
    remediation = check["remediation"]
    assert remediation and remediation["steps"] and "{" not in remediation["title"]
    for words in title_words:
        assert words in remediation["title"], (words, remediation["title"])


def test_status_without_state_the_pods_decide(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    raycluster(state)["status"] = {"desiredWorkerReplicas": 8}  # KubeRay 0.4 wrote no state
    check = k8s_check(run_suite, write_dump, state)
    assert check["outcome"] == "passed" and "8/8 workers ready" in check["message"]
    assert "unknown" not in check["message"]


def test_state_ready_while_workers_are_pending(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    raycluster(state)["status"] = {"state": "ready", "desiredWorkerReplicas": 8}
    for pod in workers(state)[6:]:
        pending_unschedulable(pod, "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["6/8 workers ready", "2 pods Pending: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu",
                         "KubeRay: state ready"], ["GPU workers cannot be scheduled"])


def test_state_failed_on_a_resource_quota_is_quoted(run_suite, seed_state, write_dump):
    state = [o for o in copy.deepcopy(seed_state) if o["kind"] != "Pod" or "ray-gpu" not in o["metadata"]["name"]]
    reason = ('pods "ray-gpu-head-7zc7c" is forbidden: exceeded quota: ray-quota, requested: limits.memory=32Gi, '
              'used: limits.memory=480Gi, limited: limits.memory=500Gi')
    raycluster(state)["status"] = {"state": "failed", "reason": reason, "head": {}}
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["no head pod", "0/8 workers ready", f"KubeRay: state failed ({reason})"],
                 ["ResourceQuota in ray"])
    assert any("kubectl describe resourcequota -n ray" == s["command"] for s in check["remediation"]["steps"])


def test_conditions_are_quoted_with_reason_and_message(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    head(state)["status"]["conditions"] = [c for c in head(state)["status"]["conditions"] if c["type"] != "Ready"] + [
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]
    raycluster(state)["status"]["conditions"] = [
        {"type": "HeadPodReady", "status": "False", "reason": "HeadPodNotReady", "message": "containers with unready status: [ray-head]"},
        {"type": "RayClusterProvisioned", "status": "True", "reason": "AllPodRunningAndReadyFirstTime"}]
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["head ray-gpu-head-7zc7c not ready",
                         "HeadPodReady=False (HeadPodNotReady: containers with unready status: [ray-head])"])
    assert "RayClusterProvisioned" not in check["message"]  # it never goes back to False: not a finding


def test_workers_waiting_in_wait_gcs_ready_are_named_with_since_when(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    for n, pod in enumerate(workers(state)):
        waiting_for_gcs(pod, f"2026-11-22T09:3{n}:00Z")
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["0/8 workers ready", "8 pods Init: wait-gcs-ready running (waiting for the head's GCS), "
                         "the longest since 2026-11-22T09:30:00Z"], ["wait in wait-gcs-ready"])


def test_terminating_pods_are_not_ready(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    workers(state)[0]["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["7/8 workers ready", "1 pod Terminating since 2026-11-22T10:00:00Z"])


def test_the_ray_container_is_found_by_what_it_runs_not_by_position(run_suite, seed_state, write_dump):
    """KubeRay's autoscaler sidecar listed first: /dev/shm is the Ray container's, not the sidecar's."""
    state = copy.deepcopy(seed_state)
    pod = head(state)
    pod["spec"]["containers"].insert(0, {"name": "autoscaler", "image": "rayproject/ray:2.49.2-py311",
                                         "command": ["ray"], "args": ["kuberay-autoscaler", "--cluster-name", "ray-gpu"],
                                         "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}})
    pod["status"]["containerStatuses"].insert(0, {"name": "autoscaler", "ready": True, "restartCount": 0,
                                                  "state": {"running": {}}})
    assert k8s_check(run_suite, write_dump, state, "oom.shm")["outcome"] == "passed"
    pod["spec"]["containers"][1]["volumeMounts"] = []  # now the Ray container has none: found, by name
    check = k8s_check(run_suite, write_dump, state, "oom.shm")
    assert_fails(check, ["1 of 9 Ray pods have no memory-backed /dev/shm", "ray-gpu-head-7zc7c"])


@pytest.mark.parametrize("reason, outcome", [("OOMKilled", "failed"), ("Error", "passed")])
def test_only_oomkilled_is_an_oom_kill(run_suite, seed_state, write_dump, reason, outcome):
    """Exit 137 with reason Error is a kill (a liveness probe, a preemption), not an OOM."""
    state = copy.deepcopy(seed_state)
    status = workers(state)[0]["status"]["containerStatuses"][0]
    status["restartCount"] = 1
    status["lastState"] = {"terminated": {"exitCode": 137, "reason": reason, "finishedAt": "2026-11-22T11:00:00Z"}}
    check = k8s_check(run_suite, write_dump, state, "oom.recent-kills")
    assert check["outcome"] == outcome, check
    if outcome == "failed":
        assert "OOMKilled" in check["message"] and check["remediation"]["steps"]


def test_rewritten_quantities_are_the_same_amounts(run_suite, seed_state, write_dump):
    """The API server shows a 2G limit as 1953125Ki: the same bytes."""
    state = copy.deepcopy(seed_state)
    for pod in workers(state):
        pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = "58720256Ki"  # 56Gi
    check = k8s_check(run_suite, write_dump, state, "oom.requests-fit")
    assert check["outcome"] == "passed" and "memory 464Gi of 516Gi" in check["message"]


def test_a_raycluster_from_manifests_gets_kuberays_dev_shm(run_suite, seed_state, write_dump, tmp_path):
    """The overlay makes the pods KubeRay would make, with the /dev/shm it injects."""
    import yaml

    manifest = copy.deepcopy(raycluster(seed_state))
    manifest["metadata"] = {"name": "ray-gpu", "namespace": "ray"}
    manifest.pop("status", None)
    file = tmp_path / "raycluster.yaml"
    file.write_text(yaml.safe_dump(manifest))
    base = [o for o in seed_state if not (o["kind"] == "Pod" and o["metadata"]["namespace"] == "ray")]
    check = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(base)}",
                      f"--with-manifests={file}").check("oom.shm")
    assert check["outcome"] == "passed" and "all 9 Ray pods mount a memory-backed /dev/shm" in check["message"]


def test_a_clusterip_head_service_from_before_kuberay_1_2(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    service = by_name(state, "Service", "ray-gpu-head-svc")[0]
    service["spec"]["clusterIP"] = "10.96.12.34"
    service["spec"].pop("publishNotReadyAddresses", None)
    check = k8s_check(run_suite, write_dump, state, "k8s.head-service")
    assert check["outcome"] == "passed" and "(ClusterIP)" in check["message"] and "GCS port gcs-server 6379" in check["message"]


def test_a_head_container_that_declares_ports_without_client(run_suite, seed_state, write_dump):
    """KubeRay's Service copies the head container's declared ports: without `client`, no 10001."""
    state = copy.deepcopy(seed_state)
    service = by_name(state, "Service", "ray-gpu-head-svc")[0]
    service["spec"]["ports"] = [p for p in service["spec"]["ports"] if p["name"] != "client"]
    container = raycluster(state)["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "gcs-server", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8265}]
    check = k8s_check(run_suite, write_dump, state, "k8s.head-service")
    assert_fails(check, ["has no port named 'client' on 10001",
                         "the head container declares only gcs-server 6379, dashboard 8265"])


def test_a_raycluster_a_rayservice_made_is_found_by_its_origin(run_suite, seed_state, write_dump):
    """A RayService names its RayCluster <owner>-<random>; the target names the owner (its head Service
    is <owner>-head-svc). The cluster and its pods are found under their own name."""
    state = copy.deepcopy(seed_state)
    own = "ray-gpu-x7k2p"
    cluster = raycluster(state)
    cluster["metadata"]["name"] = own
    cluster["metadata"].setdefault("labels", {}).update({"ray.io/originated-from-crd": "RayService",
                                                         "ray.io/originated-from-cr-name": "ray-gpu"})
    cluster["metadata"]["ownerReferences"] = [{"apiVersion": "ray.io/v1", "kind": "RayService", "name": "ray-gpu",
                                               "controller": True}]
    for pod in [o for o in state if o["kind"] == "Pod" and o["metadata"]["labels"].get("ray.io/cluster") == "ray-gpu"]:
        pod["metadata"]["labels"]["ray.io/cluster"] = own
    run = run_suite(TARGET, "-m", "k8s or oom", f"--cluster-dump={write_dump(state)}")
    ready = run.check("k8s.raycluster-ready")
    assert ready["outcome"] == "passed" and "8/8 workers ready" in ready["message"], repr(run)
    assert run.check("oom.requests-fit")["outcome"] == "passed", repr(run)


def test_state_ready_despite_a_quota_failure_the_event_is_quoted(run_suite, seed_state, write_dump):
    """KubeRay 1.2 can say ready while a ResourceQuota refused every pod: its Warning event says why."""
    state = [o for o in copy.deepcopy(seed_state) if o["kind"] != "Pod" or "ray-gpu" not in o["metadata"]["name"]]
    raycluster(state)["status"] = {"state": "ready", "desiredWorkerReplicas": 8}
    refused = ('pods "ray-gpu-head-7zc7c" is forbidden: exceeded quota: ray-quota, requested: limits.memory=32Gi, '
               'used: limits.memory=480Gi, limited: limits.memory=500Gi')
    state.append({"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "FailedToCreateHeadPod",
                  "message": refused, "lastTimestamp": "2026-11-22T09:20:00Z",
                  "metadata": {"name": "ray-gpu.1870a", "namespace": "ray"},
                  "involvedObject": {"kind": "RayCluster", "name": "ray-gpu", "namespace": "ray"}})
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["no head pod", f"event FailedToCreateHeadPod: {refused}"], ["ResourceQuota in ray"])


# ----------------------------------------------------------------------------- a RayCluster not applied yet


def _new_cluster(seed_state, declare_ports: bool = True) -> dict[str, Any]:
    """A RayCluster of the manifests that does not run yet: the seed's spec under another name, small."""
    manifest = copy.deepcopy(raycluster(seed_state))
    manifest["metadata"] = {"name": "ray-gpu", "namespace": "ray"}
    manifest.pop("status", None)
    group = manifest["spec"]["workerGroupSpecs"][0]
    group.update(replicas=1, minReplicas=1, maxReplicas=1)
    if not declare_ports:
        for container in manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"]:
            container.pop("ports", None)
    return manifest


def test_a_raycluster_not_applied_yet_is_judged_by_its_spec_only(run_suite, seed_state, write_dump, tmp_path):
    """The pods and Service the overlay makes for a RayCluster of the manifests are not scheduled,
    not ready and never restarted: their state is no evidence (skipped, saying so); their spec is
    (oom.shm, the head Service's ports). The same cluster running, in the dump, is judged."""
    import yaml

    file = tmp_path / "raycluster.yaml"
    file.write_text(yaml.safe_dump(_new_cluster(seed_state)))
    base = [o for o in seed_state if not (o["metadata"].get("namespace") == "ray" and o["kind"] in
                                          ("Pod", "RayCluster", "Service", "EndpointSlice"))]
    run = run_suite(TARGET, "-m", "(k8s or oom or capacity) and not network", f"--cluster-dump={write_dump(base)}",
                    f"--with-manifests={file}")
    for check_id in ("k8s.raycluster-ready", "k8s.head-service", "oom.recent-kills", "oom.requests-fit",
                     "oom.limits-overcommit", "oom.headroom"):
        check = run.check(check_id)
        assert check["outcome"] == "skipped", check
        assert "do not exist yet (what KubeRay would make of a RayCluster of --with-manifests, not applied yet)" \
            in check["message"], check
    assert run.check("oom.shm")["outcome"] == "passed"
    assert run.check("capacity.manifests-fit")["outcome"] == "passed"
    assert "failed" not in {c["outcome"] for c in run.report["checks"] if c["id"] != "security.ray-exposure"}, repr(run)
    # the running seed (the same spec, with its pods) is judged: these checks pass or fail, none skips
    running = run_suite(TARGET, "-m", "(k8s or oom) and not network", f"--cluster-dump={write_dump(seed_state)}")
    for check_id in ("k8s.raycluster-ready", "k8s.head-service", "oom.recent-kills", "oom.requests-fit"):
        assert running.check(check_id)["outcome"] in ("passed", "failed"), running.check(check_id)


def test_manifests_over_no_cluster_state_fail_nothing(run_suite, seed_state, tmp_path):
    """--with-manifests alone: what the manifests propose is not the cluster; no check fails."""
    import yaml

    file = tmp_path / "raycluster.yaml"
    file.write_text(yaml.safe_dump(_new_cluster(seed_state)))
    run = run_suite(TARGET, "-m", "not network", f"--with-manifests={file}")
    outcomes = {c["id"]: c["outcome"] for c in run.report["checks"]}
    assert "failed" not in outcomes.values() and "error" not in outcomes.values(), repr(run)
    assert outcomes["oom.shm"] == outcomes["gpu.ray-gpus-backed"] == "passed"
    assert run.status == 0


def test_a_head_that_declares_no_ports_gets_kuberays_default_service_ports(run_suite, seed_state, write_dump):
    """KubeRay gives the head Service its default ports (client 10001 among them) when the head's Ray
    container declares none: a Service without the client port is stale, not the spec's doing, and
    declaring the one port would drop the others."""
    from raycheck.model.kuberay import expand_raycluster, head_service_ports

    manifest = _new_cluster(seed_state, declare_ports=False)
    assert head_service_ports(manifest) == {"client": 10001, "dashboard": 8265, "gcs-server": 6379,
                                             "metrics": 8080, "serve": 8000}
    service = next(o for o in expand_raycluster(manifest) if o["kind"] == "Service")
    assert [p["name"] for p in service["spec"]["ports"]] == ["client", "dashboard", "gcs-server", "metrics", "serve"]
    unnamed = copy.deepcopy(manifest)
    unnamed["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 10001}]
    assert head_service_ports(unnamed) == {"10001-port": 10001, "metrics": 8080}
    # in a dump: the running Service lost its client port, the spec declares none
    state = copy.deepcopy(seed_state)
    cluster = raycluster(state)
    for container in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]:
        container.pop("ports", None)
    service = by_name(state, "Service", "ray-gpu-head-svc")[0]
    service["spec"]["ports"] = [p for p in service["spec"]["ports"] if p["name"] != "client"]
    check = k8s_check(run_suite, write_dump, state, "k8s.head-service")
    assert check["outcome"] == "failed" and check["cause"] == "stale-service", check


def test_a_suspended_raycluster(run_suite, seed_state, write_dump):
    """spec.suspend: true (Kueue, or by hand): KubeRay deletes every pod. The cause is the suspension,
    not a head that fails; resuming makes KubeRay create pods from nothing, which no copy of the state
    can show ready."""
    state = [o for o in copy.deepcopy(seed_state)
             if not (o["kind"] == "Pod" and o["metadata"]["labels"].get("ray.io/cluster") == "ray-gpu")]
    cluster = raycluster(state)
    cluster["spec"]["suspend"] = True
    cluster["status"] = {"state": "suspended", "desiredWorkerReplicas": 0}
    check = k8s_check(run_suite, write_dump, state)
    assert_fails(check, ["is suspended (spec.suspend: true)", "KubeRay: state suspended"])
    assert check["cause"] == "suspended"
    steps = check["remediation"]["steps"]
    assert """--type=merge -p '{"spec":{"suspend":false}}'""" in steps[1]["command"] and steps[1]["danger"]
    verification = check["remediation"]["verification"]
    assert verification["status"] == "not verifiable", verification
    assert "do not exist yet (what KubeRay would make of the remediation's change" in verification["message"]


def test_the_client_port_patch_keeps_kuberays_default_ports():
    """A head that declares no ports gets KubeRay's defaults: client on another port than 10001 is
    declared with all of them, never alone (one declared port would replace the defaults)."""
    from raycheck.checks.k8s import declare_client_port
    from raycheck.model.kuberay import DEFAULT_HEAD_PORTS

    cluster = {"metadata": {"name": "c"}, "spec": {"headGroupSpec": {"template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.49.2"}]}}}}}
    assert declare_client_port(cluster, 10001) == []  # the defaults hold it: a Service without it is stale
    ops = declare_client_port(cluster, 10011)
    assert ops[-1]["path"] == "/spec/headGroupSpec/template/spec/containers/0/ports"
    assert {p["name"]: p["containerPort"] for p in ops[-1]["value"]} == {**DEFAULT_HEAD_PORTS, "client": 10011}
