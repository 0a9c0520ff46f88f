"""A finding's remediation: the catalog's entry for the check and its cause, rendered with the
target's names and the figures the probe reported, shown in place of the traceback.

The runner calls :func:`render` for every failed, errored or blocked check; the catalog
(``raycheck/remediation/catalog.yaml``) holds the words and commands, this module only the names
they are filled with, among them ``{rerun}``: the command that reruns the check's group against
the same target and the same cluster state.

A failed check's remediation is then verified (:func:`verification`): its steps applied to a copy
of the cluster state, the check decided again (:mod:`raycheck.remediation.verify`). On by default
when the state comes from a dump or manifests; live, with ``--verify-remediations``, on a snapshot
of the live state read once.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING, Any

import pytest

from raycheck.cluster.source import ClusterReadError
from raycheck.redact import redact_text
from raycheck.remediation import NOT_VERIFIABLE, Remediation, Verification
from raycheck.results import CheckResult
from raycheck.plugins.runner import GROUP_MARKERS, OBSERVED, RunState, exception_line
from raycheck.versions import known_versions

if TYPE_CHECKING:  # the verifier is imported when a remediation is verified
    from raycheck.remediation.verify import Verifier

HEAD_POD = "$(kubectl get pod -n {ns} -l ray.io/cluster={name},ray.io/node-type=head -o name)"
# The `raycheck` command registers this name as a plugin: reruns then say `raycheck`, not `pytest`.
COMMAND_PLUGIN = "raycheck-command"


def render(state: RunState, item: pytest.Item, result: CheckResult, call: pytest.CallInfo[None]) -> Remediation:
    context = remediation_context(state, item)
    observed = item.stash.get(OBSERVED, None)
    if observed is not None:
        context.update(observed.figures)
    if result.outcome == "blocked":
        cause = state.problems[result.blocked_by] if result.blocked_by in state.problems else None
        context.update(blocked_by=result.blocked_by, blocked_outcome=cause.outcome if cause else "did not pass")
        return state.catalog.render("_blocked", context)
    if call.excinfo is not None and isinstance(call.excinfo.value, ClusterReadError):
        context.update(call.excinfo.value.figures())
        remediation = state.catalog.render("_cluster-read", context, result.cause)
        if result.outcome == "failed" and verifying(state):  # a 403: raycheck's own permissions
            return dataclasses.replace(remediation, verification=Verification(NOT_VERIFIABLE, None, OWN_ACCESS))
        return remediation
    if result.outcome == "error":
        context["error"] = exception_line(call.excinfo)
        own = state.catalog.render(result.id, context, None)
        generic = state.catalog.render("_error", context)
        return Remediation(own.title, generic.steps + own.steps, own.docs)
    remediation = state.catalog.render(result.id, context, result.cause)
    if result.outcome == "failed" and verifying(state):
        return dataclasses.replace(remediation, verification=verification(state, item, result, remediation))
    return remediation


VERIFIER = pytest.StashKey["Verifier"]()
OWN_ACCESS = ("the finding is the API server refusing raycheck's own request: only that server can say whether the "
              "grant is enough (rerun raycheck once it is applied)")
NETWORK = ("it is decided by the network (DNS answers, ports, Ray), not from cluster state: raycheck cannot decide "
           "it again on a changed copy")


def verifying(state: RunState) -> bool:
    """Whether remediations are verified: as the setting says, else when state does not come live."""
    if state.settings.verify_remediations is not None:
        return state.settings.verify_remediations
    return state.inputs.dump is not None or not state.inputs.live_configured


def verification(state: RunState, item: pytest.Item, result: CheckResult, remediation: Remediation) -> Verification:
    """The verification of a failed check's remediation (see :mod:`raycheck.remediation.verify`)."""
    from raycheck.checks.registry import decider_for

    if item.get_closest_marker("network") is not None or state.cluster is None:
        return Verification(NOT_VERIFIABLE, None, NETWORK)
    function = getattr(item, "function", None)
    decider = decider_for(result.id, tuple(function.__code__.co_names)) if function is not None else None
    if decider is None:
        return Verification(NOT_VERIFIABLE, None, f"{result.id} has no row in raycheck/checks/registry.py that says "
                            "how it is decided: raycheck cannot decide it again")
    verifier = item.config.stash.get(VERIFIER, None)
    if verifier is None:
        verifier = item.config.stash[VERIFIER] = _verifier(state)
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    return verifier.verify(remediation, decider, params)


def _verifier(state: RunState) -> Verifier:
    """Against the state as the run read it, before the manifests (they are put back on each copy)."""
    from raycheck.cluster.overlay import OverlaySource
    from raycheck.cluster.snapshot import Snapshot
    from raycheck.cluster.source import MemorySource
    from raycheck.cluster.view import ClusterView
    from raycheck.remediation.verify import Verifier

    assert state.cluster is not None
    source = state.cluster.source
    base = source.base if isinstance(source, OverlaySource) else source
    live = not isinstance(base, MemorySource)
    if live:
        base = Snapshot(state.cluster if base is source else ClusterView(base, state.target))
    return Verifier(base, state.target, state.inputs.manifests, reproduce_first=live)


def replace_traceback(report: pytest.TestReport, result: CheckResult) -> None:
    """The failure's text in pytest's FAILURES section: the finding and its remediation, redacted."""
    assert result.remediation is not None
    report.longrepr = f"[{result.severity}] {result.id}: {redact_text(result.message)}\n\n" \
                      + redact_text(result.remediation.as_text())


def rerun_command(state: RunState, item: pytest.Item) -> str:
    """Shell-quoted: the check's group against the same target, DNS server and cluster state."""
    program = "raycheck" if item.config.pluginmanager.has_plugin(COMMAND_PLUGIN) else "pytest"
    words = [program, f"--target={state.target.source}", *state.settings.source_flags()]
    group = next((m.name for m in item.iter_markers() if m.name in GROUP_MARKERS), None)
    if group:
        words += ["-m", group]
    return shlex.join(words)


def remediation_context(state: RunState, item: pytest.Item) -> dict[str, Any]:
    """The names a catalog entry is rendered with, for this target and this check."""
    target = state.target
    context: dict[str, Any] = dict(target.names())
    # the RayCluster under its own name: a RayService or RayJob names its cluster <owner>-<random>
    known = state.cluster.raycluster_if_known() if state.cluster is not None else None
    context["cluster_name"] = known["metadata"]["name"] if known is not None else target.cluster_name
    # the versions observed so far; without probes (no network check ran) the local ones
    context.update(state.probes.known_versions() if state.probes is not None else known_versions(None, {}))
    context.update(
        rerun=rerun_command(state, item),
        capacity=shlex.join(["raycheck", "capacity", f"--target={target.source}", *state.settings.source_flags()]),
        test_name=item.name,
        head_pod=HEAD_POD.format(ns=target.ray_namespace, name=context["cluster_name"]),
    )
    return context
