"""Exposure: who else can reach Ray's unauthenticated ports?"""

import pytest

from raycheck.checks import security

pytestmark = [pytest.mark.security]


@pytest.mark.check("security.ray-exposure", severity="warning")
def test_ray_ports_reachable_only_from_the_client_namespace(cluster, verdict):
    verdict(security.ray_exposure(cluster))
