"""DNS: can the client namespace find the Ray head by name, as the agents do?"""

import pytest

from raycheck.checks import connectivity

pytestmark = [pytest.mark.connectivity, pytest.mark.dns, pytest.mark.network]


@pytest.fixture
def named_target(target):
    if target.address.is_ip:
        pytest.skip(f"the Ray address is an IP ({target.head_host}): no name to resolve")
    return target


@pytest.mark.check("dns.head-service", severity="critical")
def test_head_service_resolves(named_target, probes, cluster_if_any, verdict):
    verdict(connectivity.head_service(probes, cluster_if_any))


@pytest.mark.check("dns.client-srv", severity="warning", requires=["dns.head-service"])
def test_client_srv_names_the_client_port(named_target, probes, cluster_if_any, verdict):
    verdict(connectivity.client_srv(probes, cluster_if_any))


@pytest.mark.check("dns.dashboard-alias", severity="warning")
def test_dashboard_alias_points_at_head(named_target, probes, verdict):
    if named_target.dashboard_alias is None:
        pytest.skip("no raycheck.dashboard_alias in the target file")
    verdict(connectivity.dashboard_alias(probes))


@pytest.mark.check("dns.search-path", severity="info", requires=["dns.head-service"])
def test_search_path_reaches_head_cheaply(named_target, probes, verdict):
    observation = connectivity.search_path(probes)
    if observation is None:
        pytest.skip(f"no resolv.conf at {named_target.resolv_conf}")
    verdict(observation)
