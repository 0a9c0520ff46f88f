"""Ray: a client runtime for the cluster's versions, the token, the head's GCS, and ray.init("ray://...")."""

import pytest

from raycheck.checks import connectivity

pytestmark = [pytest.mark.connectivity, pytest.mark.ray_client, pytest.mark.network]


@pytest.mark.check("ray.version-match", severity="critical", requires=["dns.head-service"])
def test_ray_and_python_versions_match(probes, cluster_if_any, verdict):
    observation = connectivity.version_match(probes, cluster_if_any)
    if isinstance(observation, connectivity.Undecided):
        if observation.blocked_by:
            verdict.blocked(observation.blocked_by, observation.reason)
        pytest.skip(observation.reason)
    verdict(observation)


@pytest.mark.check("ray.auth", severity="critical", requires=["dns.head-service"])
def test_token_is_accepted_where_one_is_required(probes, cluster_if_any, verdict):
    observation = connectivity.auth(probes, cluster_if_any)
    if observation is None:
        pytest.skip("the dashboard did not answer /api/version (see port.dashboard): whether the cluster requires a "
                    "token is not known; a handshake refused for it is reported as such")
    verdict(observation)


@pytest.mark.check("ray.gcs-health", severity="critical", requires=["dns.head-service", "port.dashboard"])
def test_gcs_reports_healthy(probes, verdict):
    verdict(connectivity.gcs_health(probes))


@pytest.mark.check("ray.client-handshake", severity="critical",
                   requires=["dns.head-service", "port.client", "ray.auth", "ray.version-match"])
def test_client_handshake_completes(probes, cluster_if_any, verdict):
    verdict(connectivity.client_handshake(probes, cluster_if_any))
