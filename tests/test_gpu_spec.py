"""What the RayCluster's spec and the nodes say about GPUs, offline: Ray GPUs with no card behind
them (gpu.ray-gpus-backed), MIG slices the workers cannot use, and the worker group that must shrink
(gpu.node-allocatable); each patch addressed to the group that needs it."""

from __future__ import annotations

import copy
import json
import re

from tests.test_connectivity_suite import assert_problem
from tests.test_k8s_suite import TARGET


def raycluster(state):
    return next(o for o in state if o["kind"] == "RayCluster")


def node(state):
    return next(o for o in state if o["kind"] == "Node")


def gpu_run(run_suite, write_dump, state):
    return run_suite(TARGET, "-m", "gpu and not network", f"--cluster-dump={write_dump(state)}")


def patch_of(command: str) -> list[dict]:
    """The JSON patch of a ``kubectl patch --type=json -p '...'`` command."""
    match = re.search(r"--type=json -p '(\[.*\])'", command)
    assert match, command
    return json.loads(match.group(1))


def with_cpu_group_first(state):
    """A CPU worker group at index 0, the GPU group at index 1: patches must name index 1."""
    state = copy.deepcopy(state)
    spec = raycluster(state)["spec"]
    cpu = copy.deepcopy(spec["workerGroupSpecs"][0])
    cpu["groupName"] = "cpu-workers"
    cpu.update(replicas=0, minReplicas=0, maxReplicas=2)
    cpu["rayStartParams"] = {}
    limits = cpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    limits.pop("nvidia.com/gpu", None)
    cpu["template"]["spec"]["containers"][0]["resources"].get("requests", {}).pop("nvidia.com/gpu", None)
    spec["workerGroupSpecs"].insert(0, cpu)
    return state


def test_num_gpus_above_the_gpu_limit_is_phantom(run_suite, seed_state, write_dump):
    assert gpu_run(run_suite, write_dump, seed_state).check("gpu.ray-gpus-backed")["outcome"] == "passed"
    state = with_cpu_group_first(seed_state)
    raycluster(state)["spec"]["workerGroupSpecs"][1]["rayStartParams"]["num-gpus"] = "2"
    run = gpu_run(run_suite, write_dump, state)
    check = assert_problem(run, "gpu.ray-gpus-backed", "failed", "critical", "no card behind them in group gpu-workers")
    assert check["cause"] == "phantom"
    assert "group gpu-workers: rayStartParams num-gpus 2 but container ray-worker is given 1 nvidia.com/gpu: 8 of the " \
           "16 GPUs Ray hands out in its 8 pods have no card behind them" in check["message"]
    ops = patch_of(check["remediation"]["steps"][0]["command"])
    assert ops == [{"op": "test", "path": "/spec/workerGroupSpecs/1/groupName", "value": "gpu-workers"},
                   {"op": "test", "path": "/spec/workerGroupSpecs/1/rayStartParams/num-gpus", "value": "2"},
                   {"op": "replace", "path": "/spec/workerGroupSpecs/1/rayStartParams/num-gpus", "value": "1"}]
    assert "ray.io/group in (gpu-workers)" in check["remediation"]["steps"][1]["command"]
    assert all(step.get("danger") for step in check["remediation"]["steps"][:2])


