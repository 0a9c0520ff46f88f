"""Evidence, not absence: a dump that does not hold a kind says nothing about it.

Dumps as users make them (a plain ``kubectl get pods -o yaml``, a ``kubectl cluster-info dump``
folder, one file per kind and namespace): a check whose evidence is not there is skipped with the
command that adds it, never failed and never passed; bad files are bad input (exit 4)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests.test_k8s_suite import TARGET

OFFLINE = ("-m", "not network")


def healthy(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed without its warnings' causes: worker limits within the node, whole GPUs, a Role
    for the client, a NetworkPolicy admitting only the Ray and client namespaces."""
    out = copy.deepcopy(objects)
    for obj in out:
        if obj["kind"] == "Pod" and obj["metadata"]["labels"].get("ray.io/node-type") == "worker":
            obj["spec"]["containers"][0]["resources"]["limits"]["memory"] = "56Gi"
        if obj["kind"] == "RayCluster":
            for group in obj["spec"]["workerGroupSpecs"]:
                group["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "56Gi"
        if obj["kind"] == "Node":
            obj["metadata"]["labels"].update({"nvidia.com/gpu.count": "8", "nvidia.com/gpu.replicas": "1",
                                              "nvidia.com/gpu.sharing-strategy": "none",
                                              "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-3090"})
    return out


def pods_of(objects: list[dict[str, Any]], namespace: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "Pod" and (namespace is None or o["metadata"]["namespace"] == namespace)]


def as_list(items: list[dict[str, Any]], kind: str = "List") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "12345"}, "items": items}


def cluster_info_dump(folder: Path, objects: list[dict[str, Any]]) -> Path:
    """As ``kubectl cluster-info dump --all-namespaces --output-directory=DIR`` writes it: nodes.json,
    per namespace typed lists whose items carry no kind, and each pod's logs.txt."""
    folder.mkdir()

    def typed(kind: str, items: list[dict[str, Any]]) -> str:
        bare = [{k: v for k, v in copy.deepcopy(o).items() if k not in ("kind", "apiVersion")} for o in items]
        group = "apps/v1" if kind in ("DaemonSet", "Deployment", "ReplicaSet") else "v1"
        return json.dumps({**as_list(bare, f"{kind}List"), "apiVersion": group}, indent=2)

    (folder / "nodes.json").write_text(typed("Node", [o for o in objects if o["kind"] == "Node"]))
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} | {"default", "kube-system"}
    for ns in sorted(namespaces):
        where = folder / ns
        where.mkdir()
        for kind, name in (("Pod", "pods"), ("Service", "services"), ("Event", "events"), ("DaemonSet", "daemonsets"),
                           ("Deployment", "deployments"), ("ReplicaSet", "replicasets"),
                           ("ReplicationController", "replicationcontrollers")):
            items = [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == ns]
            (where / f"{name}.json").write_text(typed(kind, items))
        for pod in pods_of(objects, ns):
            (where / pod["metadata"]["name"]).mkdir()
            (where / pod["metadata"]["name"] / "logs.txt").write_text("==== START logs for container ray-head ====\n")
    return folder


def assert_nothing_fails(run) -> list[dict[str, Any]]:
    assert run.report is not None, run.output[-3000:]
    problems = [c for c in run.report["checks"] if c["outcome"] in ("failed", "error")]
    assert not problems, repr(run)
    assert run.status == 0
    return run.report["checks"]


