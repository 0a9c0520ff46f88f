"""Capacity: does every autoscaling size fit, and do the manifests about to be applied fit?"""

import pytest

from raycheck.checks import capacity

pytestmark = [pytest.mark.capacity]


@pytest.mark.check("capacity.autoscale-range", severity="critical")
def test_every_worker_count_in_range_fits(footprint, verdict):
    verdict(capacity.autoscale_range(footprint))


@pytest.mark.check("capacity.manifests-fit", severity="critical")
@pytest.mark.gate
def test_overlaid_manifests_fit_beside_what_runs(footprint, verdict):
    observation = capacity.manifests_fit(footprint)
    if observation is None:
        pytest.skip("no manifests to check: pass --with-manifests PATH")
    verdict(observation)
