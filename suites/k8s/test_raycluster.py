"""KubeRay state: is the RayCluster ready, and does its head Service carry Ray Client traffic?"""

import pytest

from raycheck.checks import k8s

pytestmark = [pytest.mark.k8s]


@pytest.mark.check("k8s.raycluster-ready", severity="critical")
def test_raycluster_is_ready(cluster, verdict):
    verdict(k8s.raycluster_ready(cluster))


@pytest.mark.check("k8s.head-service", severity="critical")
def test_head_service_has_client_port_and_endpoints(cluster, verdict):
    verdict(k8s.head_service(cluster))


@pytest.mark.check("k8s.client-path", severity="critical")
@pytest.mark.port
def test_client_pods_may_reach_the_head_and_dns(cluster, verdict):
    verdict(k8s.client_path(cluster))
