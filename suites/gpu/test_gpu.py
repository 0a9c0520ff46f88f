"""GPUs: advertised by the nodes, plugged in by the device plugin, shared or not, seen by Ray."""

import pytest

from raycheck.checks import gpu

pytestmark = [pytest.mark.gpu]


@pytest.mark.check("gpu.node-allocatable", severity="critical")
def test_nodes_advertise_the_gpus_the_raycluster_requests(footprint, verdict):
    verdict(gpu.node_allocatable(footprint))


@pytest.mark.check("gpu.ray-gpus-backed", severity="critical")
def test_every_ray_gpu_has_a_card_behind_it(cluster, verdict):
    verdict(gpu.ray_gpus_backed(cluster))


@pytest.mark.check("gpu.device-plugin", severity="critical")
def test_nvidia_device_plugin_is_ready(footprint, verdict):
    verdict(gpu.device_plugin(footprint))


@pytest.mark.check("gpu.sharing", severity="warning")
def test_advertised_gpus_are_physical_gpus(footprint, verdict):
    observation = gpu.sharing(footprint)
    if observation is None:
        pytest.skip("no GPU node carries GPU Feature Discovery labels (nvidia.com/gpu.count)")
    verdict(observation)


@pytest.mark.check("gpu.ray-total", severity="critical", requires=["ray.client-handshake"])
@pytest.mark.network
def test_ray_sees_the_expected_gpus(target, probes, cluster_if_any, verdict):
    handshake = probes.handshake
    if not handshake.ok:
        verdict.blocked("ray.client-handshake", handshake.message)
    raycluster = cluster_if_any.raycluster_if_known() if cluster_if_any is not None else None
    verdict(gpu.ray_total(handshake.data.get("resources") or {}, target.expect_gpus, raycluster))


@pytest.mark.check("gpu.worker-visible", severity="critical", requires=["ray.client-handshake"])
@pytest.mark.network
@pytest.mark.deep
def test_gpu_tasks_see_a_gpu(probes, settings, cluster_if_any, verdict):
    """Opt-in (-m deep): runs one num_gpus=1 task per GPU on the cluster."""
    count = int((probes.handshake.data.get("resources") or {}).get("GPU", 0))
    if count == 0:
        pytest.skip("Ray reports no GPUs: nothing to run a GPU task on (see gpu.ray-total)")
    observation = probes.gpu_tasks(min(count, 64), settings.deep_timeout)
    verdict(gpu.worker_visible(observation, min(count, 64), cluster_if_any))