def test_gpus_declared_on_a_head_without_any(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    raycluster(state)["spec"]["headGroupSpec"]["rayStartParams"]["num-gpus"] = "1"
    check = gpu_run(run_suite, write_dump, state).check("gpu.ray-gpus-backed")
    assert check["outcome"] == "failed" and "group headgroup: rayStartParams num-gpus 1 but container ray-head is " \
        "given no GPU" in check["message"]
    assert patch_of(check["remediation"]["steps"][0]["command"])[-1] == \
        {"op": "remove", "path": "/spec/headGroupSpec/rayStartParams/num-gpus"}


def test_a_card_shared_by_the_kai_scheduler_backs_one_ray_gpu(run_suite, seed_state, write_dump):
    """KAI's gpu-fraction annotation gives a pod a share of one card without any GPU limit: one Ray GPU
    has a card behind it, two do not."""
    state = copy.deepcopy(seed_state)
    group = raycluster(state)["spec"]["workerGroupSpecs"][0]
    group["template"].setdefault("metadata", {}).setdefault("annotations", {})["gpu-fraction"] = "0.5"
    for key in ("limits", "requests"):
        group["template"]["spec"]["containers"][0]["resources"].get(key, {}).pop("nvidia.com/gpu", None)
    group["rayStartParams"]["num-gpus"] = "1"
    check = gpu_run(run_suite, write_dump, state).check("gpu.ray-gpus-backed")
    assert check["outcome"] == "passed", check
    assert "num-gpus 1 on 1 GPU shared by the KAI scheduler (gpu-fraction 0.5)" in check["message"]
    group["rayStartParams"]["num-gpus"] = "2"
    check = gpu_run(run_suite, write_dump, state).check("gpu.ray-gpus-backed")
    assert check["outcome"] == "failed" and check["cause"] == "phantom", check


def test_mig_slices_named_with_both_fixes(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    allocatable = node(state)["status"]["allocatable"]
    allocatable.pop("nvidia.com/gpu")
    allocatable["nvidia.com/mig-3g.40gb"] = "16"
    run = gpu_run(run_suite, write_dump, state)
    check = assert_problem(run, "gpu.node-allocatable", "failed", "critical", "MIG slices")
    assert check["cause"] == "mig"
    assert "wrx80-node1: nvidia.com/mig-3g.40gb 16" in check["message"] and "not an nvidia.com/gpu" in check["message"]
    ops = patch_of(check["remediation"]["steps"][0]["command"])
    assert {"op": "add", "path": "/spec/workerGroupSpecs/0/template/spec/containers/0/resources/limits/"
            "nvidia.com~1mig-3g.40gb", "value": 1} in ops or {"op": "add", "path": "/spec/workerGroupSpecs/0/template/"
            "spec/containers/0/resources/limits/nvidia.com~1mig-3g.40gb", "value": "1"} in ops
    assert {"op": "add", "path": "/spec/workerGroupSpecs/0/rayStartParams/num-gpus", "value": "1"} in ops
    assert "strategy" in check["remediation"]["steps"][1]["command"] and "single" in check["remediation"]["steps"][1]["command"]


def test_too_few_gpus_shrinks_the_gpu_group_to_what_fits(run_suite, seed_state, write_dump):
    state = with_cpu_group_first(seed_state)
    node(state)["status"]["allocatable"]["nvidia.com/gpu"] = "5"
    check = gpu_run(run_suite, write_dump, state).check("gpu.node-allocatable")
    assert check["outcome"] == "failed" and check["cause"] == "short"
    ops = patch_of(check["remediation"]["steps"][1]["command"])
    assert ops[0] == {"op": "test", "path": "/spec/workerGroupSpecs/1/groupName", "value": "gpu-workers"}
    assert {"op": "replace", "path": "/spec/workerGroupSpecs/1/replicas", "value": 5} in ops
    assert "at 5 workers" in check["remediation"]["steps"][1]["text"]


def test_min_replicas_above_the_count_that_fits_is_lowered_too(run_suite, seed_state, write_dump):
    state = copy.deepcopy(seed_state)
    raycluster(state)["spec"]["workerGroupSpecs"][0]["minReplicas"] = 8
    node(state)["status"]["allocatable"]["nvidia.com/gpu"] = "6"
    ops = patch_of(gpu_run(run_suite, write_dump, state).check("gpu.node-allocatable")["remediation"]["steps"][1]["command"])
    assert {"op": "replace", "path": "/spec/workerGroupSpecs/0/minReplicas", "value": 6} in ops


def test_time_sliced_gpus_renamed_shared(run_suite, seed_state, write_dump):
    """renameByDefault: the nodes advertise nvidia.com/gpu.shared and 0 nvidia.com/gpu."""
    state = copy.deepcopy(seed_state)
    node(state)["status"]["allocatable"].update({"nvidia.com/gpu": "0", "nvidia.com/gpu.shared": "8"})
    node(state)["status"]["capacity"].update({"nvidia.com/gpu": "0", "nvidia.com/gpu.shared": "8"})
    check = assert_problem(gpu_run(run_suite, write_dump, state), "gpu.node-allocatable", "failed", "critical",
                           "time-sliced GPUs as nvidia.com/gpu.shared")
    assert check["cause"] == "shared-renamed" and "wrx80-node1: nvidia.com/gpu.shared 8" in check["message"]
    ops = patch_of(check["remediation"]["steps"][0]["command"])
    assert any(op["path"].endswith("/limits/nvidia.com~1gpu.shared") for op in ops)
    assert check["remediation"]["verification"]["status"] == "verified", check["remediation"]["verification"]
