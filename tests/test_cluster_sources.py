"""Cluster sources: dumps as kubectl writes them, overlays as kubectl apply would, and the live
source's pagination, selectors and fault handling against the loopback API server."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from raycheck.cluster.live import LiveSource
from raycheck.cluster.overlay import OverlaySource, load_manifests
from raycheck.model.kuberay import desired_workers, expand_raycluster
from raycheck.cluster.source import ClusterReadError, MemorySource, Query, dump_source
from raycheck.errors import ConfigError
from tests.apiserver import Fault


def test_dump_reads_lists_multidoc_yaml_and_cluster_info_json(tmp_path, seed_state):
    pods = [o for o in seed_state if o["kind"] == "Pod"]
    (tmp_path / "ray").mkdir()
    # kubectl cluster-info dump: a PodList whose items carry no kind
    (tmp_path / "ray" / "pods.json").write_text(json.dumps(
        {"kind": "PodList", "apiVersion": "v1", "items": [{k: v for k, v in p.items() if k != "kind"} for p in pods]}))
    services = [o for o in seed_state if o["kind"] == "Service"]
    (tmp_path / "svc.yml").write_text(yaml.safe_dump_all(services))
    (tmp_path / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ray}\n")
    (tmp_path / "notes.txt").write_text("ignored: not a manifest suffix")
    source = dump_source(tmp_path)
    assert len(source.list(Query("Pod", "ray", {"ray.io/node-type": "worker"}))) == 8
    assert len(source.list(Query("Service"))) == 3
    assert source.ignored == {"ConfigMap": 1}


@pytest.mark.parametrize("name, text, where", [
    ("bad.yaml", "items:\n  - {kind: Pod\n", "bad.yaml:3: not valid YAML"),
    ("bad.json", '{"kind": "PodList",\n "items": [}', "bad.json:2: not valid JSON"),
])
def test_unparsable_dump_file_names_file_and_line(tmp_path, name, text, where):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=where):
        dump_source(tmp_path)


def test_bad_dump_is_a_usage_error_for_the_suite(run_suite, tmp_path):
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "broken.yaml").write_text("kind: [\n")
    run = run_suite('ray: {address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"}\n', "-m", "k8s",
                    f"--cluster-dump={tmp_path / 'dump'}")
    assert run.status == 4 and "broken.yaml:2: not valid YAML" in run.output and run.report is None


def raycluster(name="agents", replicas=4, minimum=2, maximum=4, hosts=1, **group):
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name, "namespace": "swe-ai-fleet"},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{
                "name": "ray-head", "image": "rayproject/ray:2.49.2",
                "ports": [{"name": "client", "containerPort": 10001}, {"name": "dashboard", "containerPort": 8265}]}]}}},
                "workerGroupSpecs": [{"groupName": "gpu-workers", "replicas": replicas, "minReplicas": minimum,
                                      "maxReplicas": maximum, "numOfHosts": hosts, **group,
                                      "template": {"spec": {"containers": [{"name": "w", "image": "x"}]}}}]}}


@pytest.mark.parametrize("group, expected", [
    ({"replicas": 4, "minReplicas": 2, "maxReplicas": 4}, 4),
    ({"replicas": 9, "minReplicas": 2, "maxReplicas": 4}, 4),
    ({"replicas": 1, "minReplicas": 2, "maxReplicas": 4}, 2),
    ({"replicas": 3, "minReplicas": 0, "maxReplicas": 5, "numOfHosts": 2}, 6),
    ({"replicas": 3, "suspend": True}, 0),
    ({"minReplicas": 1}, 1),
])
def test_desired_workers_clamps_replicas_times_hosts(group, expected):
    assert desired_workers(group) == expected


def test_raycluster_expansion_names_and_labels_like_kuberay():
    objects = expand_raycluster(raycluster(hosts=1))
    pods = [o for o in objects if o["kind"] == "Pod"]
    assert len(pods) == 5
    head = pods[0]
    assert head["metadata"]["name"].startswith("agents-head-") and len(head["metadata"]["name"]) == len("agents-head-") + 5
    assert head["metadata"]["labels"]["ray.io/node-type"] == "head"
    assert all(p["metadata"]["name"].startswith("agents-gpu-workers-worker-") for p in pods[1:])
    assert all(p["metadata"]["labels"]["ray.io/group"] == "gpu-workers" for p in pods[1:])
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["metadata"]["name"] == "agents-head-svc" and service["spec"]["clusterIP"] == "None"
    # the declared ports, and metrics 8080 that KubeRay adds when it is not declared
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"client": 10001, "dashboard": 8265,
                                                                        "metrics": 8080}


def test_the_autoscaler_sidecar_takes_the_head_nodes_resources_too():
    """Under enableInTreeAutoscaling KubeRay adds its autoscaler container to the head pod (500m CPU and
    512Mi unless autoscalerOptions.resources says otherwise); a suspended cluster has no pods."""
    from raycheck.model.capacity import pod_shape
    from raycheck.model.kuberay import ray_container

    def head(cluster):
        return next(o for o in expand_raycluster(cluster) if o["kind"] == "Pod")

    cluster = raycluster()
    assert [c["name"] for c in head(cluster)["spec"]["containers"]] == ["ray-head"]
    cluster["spec"]["enableInTreeAutoscaling"] = True
    pod = head(cluster)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ray-head", "autoscaler"]
    assert ray_container(pod["spec"])["name"] == "ray-head"
    assert pod_shape(pod).requests["cpu"] == Decimal("0.5") and pod_shape(pod).requests["memory"] == 512 * 1024 ** 2
    cluster["spec"]["autoscalerOptions"] = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
    assert pod_shape(head(cluster)).requests["cpu"] == 1
    cluster["spec"]["suspend"] = True
    assert [o["kind"] for o in expand_raycluster(cluster)] == ["Service"]


def test_overlay_creates_replaces_and_shadows(seed_state):
    base = MemorySource(seed_state)
    changed = raycluster(name="ray-gpu", replicas=4, minimum=1, maximum=8)
    changed["metadata"]["namespace"] = "ray"
    overlay = OverlaySource(base, [changed, raycluster()])
    ray_pods = overlay.list(Query("Pod", "ray", {"ray.io/cluster": "ray-gpu"}))
    assert len(ray_pods) == 5  # the replaced cluster's 9 running pods give way to 1 head + 4 workers
    assert len(overlay.list(Query("Pod", "swe-ai-fleet", {"ray.io/cluster": "agents"}))) == 5
    assert overlay.list(Query("RayCluster", "ray"))[0]["spec"]["workerGroupSpecs"][0]["replicas"] == 4
    assert len(overlay.list(Query("Node"))) == 1  # untouched kinds come from the base


def test_manifests_with_an_incomplete_raycluster_are_rejected(tmp_path):
    broken = raycluster()
    del broken["spec"]["headGroupSpec"]["template"]
    (tmp_path / "rc.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(ConfigError, match=r"rc.yaml: RayCluster agents: spec.headGroupSpec.template.spec is required"):
        load_manifests(tmp_path)


@pytest.fixture
def live(api_server, seed_state, tmp_path):
    server = api_server(seed_state)
    source = LiveSource.connect(str(server.kubeconfig(tmp_path / "kc")), None, timeout=1.0)
    source.page_size = 2
    return server, source


def test_live_paginates_and_narrows(live):
    server, source = live
    pods = source.list(Query("Pod", "ray", {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "worker"}))
    assert len(pods) == 8 and all(p["kind"] == "Pod" for p in pods)
    assert source.requests == 4  # 8 items, 2 per page
    assert all(r.query["labelSelector"] == ["ray.io/cluster=ray-gpu,ray.io/node-type=worker"] for r in server.log)
    assert source.list(Query("RayCluster", "ray", fields={"metadata.name": "ray-gpu"}))[0]["kind"] == "RayCluster"


def test_live_restarts_a_list_whose_continue_expired(live):
    server, source = live
    server.faults["pods"] = Fault(status=410, on_continue=True, times=1)
    assert len(source.list(Query("Pod", "ray"))) == 9


def test_live_honours_retry_after_once(live):
    server, source = live
    server.faults["nodes"] = Fault(status=429, retry_after=0.1, times=1)
    assert len(source.list(Query("Node"))) == 1
    server.faults["nodes"] = Fault(status=429, retry_after=0.1)
    with pytest.raises(ClusterReadError) as info:
        source.list(Query("Node"))
    assert info.value.cause == "throttled"


@pytest.mark.parametrize("fault, cause", [
    (Fault(status=401), "unauthorized"), (Fault(status=403), "forbidden"), (Fault(status=404), "not-found"),
    (Fault(status=500), "unavailable"), (Fault(delay=2), "timeout"), (Fault(reset=True), "unreachable"),
])
def test_live_faults_become_read_errors(live, fault, cause):
    server, source = live
    server.faults["services"] = fault
    with pytest.raises(ClusterReadError) as info:
        source.list(Query("Service", "ray"))
    assert info.value.cause == cause


def test_unloadable_kubeconfig(tmp_path):
    (tmp_path / "kc").write_text("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t-tok}}]\n")
    with pytest.raises(ClusterReadError) as info:
        LiveSource.connect(str(tmp_path / "kc"), None, 1.0)
    assert info.value.cause == "no-config" and "s3cr3t-tok" not in str(info.value)
