"""Which library function decides each offline check, and with what: the one table the remediation
verifier reads to decide a check again on a changed copy of the cluster state.

A suite declares a check and hands ``verdict`` the result of one call, ``module.function(args)``,
whose arguments are fixtures (``cluster``, ``footprint``, ``target``, the parameter ``need``) or
their attributes (``target.memory_headroom``). Each :class:`Decider` row says the same: the check
id, the function, and the argument expressions, as the suite writes them. ``tests/test_verify.py``
reads every suite and proves each offline check's call is a row here, word for word, and every row
a suite's call: the suites and the verifier cannot disagree about how a check is decided.

A check id may have several rows (``rbac.client-sa`` is decided by three functions: the account
exists, each required permission, the token review): the verifier picks the row whose function the
item's test function calls. A row's ``history`` says why no change of the spec can re-decide it
(the check reads what already happened), so its remediation is reported not verifiable.

Adding an offline check: one row, ``Decider("group.name", module.function, ("cluster",))``, with the
arguments exactly as its suite passes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Mapping

from raycheck.checks import capacity, gpu, k8s, oom, rbac, security
from raycheck.observation import Observation

if TYPE_CHECKING:
    from raycheck.cluster.view import ClusterView
    from raycheck.config import Target
    from raycheck.model.footprint import Footprint


@dataclass(frozen=True)
class Decider:
    check_id: str
    function: Callable[..., Observation | None]
    arguments: tuple[str, ...]  # fixture expressions, as the suite writes them
    history: str | None = None  # why a change of the state cannot re-decide it

    @property
    def name(self) -> str:
        """``oom.shm``: the function as the suite names it."""
        return f"{self.function.__module__.rsplit('.', 1)[-1]}.{self.function.__name__}"


HISTORY_KILLS = ("it reads what already happened to the pods (OOMKilled terminations, restart counts), "
                 "which no change to the spec undoes; whether the kills stop shows only in later runs")

DECIDERS: tuple[Decider, ...] = (
    Decider("k8s.raycluster-ready", k8s.raycluster_ready, ("cluster",)),
    Decider("k8s.head-service", k8s.head_service, ("cluster",)),
    Decider("k8s.client-path", k8s.client_path, ("cluster",)),
    Decider("rbac.client-sa", rbac.service_account_exists, ("cluster",)),
    Decider("rbac.client-sa", rbac.client_sa, ("cluster", "need")),
    Decider("rbac.client-sa", rbac.k8s_token_write, ("cluster",)),
    Decider("rbac.least-privilege", rbac.least_privilege, ("cluster",)),
    Decider("security.ray-exposure", security.ray_exposure, ("cluster",)),
    Decider("gpu.node-allocatable", gpu.node_allocatable, ("footprint",)),
    Decider("gpu.ray-gpus-backed", gpu.ray_gpus_backed, ("cluster",)),
    Decider("gpu.device-plugin", gpu.device_plugin, ("footprint",)),
    Decider("gpu.sharing", gpu.sharing, ("footprint",)),
    Decider("oom.recent-kills", oom.recent_kills, ("footprint",), history=HISTORY_KILLS),
    Decider("oom.requests-fit", oom.requests_fit, ("footprint",)),
    Decider("oom.limits-overcommit", oom.limits_overcommit, ("footprint",)),
    Decider("oom.headroom", oom.headroom, ("footprint", "target.memory_headroom")),
    Decider("oom.shm", oom.shm, ("footprint",)),
    Decider("capacity.autoscale-range", capacity.autoscale_range, ("footprint",)),
    Decider("capacity.manifests-fit", capacity.manifests_fit, ("footprint",)),
)


def deciders(check_id: str) -> list[Decider]:
    return [d for d in DECIDERS if d.check_id == check_id]


def decider_for(check_id: str, names_used: tuple[str, ...] | frozenset[str]) -> Decider | None:
    """The row of ``check_id`` whose module and function the test function names (its
    ``__code__.co_names``); None for a check decided by the network, or by no row."""
    used = set(names_used)
    found = [d for d in deciders(check_id) if set(d.name.split(".")) <= used]
    return found[0] if len(found) == 1 else None


@dataclass
class Facts:
    """The fixtures a decider's arguments name, over some cluster view."""

    cluster: ClusterView
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> Target:
        return self.cluster.target

    @cached_property
    def footprint(self) -> Footprint:
        from raycheck.model.footprint import Footprint

        return Footprint(self.cluster)

    def resolve(self, expression: str) -> Any:
        """``footprint``, ``need`` (a parameter of the test), ``target.memory_headroom``."""
        head, *attributes = expression.split(".")
        value = self.params[head] if head in self.params else getattr(self, head)
        for attribute in attributes:
            value = getattr(value, attribute)
        return value


def decide(decider: Decider, facts: Facts) -> Observation | None:
    """The check's verdict on ``facts``' cluster view (None: the check has nothing to judge there)."""
    return decider.function(*(facts.resolve(a) for a in decider.arguments))
