"""Ray: do the versions match, is the head's GCS healthy, and does ray.init("ray://...") complete?"""

import pytest

from raycheck.checks import connectivity

pytestmark = [pytest.mark.connectivity, pytest.mark.ray_client, pytest.mark.network]


@pytest.mark.check("ray.version-match", severity="critical", requires=["dns.head-service"])
def test_ray_and_python_versions_match(probes, verdict):
    observation, blocked_by = connectivity.version_match(probes)
    if blocked_by:
        verdict.blocked(blocked_by, observation.message)
    verdict(observation)


@pytest.mark.check("ray.gcs-health", severity="critical", requires=["dns.head-service", "port.dashboard"])
def test_gcs_reports_healthy(probes, verdict):
    verdict(connectivity.gcs_health(probes))


@pytest.mark.check("ray.client-handshake", severity="critical",
                   requires=["dns.head-service", "port.client", "ray.version-match"])
def test_client_handshake_completes(probes, verdict):
    verdict(connectivity.client_handshake(probes))
