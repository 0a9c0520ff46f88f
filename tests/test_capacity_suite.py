"""GPU, OOM and capacity checks end to end on the seed and its broken variants, the gate's fit
decision, the what-if CLI, and the GPU checks against the real Ray head with declared GPUs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path


from tests.test_connectivity_suite import assert_problem
from tests.test_k8s_suite import TARGET, find

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fixtures" / "scenarios"
CAPACITY = ("-m", "(gpu or oom or capacity) and not network")


def workers(state):
    return [o for o in state if o["kind"] == "Pod" and o["metadata"]["labels"].get("ray.io/node-type") == "worker"]


def test_seed_figures_and_gate_levels(run_suite, seed_state, write_dump):
    dump = write_dump(seed_state)
    run = run_suite(TARGET, *CAPACITY, f"--cluster-dump={dump}")
    assert run.status == 0, repr(run)  # everything critical passes on the seed
    assert "cpu 26 of 32, memory 464Gi of 516Gi, nvidia.com/gpu 8 of 8" in run.check("oom.requests-fit")["message"]
    limits = assert_problem(run, "oom.limits-overcommit", "failed", "warning", "exceed allocatable by 28Gi")
    assert "memory limits 544Gi of 516Gi allocatable" in limits["message"]
    assert '"value":"60Gi"' in limits["remediation"]["steps"][0]["command"]
    # fewer workers: the largest count that fits (7 of 8), for the group that is short, guarded by a test op
    fewer = limits["remediation"]["steps"][1]
    assert "at 7 the limits fit on wrx80-node1" in fewer["text"]
    assert fewer["command"].endswith("""-p '[{"op":"test","path":"/spec/workerGroupSpecs/0/groupName","value":"""
                                     """"gpu-workers"},{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","""
                                     """"value":7}]'""")
    sharing = assert_problem(run, "gpu.sharing", "failed", "warning", "time-slice or MPS share")
    assert "8 nvidia.com/gpu on 4 physical" in sharing["message"] and "24 GiB card" in sharing["message"]
    for passing in ("gpu.node-allocatable", "gpu.device-plugin", "oom.recent-kills", "oom.headroom", "oom.shm",
                    "capacity.autoscale-range"):
        assert run.check(passing)["outcome"] == "passed", run.check(passing)
    assert run_suite(TARGET, *CAPACITY, f"--cluster-dump={dump}", "--fail-on=warning").status == 1


def test_option2_does_not_fit_and_a_small_cluster_does(run_suite, seed_state, write_dump):
    dump = write_dump(seed_state)
    run = run_suite(TARGET, "-m", "gate", f"--cluster-dump={dump}", f"--with-manifests={SCENARIOS / 'option2'}")
    assert run.status == 1
    check = assert_problem(run, "capacity.manifests-fit", "failed", "critical", "short by")
    assert "short by cpu 4, memory 52Gi, nvidia.com/gpu 4" in check["message"]
    assert '"path":"/spec/workerGroupSpecs/0/replicas","value":4' in check["remediation"]["steps"][0]["command"]
    assert "kubectl scale" not in str(check["remediation"])
    run = run_suite(TARGET, "-m", "gate", f"--cluster-dump={dump}", f"--with-manifests={SCENARIOS / 'small-cpu'}")
    assert run.status == 0 and run.check("capacity.manifests-fit")["outcome"] == "passed", repr(run)


