"""Does a remediation fix what it says? Its steps applied to a copy of the cluster state, the check
decided again after each.

For a failed check, the rendered steps are read as the shell and kubectl read them
(:mod:`.kubectl`); each change is applied, in order, to a copy-on-write copy of the state the run
read (:class:`~raycheck.cluster.changes.ChangedSource`, never the cluster), the controllers react
(:mod:`raycheck.cluster.reconcile`: KubeRay's pods and head Service of a changed RayCluster), the
manifests of a gate run are overlaid again, and the check's own function
(:mod:`raycheck.checks.registry`) decides again. The result is one of

* ``verified``: the check passes after step N;
* ``not verified``: the API server refuses a step (a ``test`` op, a path that does not exist), or
  the check still fails after the last change, with its new message;
* ``not verifiable``: why not (no step changes Kubernetes objects; a step restarts a pod, runs
  helm, pipes a live object through jq, or cannot be parsed; the check reads history; the check
  needs a kind the dump does not hold).

A step whose text starts with "Or " is an alternative to the steps before it: it is applied to the
state as it was, not after them. A remediation is verified when every alternative that changes
something verifies, and not verified when one of them does not: a wrong alternative is a wrong
command someone will paste.

In a gate run (``--with-manifests``) the check judged the cluster with the manifests applied, and so
does the verification: a change to an object the manifests define (or to the pods of a RayCluster
they define) is made to the manifests' version, as the fix must be made in them; every other change
is made to the running cluster, and the manifests are applied over it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from raycheck.checks.registry import Decider, Facts, decide
from raycheck.cluster.changes import ChangedSource, Refused, key
from raycheck.cluster.coverage import NoEvidence
from raycheck.cluster.overlay import OverlaySource
from raycheck.cluster.reconcile import reconcile
from raycheck.cluster.source import ClusterReadError, Object, Source
from raycheck.cluster.view import ClusterView
from raycheck.config import Target
from raycheck.remediation import NOT_VERIFIABLE, NOT_VERIFIED, VERIFIED, Remediation, Step, Verification
from raycheck.remediation.kubectl import CHANGE, MUTATING, Unparsable, effects

ALTERNATIVE = "Or "
MESSAGE_LIMIT = 600


class _NoVerdict(Exception):
    """The check gave no verdict on the changed state (the reason is the message)."""


@dataclass
class _Outcome:
    status: str
    step: int | None
    message: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Verifier:
    """Verifies remediations against ``base``: the cluster state the run read, before the run's
    ``manifests`` (if any) were applied over it. ``reproduce_first``: decide the check on the
    unchanged copy first and give up when it does not fail there as it did in the run (live, the API
    server answered access reviews; the copy is judged by raycheck's evaluator)."""

    base: Source
    target: Target
    manifests: list[Object] | None = None
    reproduce_first: bool = False

    @cached_property
    def _reading(self) -> Source:
        """What the steps read and change: the state the check judged."""
        return self.base if self.manifests is None else OverlaySource(self.base, self.manifests)

    def _judged(self, state: ChangedSource) -> Source:
        """The changed state as the check reads it: the running cluster's changes under the manifests,
        the manifests' objects (and their RayClusters' pods) as changed."""
        if self.manifests is None:
            return state
        overlay = self._reading
        assert isinstance(overlay, OverlaySource)
        running = ChangedSource(self.base)
        manifests = {key(m): m for m in overlay.applied.values()}
        for changed_key, obj in state.changed.items():
            labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            ours = changed_key in overlay.applied or (
                changed_key[0] == "Pod" and (changed_key[1], labels.get("ray.io/cluster")) in overlay.replaced_clusters)
            if not ours:
                running.changed[changed_key] = obj
            elif obj is None:  # deleted: from the manifests, and from the running cluster once they are applied
                manifests.pop(changed_key, None)
                running.changed[changed_key] = None
            else:
                manifests[changed_key] = obj
        return OverlaySource(running, list(manifests.values()))

    def verify(self, remediation: Remediation, decider: Decider, params: Mapping[str, Any] | None = None) \
            -> Verification:
        """The verification of ``remediation``, a failed ``decider`` check's (never raises)."""
        params = params or {}
        try:
            return self._verify(remediation, decider, params)
        except Exception as exc:  # noqa: BLE001 (the check functions meet states no run had: a crash
            # there must not hide the finding it verifies)
            return Verification(NOT_VERIFIABLE, None, _short(f"re-deciding the check raised "
                                                               f"{type(exc).__name__}: {exc}"))

    def _verify(self, remediation: Remediation, decider: Decider, params: Mapping[str, Any]) -> Verification:
        if decider.history:
            return Verification(NOT_VERIFIABLE, None, f"{decider.check_id} cannot be decided again on a changed "
                                f"state: {decider.history}")
        if self.reproduce_first:
            try:
                baseline = self._decide(ChangedSource(self._reading), decider, params, 0)
            except _NoVerdict as exc:
                return Verification(NOT_VERIFIABLE, None, str(exc))
            if baseline.ok:
                return Verification(NOT_VERIFIABLE, None, _short(
                    "on the snapshot raycheck judges (its own RBAC evaluation, KubeRay's rules), the check passes "
                    f"before any step ({baseline.message}): what decided it live is not in the snapshot"))
        outcomes = [o for alternative in _alternatives(remediation.steps)
                    if (o := self._alternative(alternative, decider, params)) is not None]
        return _combine(outcomes, remediation.steps)

    def _alternative(self, steps: list[tuple[int, Step]], decider: Decider, params: Mapping[str, Any]) \
            -> _Outcome | None:
        state = ChangedSource(self._reading)
        notes: list[str] = []
        last: tuple[int, str] | None = None
        for number, step in steps:
            if not step.command:
                continue
            try:
                done = [e for e in effects(step.command) if e.kind in MUTATING]
            except Unparsable as exc:
                return _Outcome(NOT_VERIFIABLE, number, f"step {number}: kubectl would not run it: {exc}")
            if not done:
                continue
            opaque = next((e for e in done if e.kind != CHANGE), None)
            if opaque is not None:
                what = "restarts what runs: its effect is a process starting again, which no copy of the state " \
                    "shows" if opaque.kind == "restart" else "is a change raycheck cannot apply exactly"
                return _Outcome(NOT_VERIFIABLE, number, f"step {number} {what} ({opaque.what})", notes)
            for effect in done:
                assert effect.operation is not None
                try:
                    notes += reconcile(state, state.write(effect.operation))
                except Refused as exc:
                    return _Outcome(NOT_VERIFIED, number, f"step {number} is refused: {exc}", notes)
            try:
                observation = self._decide(state, decider, params, number)
            except _NoVerdict as exc:
                return _Outcome(NOT_VERIFIABLE, number, str(exc), notes)
            if observation.ok:
                return _Outcome(VERIFIED, number, f"after step {number} the check passes: {observation.message}",
                                notes)
            last = (number, observation.message)
        if last is None:
            return None
        return _Outcome(NOT_VERIFIED, last[0], f"after step {last[0]} the check still fails: {last[1]}", notes)

    def _decide(self, state: ChangedSource, decider: Decider, params: Mapping[str, Any], step: int):  # type: ignore[no-untyped-def]
        source = self._judged(state)
        after = f"after step {step}" if step else "on the unchanged snapshot"
        try:
            observation = decide(decider, Facts(ClusterView(source, self.target), params))
        except NoEvidence as exc:
            raise _NoVerdict(f"{after} the check has no evidence: {exc.message}") from None
        except ClusterReadError as exc:
            raise _NoVerdict(f"{after} reading the cluster state failed: {exc}") from None
        if observation is None:
            raise _NoVerdict(f"{after} the check has nothing to judge (it would be skipped)")
        return observation


def _alternatives(steps: tuple[Step, ...]) -> list[list[tuple[int, Step]]]:
    """The steps, numbered from 1, split where a step starts with "Or "."""
    groups: list[list[tuple[int, Step]]] = [[]]
    for number, step in enumerate(steps, 1):
        if step.text.startswith(ALTERNATIVE) and groups[-1]:
            groups.append([])
        groups[-1].append((number, step))
    return groups


def _combine(outcomes: list[_Outcome], steps: tuple[Step, ...]) -> Verification:
    if not outcomes:
        return Verification(NOT_VERIFIABLE, None, _short("no step changes Kubernetes objects: "
                                                         + _what_steps_do(steps)))
    failed = [o for o in outcomes if o.status == NOT_VERIFIED]
    passed = [o for o in outcomes if o.status == VERIFIED]
    first = failed[0] if failed else passed[0] if passed else outcomes[0]
    message = first.message + "".join(f" ({n})" for n in dict.fromkeys(first.notes))
    for other in (o for o in outcomes if o is not first):
        message += f"; the alternative, step {other.step}: {other.status}: {_short(other.message, 200)}"
    return Verification(first.status, first.step, _short(message))


def _what_steps_do(steps: tuple[Step, ...]) -> str:
    parts = []
    for number, step in enumerate(steps, 1):
        if not step.command:
            continue
        try:
            what = ", ".join(dict.fromkeys(e.what for e in effects(step.command)))
        except Unparsable as exc:
            what = f"not a command kubectl would run ({exc})"
        parts.append(f"step {number} {what}")
    return "; ".join(parts) or "the steps have no commands"


def _short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
