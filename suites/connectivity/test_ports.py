"""Ports: does the head answer on the Ray Client port and the dashboard port?"""

import pytest

from raycheck.checks import connectivity

pytestmark = [pytest.mark.connectivity, pytest.mark.port, pytest.mark.network]


@pytest.mark.check("port.client", severity="critical", requires=["dns.head-service"])
def test_client_port_answers_grpc(probes, cluster_if_any, verdict):
    verdict(connectivity.client(probes, cluster_if_any))


@pytest.mark.check("port.dashboard", severity="warning", requires=["dns.head-service"])
def test_dashboard_port_answers_http(probes, verdict):
    verdict(connectivity.dashboard(probes))
