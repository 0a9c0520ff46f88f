"""What each check must conclude in the kind e2e: one row per check id, one column per cluster state.

The cluster (tests/e2e/test_kind.py): kind + KubeRay, a CPU-only RayCluster ``ray-gpu`` (one head,
one worker declaring ``num-gpus: 1`` with no GPU limit), no NVIDIA device plugin, no NetworkPolicy,
the seed's client RBAC (a ClusterRoleBinding granting ray.io create/delete everywhere), raycheck as
the CronJob's Job in ``swe-ai-fleet`` with a target that expects 1 GPU and 1 worker.

* ``healthy``: with the checker's RBAC (deploy/cronjob/rbac.yaml);
* ``no_rbac``: the checker's RoleBinding and ClusterRoleBinding deleted: every check that reads cluster
  state reports raycheck's own 403 (``forbidden``); the network checks do not notice;
* ``broken``: RBAC restored, then the client's ClusterRoleBinding deleted, the head isolated by a
  NetworkPolicy that admits only the RayCluster's own pods (what KubeRay's ``DenyAll`` mode makes),
  and the worker group's maxReplicas raised to 1000.

A row is a check id, or ``id::test`` for one test of a check whose tests conclude differently (the
test's name without its parameters). A new check id needs a row (tests/test_e2e_helpers.py fails
until it has one). ``cause`` None: not asserted (where the kind network decides it, e.g. a dropped
vs a refused connection).
"""

from __future__ import annotations

from typing import NamedTuple


class Verdict(NamedTuple):
    outcome: str
    cause: str | None = None

    def admits(self, got: Verdict) -> bool:
        """``got`` is this verdict: the same outcome, and the same cause where this one names one."""
        return got.outcome == self.outcome and (self.cause is None or got.cause == self.cause)


class Row(NamedTuple):
    healthy: Verdict
    no_rbac: Verdict
    broken: Verdict


SCENARIOS = Row._fields
PASSED = Verdict("passed")
SKIPPED = Verdict("skipped")
BLOCKED = Verdict("blocked")
FORBIDDEN = Verdict("failed", "forbidden")  # raycheck's own permissions: the `_cluster-read` remediation


EXPECTED: dict[str, Row] = {
    # network: DNS, ports, Ray Client; the head isolated in `broken` (DNS still answers)
    "dns.head-service":         Row(PASSED, PASSED, PASSED),
    "dns.client-srv":           Row(PASSED, PASSED, PASSED),
    "dns.dashboard-alias":      Row(PASSED, PASSED, PASSED),
    "dns.search-path":          Row(PASSED, PASSED, PASSED),  # the target allows the runner's own search domain
    "port.client":              Row(PASSED, PASSED, Verdict("failed")),
    "port.dashboard":           Row(PASSED, PASSED, Verdict("failed")),
    "ray.version-match":        Row(PASSED, PASSED, PASSED),  # broken: the RayCluster's rayVersion and head image
    "ray.auth":                 Row(PASSED, PASSED, SKIPPED),  # Ray 2.49 asks no token; broken: no dashboard
    "ray.gcs-health":           Row(PASSED, PASSED, BLOCKED),
    "ray.client-handshake":     Row(PASSED, PASSED, BLOCKED),
    "gpu.ray-total":            Row(PASSED, PASSED, BLOCKED),  # 1 logical GPU == expect.gpus (== the RayCluster's)
    # cluster state
    "k8s.raycluster-ready":     Row(PASSED, FORBIDDEN, PASSED),
    "k8s.head-service":         Row(PASSED, FORBIDDEN, PASSED),
    "k8s.client-path":          Row(PASSED, FORBIDDEN, Verdict("failed", "ingress")),  # reads policies of both namespaces
    "rbac.client-sa":           Row(PASSED, FORBIDDEN, Verdict("failed", "missing")),  # one per required permission
    "rbac.client-sa::test_client_sa_exists": Row(PASSED, FORBIDDEN, PASSED),
    "rbac.client-sa::test_client_sa_may_connect_under_kubernetes_token_auth": Row(PASSED, FORBIDDEN, PASSED),
    "rbac.least-privilege":     Row(Verdict("failed", "excess"), FORBIDDEN, PASSED),
    "security.ray-exposure":    Row(Verdict("failed", "open"), FORBIDDEN, PASSED),
    "gpu.node-allocatable":     Row(PASSED, FORBIDDEN, PASSED),  # 0 nvidia.com/gpu requested, 0 advertised
    "gpu.ray-gpus-backed":      Row(Verdict("failed", "phantom"), FORBIDDEN, Verdict("failed", "phantom")),
    "gpu.device-plugin":        Row(Verdict("failed", "missing"), FORBIDDEN, Verdict("failed", "missing")),
    "gpu.sharing":              Row(SKIPPED, FORBIDDEN, SKIPPED),  # no node carries GPU Feature Discovery labels
    "oom.recent-kills":         Row(PASSED, FORBIDDEN, PASSED),
    "oom.requests-fit":         Row(PASSED, FORBIDDEN, PASSED),
    "oom.limits-overcommit":    Row(PASSED, FORBIDDEN, PASSED),
    "oom.headroom":             Row(PASSED, FORBIDDEN, PASSED),
    "oom.shm":                  Row(PASSED, FORBIDDEN, PASSED),  # KubeRay mounts /dev/shm in every Ray container
    "capacity.autoscale-range": Row(PASSED, FORBIDDEN, Verdict("failed", "too-small")),
    "capacity.manifests-fit":   Row(SKIPPED, SKIPPED, SKIPPED),  # no --with-manifests: nothing read
}


def row_key(check_id: str, test: str) -> str | None:
    """The row for a result: its test's own (``id::test``, parameters aside), else its check id's."""
    specific = f"{check_id}::{test.split('[', 1)[0]}"
    return specific if specific in EXPECTED else check_id if check_id in EXPECTED else None
