"""RBAC: may the client ServiceAccount do what the agents need, and no more?"""

import pytest

from plugins.remediation import STATE
from raycheck import access

pytestmark = [pytest.mark.rbac]


def pytest_generate_tests(metafunc):
    """One rbac.client-sa result per required (apiGroup, resource, verb) of the target."""
    if "need" in metafunc.fixturenames:
        target = metafunc.config.stash[STATE].target
        needs = access.needs(target) if target is not None else []
        metafunc.parametrize("need", needs, ids=[n.id for n in needs])


@pytest.mark.check("rbac.client-sa", severity="critical")
def test_client_sa_may(cluster, need, verdict):
    verdict(access.client_sa_may(cluster, need))


@pytest.mark.check("rbac.least-privilege", severity="warning")
@pytest.mark.security
def test_client_sa_holds_no_more_than_needed(cluster, verdict):
    verdict(access.least_privilege(cluster))