def test_a_pods_only_dump_of_a_healthy_cluster_fails_nothing(run_suite, seed_state, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    # `kubectl get pods -n ray -o yaml > ray-pods.yaml`: a List, its items carry their kind
    (dump / "ray-pods.yaml").write_text(yaml.safe_dump(as_list(pods_of(healthy(seed_state), "ray"))))
    checks = assert_nothing_fails(run_suite(TARGET, *OFFLINE, f"--cluster-dump={dump}"))
    outcomes = {c["id"]: c["outcome"] for c in checks}
    assert outcomes["oom.shm"] == "passed" and outcomes["oom.recent-kills"] == "passed"
    skipped = {c["id"]: c["message"] for c in checks if c["outcome"] == "skipped"}
    assert "k8s.raycluster-ready" in skipped and "rbac.least-privilege" in skipped
    assert f"kubectl get rayclusters.ray.io -n ray -o yaml > {dump}/ray/rayclusters.yaml" in \
        skipped["k8s.raycluster-ready"]
    assert "the Ray pods are bound to wrx80-node1: what they request there is known, what the nodes can allocate " \
           "is not" in skipped["oom.requests-fit"]
    assert f"kubectl get nodes -o yaml > {dump}/nodes.yaml" in skipped["oom.requests-fit"]
    assert all("add them with: " in message for message in skipped.values() if "not evidence" in message)


def test_following_the_skipped_checks_commands_makes_them_run(run_suite, seed_state, tmp_path):
    """The commands write exactly the files that cover the kinds: NetworkPolicies of ray, none."""
    dump = tmp_path / "dump"
    dump.mkdir()
    objects = [o for o in seed_state if o["kind"] != "NetworkPolicy"]
    (dump / "objects.yaml").write_text(yaml.safe_dump(as_list(objects)))
    before = run_suite(TARGET, "-m", "security", f"--cluster-dump={dump}").check("security.ray-exposure")
    assert before["outcome"] == "skipped" and before["remediation"] is None
    command = f"mkdir -p {dump}/ray && kubectl get networkpolicies -n ray -o yaml > {dump}/ray/networkpolicies.yaml"
    assert command in before["message"]
    # what that command writes when the namespace has none: an empty List, evidence of absence
    (dump / "ray").mkdir()
    (dump / "ray" / "networkpolicies.yaml").write_text(yaml.safe_dump(as_list([])))
    after = run_suite(TARGET, "-m", "security", f"--cluster-dump={dump}").check("security.ray-exposure")
    assert after["outcome"] == "failed" and "no NetworkPolicy in ray selects the head pod" in after["message"]


def test_a_cluster_info_dump_of_a_healthy_cluster_fails_nothing(run_suite, seed_state, tmp_path):
    dump = cluster_info_dump(tmp_path / "cluster-info", healthy(seed_state))
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={dump}")
    checks = assert_nothing_fails(run)
    outcomes = {c["id"]: c["outcome"] for c in checks}
    for ran in ("k8s.head-service", "oom.requests-fit", "oom.limits-overcommit", "oom.headroom", "oom.shm",
                "oom.recent-kills", "gpu.device-plugin", "gpu.sharing"):
        assert outcomes[ran] == "passed", (ran, repr(run))
    skipped = {c["id"]: c["message"] for c in checks if c["outcome"] == "skipped"}
    # it holds no custom resources, no RBAC, no NetworkPolicies: those checks say what adds them
    assert "kubectl get rayclusters.ray.io -n ray -o yaml" in skipped["k8s.raycluster-ready"]
    assert "kubectl get networkpolicies -n ray -o yaml" in skipped["security.ray-exposure"]
    assert "kubectl get clusterroles -o yaml" in skipped["rbac.least-privilege"] or \
        "kubectl get roles -A -o yaml" in skipped["rbac.least-privilege"]
    covered = run.report["cluster_state"]["covered"]
    assert covered["Pod"] == ["*"] and covered["Node"] == [] and "RayCluster" not in covered


def test_report_lists_what_the_dump_covered(run_suite, seed_state, write_dump):
    run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(seed_state)}")
    covered = run.report["cluster_state"]["covered"]
    assert covered["NetworkPolicy"] == ["*"] and covered["ClusterRole"] == []


def test_a_file_that_is_not_text_is_bad_input(run_suite, seed_state, write_dump):
    dump = write_dump(seed_state)
    (dump / "garbage.json").write_bytes(bytes(range(256)) * 12)
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={dump}")
    assert run.status == 4 and run.report is None
    assert f"ERROR: {dump}/garbage.json: not a text file" in run.output
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output


def test_an_object_no_api_server_would_return_is_bad_input(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    pod = next(o for o in state if o["kind"] == "Pod")
    pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = "lots"
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(state)}")
    assert run.status == 4 and run.report is None
    line = next(line for line in run.output.splitlines() if line.startswith("ERROR:"))
    assert f"Pod ray/{pod['metadata']['name']}: spec.containers[0].resources.requests.memory: 'lots' is not a " \
           "Kubernetes quantity" in line and "pods.yaml" in line
    assert "Traceback" not in run.output and run.output.count("ERROR:") == 1


