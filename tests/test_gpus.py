"""Judging the deep GPU probe's results: every task got a GPU; two Ray GPUs on one card are caught.

The probe itself runs against the real head in test_capacity_suite; here its output shapes that
a sandbox without GPUs cannot produce (nvidia-smi UUIDs, time-sliced cards) are judged."""

from __future__ import annotations

from raycheck.checks.gpu import worker_visible
from raycheck.observation import Observation


def probe(tasks):
    return Observation(True, "ran", data={"gpu_tasks": tasks})


def task(host, gpu_id, uuids, node="n1"):
    return {"node": node, "host": host, "gpu_ids": [gpu_id], "cuda_visible_devices": gpu_id, "uuids": uuids}


def test_distinct_cards_pass():
    result = worker_visible(probe([task("w1", "0", ["GPU-aaa"], "n1"), task("w2", "0", ["GPU-bbb"], "n2")]), 2)
    assert result.ok and "2 distinct GPU UUIDs" in result.message


def test_time_sliced_card_serving_two_workers_fails():
    result = worker_visible(probe([task("w1", "0", ["GPU-aaa"], "n1"), task("w2", "0", ["GPU-aaa"], "n1")]), 2)
    assert (result.ok, result.cause) == (False, "shared")
    assert "1 physical GPUs serve more than one Ray GPU" in result.message and "w1#0, w2#0" in result.message


def test_ray_gpu_with_no_card_behind_it_fails():
    result = worker_visible(probe([task("w1", "0", ["GPU-aaa"]), task("w1", "1", ["GPU-aaa"])]), 2)
    assert (result.ok, result.cause) == (False, "phantom-by-hand")  # no cluster state: which group is not known
    assert "1 of them name a GPU the container does not have: w1#1 (nvidia-smi lists 1)" in result.message
    assert result.figures == {"phantom": "w1#1", "phantom_count": "1"}


def test_gpu_ids_given_as_uuids_are_their_own_cards():
    result = worker_visible(probe([task("w1", "GPU-bbb", ["GPU-aaa", "GPU-bbb"])]), 1)
    assert result.ok and "1 distinct GPU UUIDs" in result.message


def test_task_without_a_gpu_fails():
    blind = {"node": "n1", "host": "w1", "gpu_ids": [], "cuda_visible_devices": None, "uuids": None}
    result = worker_visible(probe([blind, task("w2", "0", None)]), 2)
    assert (result.ok, result.cause) == (False, "no-gpu") and "1 of 2" in result.message


def test_failed_probe_fails():
    result = worker_visible(Observation(False, "deadline passed", cause="deadline"), 8)
    assert (result.ok, result.cause) == (False, "tasks-failed")


def test_tasks_that_never_ran_fail():
    result = worker_visible(Observation(True, "connected", data={"gpu_error": "GetTimeoutError after 3 s: x"}), 8)
    assert (result.ok, result.cause) == (False, "tasks-failed") and "did not finish" in result.message


def test_a_phantom_gpu_names_the_group_the_spec_shows(seed_state):
    """With the RayCluster in the state, the deep check's phantom names the group whose num-gpus
    exceeds its cards (here the second), with gpu.ray-gpus-backed's patch for exactly it."""
    import copy

    from raycheck.cluster.coverage import Coverage
    from raycheck.cluster.source import MemorySource
    from raycheck.cluster.view import ClusterView
    from raycheck.config import parse_target

    state = copy.deepcopy(seed_state)
    spec = next(o for o in state if o["kind"] == "RayCluster")["spec"]
    cpu = copy.deepcopy(spec["workerGroupSpecs"][0])
    cpu.update(groupName="cpu-workers", rayStartParams={})
    cpu["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    spec["workerGroupSpecs"].insert(0, cpu)
    spec["workerGroupSpecs"][1]["rayStartParams"]["num-gpus"] = "2"
    target, _ = parse_target({"ray": {"address": "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"}}, {}, "t.yaml")
    view = ClusterView(MemorySource(state, coverage=Coverage.complete()), target)
    result = worker_visible(probe([task("w1", "0", ["GPU-aaa"]), task("w1", "1", ["GPU-aaa"])]), 2, view)
    assert (result.ok, result.cause) == (False, "phantom")
    assert "the spec says why: group gpu-workers: rayStartParams num-gpus 2" in result.message
    assert '"path":"/spec/workerGroupSpecs/1/rayStartParams/num-gpus"' in result.figures["gpu_patch"]
    assert result.figures["phantom_selector"] == "gpu-workers"
