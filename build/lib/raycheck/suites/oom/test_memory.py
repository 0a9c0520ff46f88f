"""Memory: requests and limits on the Ray nodes, headroom, OOM kills, and /dev/shm for the object store."""

import pytest

from raycheck.checks import oom

pytestmark = [pytest.mark.oom]


@pytest.mark.check("oom.recent-kills", severity="critical")
def test_no_ray_pod_was_oomkilled(footprint, verdict):
    verdict(oom.recent_kills(footprint))


@pytest.mark.check("oom.requests-fit", severity="critical")
@pytest.mark.capacity
def test_requests_fit_allocatable(footprint, verdict):
    verdict(oom.requests_fit(footprint))


@pytest.mark.check("oom.limits-overcommit", severity="warning")
@pytest.mark.capacity
def test_memory_limits_fit_allocatable(footprint, verdict):
    verdict(oom.limits_overcommit(footprint))


@pytest.mark.check("oom.headroom", severity="warning")
@pytest.mark.capacity
def test_memory_headroom_above_threshold(footprint, target, verdict):
    verdict(oom.headroom(footprint, target.memory_headroom))


@pytest.mark.check("oom.shm", severity="warning")
def test_dev_shm_holds_the_object_store(footprint, verdict):
    verdict(oom.shm(footprint))