def test_a_namespaces_pods_at_the_dumps_top_are_that_namespaces_only(run_suite, seed_state, tmp_path):
    """``kubectl get pods -n ray -o yaml > DIR/pods.yaml`` (beside the nodes) is not ``-A``: what else
    runs on the nodes is unknown, so the node checks skip instead of passing on a node they half see.
    The same file with the other namespaces' pods in it is ``-A``, and they decide."""
    state = copy.deepcopy(seed_state)
    node = next(o for o in state if o["kind"] == "Node")
    node["status"]["allocatable"]["memory"] = "600Gi"  # the Ray pods alone fit, with headroom
    hog = copy.deepcopy(pods_of(state, "kube-system")[0])
    hog["metadata"].update(name="batch-hog", namespace="default")
    hog["spec"]["containers"][0]["resources"] = {"requests": {"memory": "300Gi"}}
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "nodes.yaml").write_text(yaml.safe_dump(as_list([node])))
    (dump / "pods.yaml").write_text(yaml.safe_dump(as_list(pods_of(state, "ray"))))
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={dump}")
    check = run.check("oom.requests-fit")
    assert check["outcome"] == "skipped" and "holds no pods in every namespace" in check["message"], check
    (dump / "pods.yaml").write_text(yaml.safe_dump(as_list(pods_of(state) + [hog])))
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={dump}")
    assert run.check("oom.requests-fit")["outcome"] == "failed", run.check("oom.requests-fit")


def test_a_kind_listed_in_every_namespace_covers_every_namespace(seed_state, tmp_path):
    """``kubectl get pods -n <ns>`` into ``DIR/<ns>/pods.yaml`` for each namespace of ``namespaces.yaml``
    is what ``-A`` says; one namespace left out, and it says nothing of that one."""
    from raycheck.cluster.files import read_dump
    from raycheck.harness.scenarios import write_snapshot

    dump = write_snapshot(tmp_path / "dump", seed_state)
    assert (dump / "swe-ai-fleet" / "networkpolicies.yaml").is_file()
    assert read_dump(dump).coverage.covers("Pod", None) and read_dump(dump).coverage.covers("NetworkPolicy", None)
    (dump / "gpu-operator" / "pods.yaml").unlink()
    coverage = read_dump(dump).coverage
    assert not coverage.covers("Pod", None) and coverage.covers("Pod", "ray") and not coverage.covers("Pod", "gpu-operator")


def test_a_kind_of_the_same_name_in_another_api_group_is_not_that_kind(run_suite, seed_state, tmp_path):
    """Calico's ``projectcalico.org/v3`` NetworkPolicy (``kubectl get networkpolicies.projectcalico.org``)
    is another object under the same name: read as a Kubernetes NetworkPolicy it would have no
    podSelector (every pod) and rules without peers (everyone). It is ignored and counted, and it
    covers nothing: the Kubernetes policies stay unknown."""
    state = [o for o in copy.deepcopy(seed_state) if o["kind"] != "NetworkPolicy"]
    calico = {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
              "metadata": {"name": "allow-agents", "namespace": "ray"},
              "spec": {"selector": "ray.io/node-type == 'head'", "types": ["Ingress"],
                       "ingress": [{"action": "Allow", "source": {"namespaceSelector": "all()"}}]}}
    dump = tmp_path / "dump"
    dump.mkdir()
    for kind in ("Namespace", "Node", "Pod", "Service", "EndpointSlice", "RayCluster", "ServiceAccount"):
        plural = {"Namespace": "namespaces", "Node": "nodes", "Pod": "pods", "Service": "services",
                  "EndpointSlice": "endpointslices", "RayCluster": "rayclusters", "ServiceAccount": "serviceaccounts"}
        (dump / f"{plural[kind]}.yaml").write_text(yaml.safe_dump(as_list([o for o in state if o["kind"] == kind])))
    (dump / "networkpolicies.yaml").write_text(yaml.safe_dump(as_list([calico])))
    run = run_suite(TARGET, "-m", "k8s or security", f"--cluster-dump={dump}")
    assert run.report["cluster_state"]["ignored_kinds"] == {"NetworkPolicy (projectcalico.org/v3)": 1}
    for check_id in ("k8s.client-path", "security.ray-exposure"):
        check = run.check(check_id)
        assert check["outcome"] == "skipped" and "holds no networkpolicies" in check["message"], check
