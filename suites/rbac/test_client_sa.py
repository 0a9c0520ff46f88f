"""RBAC: may the client ServiceAccount do what the agents need, and no more?"""

import pytest

from raycheck.checks import rbac
from raycheck.plugins.runner import run_state

pytestmark = [pytest.mark.rbac]


def pytest_generate_tests(metafunc):
    """One rbac.client-sa result per required (apiGroup, resource, verb) of the target."""
    if "need" in metafunc.fixturenames:
        state = run_state(metafunc.config)
        needs = rbac.needs(state.target) if state is not None else []
        metafunc.parametrize("need", needs, ids=[n.id for n in needs])


@pytest.mark.check("rbac.client-sa", severity="critical")
def test_client_sa_exists(cluster, verdict):
    verdict(rbac.service_account_exists(cluster))


@pytest.mark.check("rbac.client-sa", severity="critical")
def test_client_sa_may(cluster, need, verdict):
    verdict(rbac.client_sa(cluster, need))


@pytest.mark.check("rbac.client-sa", severity="critical")
def test_client_sa_may_connect_under_kubernetes_token_auth(cluster, verdict):
    verdict(rbac.k8s_token_write(cluster))


@pytest.mark.check("rbac.least-privilege", severity="warning")
@pytest.mark.security
def test_client_sa_holds_no_more_than_needed(cluster, verdict):
    verdict(rbac.least_privilege(cluster))