def test_device_plugin_not_ready_with_pending_workers(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    find(state, "DaemonSet", "nvidia-device-plugin-daemonset")["status"].update(numberReady=0, numberAvailable=0)
    node = find(state, "Node", "wrx80-node1")
    node["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    for pod in workers(state):
        pod["spec"].pop("nodeName")
        pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                         "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]}
    run = run_suite(TARGET, "-m", "gpu or k8s", f"--cluster-dump={write_dump(state)}")
    assert run.status == 1
    plugin = assert_problem(run, "gpu.device-plugin", "failed", "critical", "is not ready on every node")
    assert "kube-system/nvidia-device-plugin-daemonset 0/1 ready" in plugin["message"]
    # no GPU advertised at all: shrinking the workers to zero is no fix, the device plugin is
    allocatable = assert_problem(run, "gpu.node-allocatable", "failed", "critical", "No node advertises nvidia.com/gpu")
    assert allocatable["cause"] == "none-advertised"
    ready = assert_problem(run, "k8s.raycluster-ready", "failed", "critical", "no GPU worker of gpu-workers can be scheduled")
    assert not any("kubectl patch" in (s["command"] or "") for s in allocatable["remediation"]["steps"] +
                   ready["remediation"]["steps"])


def test_missing_device_plugin(run_suite, seed_state, write_dump):
    state = [o for o in seed_state if o["kind"] != "DaemonSet"]
    run = run_suite(TARGET, "-m", "gpu", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "gpu.device-plugin", "failed", "critical", "No NVIDIA device plugin")
    assert "helm install nvdp nvdp/nvidia-device-plugin" in check["remediation"]["steps"][0]["command"]


def test_oomkilled_workers(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    for pod in workers(state)[:2]:
        status = pod["status"]["containerStatuses"][0]
        status["restartCount"] = 4
        status["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                              "finishedAt": "2026-11-25T03:12:00Z"}}
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "oom.recent-kills", "failed", "critical", "were OOMKilled")
    assert "2 of 9 Ray pods were OOMKilled" in check["message"]
    assert '{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":4}' in check["remediation"]["steps"][1]["command"]


def test_no_dev_shm_mount(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    for pod in workers(state):
        pod["spec"]["containers"][0]["volumeMounts"] = []
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "oom.shm", "failed", "warning", "has no memory-backed /dev/shm")
    assert "8 of 9 Ray pods" in check["message"] and "object store of 19.2Gi" in check["message"]


def test_no_headroom_and_requests_over_allocatable(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    find(state, "Node", "wrx80-node1")["status"]["allocatable"].update(memory="480Gi", cpu="24")
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(state)}")
    assert_problem(run, "oom.headroom", "failed", "warning", "less than 10% of its memory unrequested")
    check = assert_problem(run, "oom.requests-fit", "failed", "critical", "exceed its allocatable")
    assert "wrx80-node1 (cpu)" in check["message"]


def test_time_slicing_labels_and_exclusive_gpus(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    labels = find(state, "Node", "wrx80-node1")["metadata"]["labels"]
    labels.update({"nvidia.com/gpu.count": "8", "nvidia.com/gpu.replicas": "1",
                   "nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-3090"})
    run = run_suite(TARGET, "-m", "gpu", f"--cluster-dump={write_dump(state)}")
    assert run.check("gpu.sharing")["outcome"] == "passed", run.check("gpu.sharing")


def test_autoscale_range_that_does_not_fit(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    find(state, "RayCluster", "ray-gpu")["spec"]["workerGroupSpecs"][0]["maxReplicas"] = 12
    run = run_suite(TARGET, "-m", "capacity and not network", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "capacity.autoscale-range", "failed", "critical", "9 workers do not fit")
    assert "memory and nvidia.com/gpu run out" in check["message"] and "range 1-12" in check["message"]
    assert '"path":"/spec/workerGroupSpecs/0/maxReplicas","value":8' in check["remediation"]["steps"][0]["command"]


def test_capacity_cli_tables_and_json(seed_state, write_dump, tmp_path):
    target = tmp_path / "t.yaml"
    target.write_text(TARGET)
    dump = write_dump(seed_state)
    base = [sys.executable, "-m", "raycheck", "capacity", f"--target={target}", f"--cluster-dump={dump}"]
    text = subprocess.run(base + [f"--with-manifests={SCENARIOS / 'option2'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert text.returncode == 1
    assert "26/32" in text.stdout and "464Gi/516Gi" in text.stdout and "544Gi" in text.stdout
    assert "DOES NOT FIT" in text.stdout
    data = json.loads(subprocess.run(base + ["--json", f"--with-manifests={SCENARIOS / 'small-cpu'}"], cwd=ROOT,
                                     capture_output=True, text=True, timeout=60).stdout)
    assert data["manifests_fit"]["fits"] is True
    assert data["now"]["groups"] == [{"group": "gpu-workers", "running": 8, "fit_in_total": 8}]
    assert data["with_manifests"]["nodes"][0]["cpu_requests"] == "29"
    bad = subprocess.run(base[:4] + [f"--target={tmp_path / 'missing.yaml'}", f"--cluster-dump={dump}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 4 and "target file not found" in bad.stderr
    # a dump without the nodes the tables need: one line saying what is missing and how to add it
    pods_only = write_dump([o for o in seed_state if o["kind"] == "Pod"], complete=False)
    short = subprocess.run(base[:4] + [f"--target={target}", f"--cluster-dump={pods_only}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 4 and "Traceback" not in short.stderr, short.stderr
    assert short.stderr.count("\n") == 1 and "kubectl get nodes -o yaml >" in short.stderr, short.stderr


# ----------------------------------------------------------------------------- against the real head


def test_gpu_checks_against_the_real_head(run_suite, healthy_target, seed_objects, serve_dns, write_dump):
    """gpu.ray-total and the opt-in gpu.worker-visible, green against `ray start --num-gpus 8`."""
    run = run_suite(healthy_target, "-m", "gpu and network or deep or ray_client", dns=serve_dns(seed_objects))
    assert run.check("gpu.ray-total")["outcome"] == "passed", repr(run)
    assert "Ray reports 8 GPUs; expect.gpus 8" in run.check("gpu.ray-total")["message"]
    visible = run.check("gpu.worker-visible")
    assert visible["outcome"] == "passed", repr(run)
    assert "8 num_gpus=1 tasks on 1 node each got a GPU" in visible["message"]


CARDS = [f"GPU-{n:08x}-7c1e-4b0a-9d3f-2a6c5e8b1f{n:02x}" for n in range(8)]


def test_deep_check_reads_the_card_behind_each_ray_gpu(run_suite, healthy_target, seed_objects, serve_dns, gpu_cards):
    """The head's nvidia-smi lists 8 cards for its 8 Ray GPUs: every task's GPU id names its own card."""
    gpu_cards(CARDS)
    run = run_suite(healthy_target, "-m", "deep", dns=serve_dns(seed_objects))
    check = run.check("gpu.worker-visible")
    assert check["outcome"] == "passed", repr(run)
    assert "8 distinct GPU UUIDs" in check["message"], check


def test_ray_gpus_beyond_the_cards_fail_the_deep_check(run_suite, healthy_target, seed_objects, serve_dns, gpu_cards):
    """num-gpus 8 where nvidia-smi lists 4 cards (a rayStartParams override above the container's limit)."""
    gpu_cards(CARDS[:4])
    run = run_suite(healthy_target, "-m", "deep", dns=serve_dns(seed_objects))
    check = assert_problem(run, "gpu.worker-visible", "failed", "critical", "GPUs the worker containers do not have")
    assert check["cause"] == "phantom-by-hand"  # no cluster state: which group is not known
    assert "4 of them name a GPU the container does not have" in check["message"], check
    assert "(4, first " in check["remediation"]["title"], check["remediation"]
    assert not any("kubectl patch" in (step["command"] or "") for step in check["remediation"]["steps"])


def test_deep_check_is_opt_in(run_suite, healthy_target, seed_objects, serve_dns):
    run = run_suite(healthy_target, "-m", "gpu", dns=serve_dns(seed_objects))
    check = run.check("gpu.worker-visible")
    assert check["outcome"] == "skipped" and "opt-in: runs code on the Ray cluster" in check["message"]


def test_ray_total_mismatch(run_suite, healthy_target, seed_objects, serve_dns):
    target = copy.deepcopy(healthy_target)
    target["raycheck"]["expect"]["gpus"] = 16
    run = run_suite(target, "-m", "gpu and network or ray_client", dns=serve_dns(seed_objects))
    check = assert_problem(run, "gpu.ray-total", "failed", "critical", "Ray reports 8 GPUs")
    assert "expect.gpus 16" in check["message"]


HOG = """
import sys, ray
ray.init(sys.argv[1])
@ray.remote(num_gpus=8, num_cpus=0)
class Hog:
    def ping(self):
        return "holding"
if sys.argv[2] == "take":
    print(ray.get(Hog.options(name="gpu-hog", lifetime="detached").remote().ping.remote()))
else:
    ray.kill(ray.get_actor("gpu-hog"))
"""


def test_gpus_held_by_another_job_fail_the_deep_check(run_suite, healthy_target, seed_objects, serve_dns, ray_head,
                                                      tmp_path):
    """Every GPU held by a detached actor: num_gpus=1 tasks cannot start, the deep check fails at its deadline."""
    hog = tmp_path / "hog.py"
    hog.write_text(HOG)
    address = f"ray://127.0.0.1:{ray_head.ports.client}"
    taken = subprocess.run([sys.executable, str(hog), address, "take"], capture_output=True, text=True, timeout=120)
    assert "holding" in taken.stdout, taken.stderr[-2000:]
    try:
        # the tasks wait for a GPU what the connection left of deadline - 5 s
        run = run_suite(healthy_target, "-m", "deep", "--deep-timeout=15", dns=serve_dns(seed_objects))
    finally:
        subprocess.run([sys.executable, str(hog), address, "release"], capture_output=True, timeout=120)
    check = assert_problem(run, "gpu.worker-visible", "failed", "critical", "did not complete")
    assert "8 num_gpus=1 tasks did not finish (GetTimeoutError" in check["message"]


def test_remediations_name_the_group_that_needs_the_change(run_suite, seed_state, write_dump):
    """A CPU group at index 0 and the GPU group at index 1: every patch names index 1, and the counts
    are the GPU group's (the seed's 7 workers that fit; half of its 8 after OOM kills)."""
    state = copy.deepcopy(seed_state)
    spec = find(state, "RayCluster", "ray-gpu")["spec"]
    cpu = copy.deepcopy(spec["workerGroupSpecs"][0])
    cpu.update(groupName="cpu-workers", replicas=0, minReplicas=0, maxReplicas=2, rayStartParams={})
    cpu["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1", "memory": "2Gi"},
                                                              "limits": {"cpu": "1", "memory": "2Gi"}}
    spec["workerGroupSpecs"].insert(0, cpu)
    spec["workerGroupSpecs"][1]["template"]["spec"].pop("volumes", None)  # an older template, without /dev/shm
    spec["workerGroupSpecs"][1]["template"]["spec"]["containers"][0].pop("volumeMounts", None)
    for pod in workers(state)[:1]:
        pod["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    for pod in workers(state):
        pod["spec"]["containers"][0]["volumeMounts"] = []
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(state)}")
    commands = {c["id"]: " ".join(s["command"] or "" for s in c["remediation"]["steps"])
                for c in run.report["checks"] if c["outcome"] == "failed"}
    assert set(commands) >= {"oom.limits-overcommit", "oom.recent-kills", "oom.shm"}, repr(run)
    for check_id, command in commands.items():
        if "workerGroupSpecs" in command:
            assert "/spec/workerGroupSpecs/0/" not in command and "/spec/workerGroupSpecs/1/" in command, (check_id, command)
    assert '"path":"/spec/workerGroupSpecs/1/replicas","value":7' in commands["oom.limits-overcommit"]
    assert '"path":"/spec/workerGroupSpecs/1/replicas","value":4' in commands["oom.recent-kills"]
    # the template has no volumes: the patch creates the list (an API server refuses "-" on a missing one)
    assert '{"op":"add","path":"/spec/workerGroupSpecs/1/template/spec/volumes","value":[{"name":"shared-mem",' \
        in commands["oom.shm"]


def test_limits_over_on_two_nodes_get_one_limit_that_fits_both(run_suite, seed_state, write_dump):
    """Two nodes overcommitted: a worker count is no exact fix (KubeRay picks which workers go), so
    only the per-worker limit that fits on both is offered, and it verifies."""
    state = copy.deepcopy(seed_state)
    first = find(state, "Node", "wrx80-node1")
    second = copy.deepcopy(first)
    second["metadata"]["name"] = second["metadata"]["labels"]["kubernetes.io/hostname"] = "wrx80-node2"
    for node in (first, second):
        node["status"]["allocatable"]["memory"] = "250Gi"
    state.append(second)
    for pod in workers(state)[4:]:
        pod["spec"]["nodeName"] = "wrx80-node2"
    run = run_suite(TARGET, "-m", "oom", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "oom.limits-overcommit", "failed", "warning",
                           "Memory limits exceed allocatable on wrx80-node1, wrx80-node2")
    assert check["cause"] == "overcommit-nodes" and "(and 1 more node)" in check["message"]
    assert len(check["remediation"]["steps"]) == 2 and '"value":"54Gi"' in check["remediation"]["steps"][0]["command"]
    assert check["remediation"]["verification"]["status"] == "verified", check["remediation"]["verification"]


def test_autoscale_range_without_max_replicas(run_suite, seed_state, write_dump):
    """No maxReplicas (the CRD's default 2147483647): with the autoscaler on, the sizes it may reach
    do not fit and the cap is the fix; with it off the group runs its replicas, and those fit."""
    state = copy.deepcopy(seed_state)
    cluster = find(state, "RayCluster", "ray-gpu")
    del cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    run = run_suite(TARGET, "-m", "capacity and not network", f"--cluster-dump={write_dump(state)}")
    check = run.check("capacity.autoscale-range")
    assert check["outcome"] == "passed" and "every size 1-8 fits" in check["message"], check
    assert "no autoscaler and no maxReplicas" in check["message"]
    cluster["spec"]["enableInTreeAutoscaling"] = True
    run = run_suite(TARGET, "-m", "capacity and not network", f"--cluster-dump={write_dump(state)}")
    check = assert_problem(run, "capacity.autoscale-range", "failed", "critical", "9 workers do not fit")
    assert "range 1-2147483647" in check["message"]
    assert '"path":"/spec/workerGroupSpecs/0/maxReplicas","value":8' in check["remediation"]["steps"][0]["command"]
