"""A finding's remediation: the catalog's entry for the check and its cause, rendered with the
target's names and the figures the probe reported, shown in place of the traceback.

The runner calls :func:`render` for every failed, errored or blocked check; the catalog
(``raycheck/remediation/catalog.yaml``) holds the words and commands, this module only the names
they are filled with, among them ``{rerun}``: the command that reruns the check's group against
the same target and the same cluster state.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from raycheck.cluster.source import ClusterReadError
from raycheck.redact import redact_text
from raycheck.remediation import Remediation
from raycheck.results import CheckResult
from raycheck.plugins.runner import GROUP_MARKERS, OBSERVED, RunState, exception_line
from raycheck.versions import known_versions

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
        return state.catalog.render("_cluster-read", context, result.cause)
    if result.outcome == "error":
        context["error"] = exception_line(call.excinfo)
        own = state.catalog.render(result.id, context, None)
        generic = state.catalog.render("_error", context)
        return Remediation(own.title, generic.steps + own.steps, own.docs)
    return state.catalog.render(result.id, context, result.cause)


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
    # the versions observed so far; without probes (no network check ran) the local ones
    context.update(state.probes.known_versions() if state.probes is not None else known_versions(None, {}))
    context.update(
        rerun=rerun_command(state, item),
        test_name=item.name,
        head_pod=HEAD_POD.format(ns=target.ray_namespace, name=target.cluster_name),
    )
    return context
