"""The raycheck pytest plugin: options, the ``check`` marker, preconditions, remediation, exit status.

A check is a test marked ``@pytest.mark.check(id, severity=..., requires=[...])``. This plugin

* loads the target and settings once (``pytest_configure``; bad input is a usage error, exit 4),
* orders checks so that preconditions run first, and reports a check ``blocked`` (with
  ``blocked_by``) when a check it requires did not pass, instead of repeating the same error,
* turns each failure into the catalog's remediation, rendered with the target's names, and
  puts it in place of the traceback,
* prints a short summary grouped by severity and sets the exit status from ``--fail-on``.

State lives in ``config.stash``; the report files are written by ``plugins.reports``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from raycheck.cluster import live
from raycheck.cluster.overlay import OverlaySource, load_manifests
from raycheck.cluster.source import ClusterReadError, MemorySource, Source, dump_source
from raycheck.cluster.view import ClusterView
from raycheck.config import (
    SETTING_ENV, SETTING_OPTIONS, SETTING_PARSERS, SEVERITIES, ConfigError, Settings, Target, load_target_file,
    resolve_settings,
)
from raycheck.observation import Observation
from raycheck.redact import redact_text
from raycheck.remediation import Catalog, CatalogError, Remediation, load_catalog
from raycheck.results import PROBLEM_OUTCOMES, CheckResult
from raycheck.versions import known_versions

if TYPE_CHECKING:
    from raycheck.probes import Probes

GROUP_MARKERS = ("connectivity", "k8s", "rbac", "gpu", "oom", "capacity", "security", "gate")
HEAD_POD = "$(kubectl get pod -n {ns} -l ray.io/cluster={name},ray.io/node-type=head -o name)"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    severity: str
    requires: tuple[str, ...]


@dataclass
class RunState:
    settings: Settings
    catalog: Catalog
    target: Target | None = None
    probes: Probes | None = None
    dump: Source | None = None  # the --cluster-dump source, read at configure time
    manifests: list[dict[str, Any]] | None = None  # --with-manifests, read at configure time
    cluster: ClusterView | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)  # by nodeid, in run order
    problems: dict[str, CheckResult] = field(default_factory=dict)  # first problem per check id
    non_check_failures: int = 0
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    started_monotonic: float = field(default_factory=time.monotonic)
    has_checks: bool = False

    def get_probes(self) -> Probes:
        if self.probes is None:
            from raycheck.probes import Probes  # here: dnspython and the probes cost 40 ms to import

            assert self.target is not None
            self.probes = Probes(self.target, self.settings)
        return self.probes

    def get_cluster(self) -> ClusterView | None:
        """The cluster view: the dump, else the live API where one is configured; None without either.

        Raises ClusterReadError when a live API is configured but cannot be used."""
        if self.cluster is None:
            assert self.target is not None
            base = self.dump
            settings = self.settings
            if base is None and (settings.kubeconfig or settings.context or live.in_cluster()
                                 or live.kubeconfig_available(None)):
                base = live.LiveSource.connect(settings.kubeconfig, settings.context, settings.probe_timeout)
            if base is None and self.manifests is not None:
                base = MemorySource([], name="no cluster state")
            if base is None:
                return None
            if self.manifests is not None:
                base = OverlaySource(base, self.manifests)
            self.cluster = ClusterView(base, self.target)
        return self.cluster

    def exit_status(self) -> int:
        failing = any(r.counts_against(self.settings.fail_on) for r in self.results.values())
        return 1 if failing or self.non_check_failures else 0


STATE = pytest.StashKey[RunState]()
SPEC = pytest.StashKey[CheckSpec]()
OBSERVED = pytest.StashKey[Observation]()


class CheckFailed(AssertionError):
    """A check's observation did not pass; the message is the observation's one line."""


class Blocked(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """A precondition check did not pass, so this one is not run."""

    def __init__(self, by: str, msg: str) -> None:
        super().__init__(msg=msg)
        self.by = by


class Verdict:
    """The fixture a check hands its observation to: records it, fails the check if not ok."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    def __call__(self, observation: Observation) -> None:
        self._item.stash[OBSERVED] = observation
        if not observation.ok:
            raise CheckFailed(observation.message)

    def blocked(self, by: str, message: str) -> NoReturn:
        """Report this check blocked by ``by`` (a precondition found while running)."""
        raise Blocked(by, f"blocked by {by}: {message}")


# ----------------------------------------------------------------------------- options


# Every setting: its option's metavar and help (the env var is added from SETTING_ENV).
OPTIONS: dict[str, tuple[str | None, str]] = {
    "dns_server": ("HOST[:PORT]", "resolve through this DNS server instead of the system resolver"),
    "report_dir": ("DIR", "where raycheck.json, raycheck.md and junit.xml go (default reports/)"),
    "fail_on": ("LEVEL", "exit 1 when a check at or above LEVEL fails: critical (default), warning, info"),
    "probe_timeout": ("SECONDS", "deadline of each network probe and API call (default 3)"),
    "handshake_timeout": ("SECONDS", "hard deadline of the Ray Client handshake subprocess (default 15)"),
    "deep_timeout": ("SECONDS", "hard deadline of the opt-in checks that run code on the cluster (default 120)"),
    "budget": ("SECONDS", "global budget of the run: checks not started when it is spent are reported skipped"),
    "pushgateway": ("URL", "also push the metrics of raycheck.prom to this Prometheus Pushgateway"),
    "json_line": (None, "print the JSON report as one line at the end (for log pipelines)"),
    "kubeconfig": ("FILE", "read cluster state live through this kubeconfig (default: in-cluster, then $KUBECONFIG)"),
    "context": ("NAME", "kubeconfig context"),
    "cluster_dump": ("DIR", "read cluster state from files (kubectl get -o yaml/json, kubectl cluster-info dump) "
                            "instead of the API"),
    "with_manifests": ("PATH", "overlay these manifests on the cluster state as if applied (pre-deploy gate)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("raycheck", "raycheck: Ray cluster conformance and diagnostics")
    group.addoption("--target", metavar="FILE",
                    help="target description (ray.address, raycheck: section); env RAYCHECK_TARGET")
    for key, (metavar, text) in OPTIONS.items():
        if metavar is None:  # a flag
            group.addoption(SETTING_OPTIONS[key], action="store_true", default=None,
                            help=f"{text}; env {SETTING_ENV[key]}=1")
        else:
            group.addoption(SETTING_OPTIONS[key], metavar=metavar, help=f"{text}; env {SETTING_ENV[key]}")


def pytest_configure(config: pytest.Config) -> None:
    target_path = config.getoption("target") or os.environ.get("RAYCHECK_TARGET")
    target, from_file = None, {}
    try:
        if target_path:
            target, from_file = load_target_file(target_path)
        cli = {key: config.getoption(key) for key in SETTING_PARSERS}
        settings = resolve_settings(cli, os.environ, from_file)
        catalog = load_catalog()
        dump = dump_source(settings.cluster_dump) if settings.cluster_dump else None
        manifests = load_manifests(settings.with_manifests) if settings.with_manifests else None
    except (ConfigError, CatalogError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = RunState(settings=settings, catalog=catalog, target=target, dump=dump, manifests=manifests)


# ----------------------------------------------------------------------------- collection


def _spec(item: pytest.Item) -> CheckSpec | None:
    marker = item.get_closest_marker("check")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.check needs exactly one check id")
    severity = marker.kwargs.get("severity")
    if severity not in SEVERITIES:
        raise pytest.UsageError(f"{item.nodeid}: check severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    unknown = set(marker.kwargs) - {"severity", "requires"}
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: unknown @pytest.mark.check arguments {sorted(unknown)}")
    return CheckSpec(marker.args[0], severity, tuple(marker.kwargs.get("requires", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Attach each check's spec and run preconditions before the checks that need them."""
    specs = {}
    for item in items:
        spec = _spec(item)
        if spec is not None:
            item.stash[SPEC] = spec
            specs[item.nodeid] = spec
    position: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.nodeid in specs:
            position.setdefault(specs[item.nodeid].id, index)

    def depth(check_id: str, seen: frozenset[str] = frozenset()) -> int:
        requires = next((s.requires for s in specs.values() if s.id == check_id), ())
        return 1 + max((depth(r, seen | {check_id}) for r in requires if r in position and r not in seen),
                       default=-1)

    deep_selected = re.search(r"(?<!not )\bdeep\b", config.option.markexpr or "") is not None
    for item in items:
        if item.get_closest_marker("deep") is not None and not deep_selected:
            item.add_marker(pytest.mark.skip(reason="opt-in: runs code on the Ray cluster; select it with -m deep"))
    order = {item.nodeid: (depth(specs[item.nodeid].id) if item.nodeid in specs else 0, i)
             for i, item in enumerate(items)}
    items.sort(key=lambda it: order[it.nodeid])


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    state.has_checks = any(SPEC in item.stash for item in session.items)
    if state.has_checks and state.target is None:
        raise pytest.UsageError("no target: pass --target FILE or set RAYCHECK_TARGET (see README, 'Target file')")


# ----------------------------------------------------------------------------- running


@pytest.fixture
def verdict(request: pytest.FixtureRequest) -> Verdict:
    """Hand a probe's observation to ``verdict(obs)``: recorded as the message, failed if not ok."""
    return Verdict(request.node)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = item.stash.get(SPEC, None)
    if spec is None:
        return
    state = item.config.stash[STATE]
    budget = state.settings.budget
    elapsed = time.monotonic() - state.started_monotonic
    if budget is not None and elapsed >= budget:
        pytest.skip(f"not run: the run's budget of {budget:g} s was spent after {elapsed:.1f} s (--budget)")
    problems = state.problems
    for required in spec.requires:
        if required in problems:
            cause = problems[required]
            raise Blocked(required, f"blocked by {required} ({cause.outcome}): {cause.message}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    state = item.config.stash[STATE]
    spec = item.stash.get(SPEC, None)
    if spec is None:
        if report.failed:
            state.non_check_failures += 1
        return report
    result = state.results.get(item.nodeid)
    if result is None:
        result = CheckResult(id=spec.id, nodeid=item.nodeid, severity=spec.severity,
                             markers=[m.name for m in item.iter_markers() if m.name not in ("check", "parametrize")])
        state.results[item.nodeid] = result
    result.duration_s += report.duration
    if not _conclude(result, item, call, report):
        return report
    if result.outcome in PROBLEM_OUTCOMES:
        state.problems.setdefault(spec.id, result)
        try:
            result.remediation = _render(state, item, result, call)
        except CatalogError as exc:  # a catalog defect must not hide the finding
            result.remediation = Remediation(f"no remediation: {exc}", (), ())
        if report.failed:
            report.longrepr = f"[{result.severity}] {result.id}: {redact_text(result.message)}\n\n" \
                              + redact_text(result.remediation.as_text())
    item.user_properties.extend([("check_id", result.id), ("severity", result.severity),
                                 ("outcome", result.outcome)])
    return report


def _conclude(result: CheckResult, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> bool:
    """Set the result's outcome and message from this phase; False when nothing was decided."""
    observed = item.stash.get(OBSERVED, None)
    excinfo = call.excinfo
    if report.skipped:
        if excinfo is not None and isinstance(excinfo.value, Blocked):
            result.outcome, result.blocked_by = "blocked", excinfo.value.by
        else:
            result.outcome = "skipped"
        if excinfo is not None and isinstance(excinfo.value, pytest.skip.Exception):
            result.message = excinfo.value.msg
        else:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            result.message = reason.removeprefix("Skipped: ")
        return True
    if call.when == "setup" and report.passed:
        return False
    if call.when == "teardown":
        if report.failed and result.outcome == "passed":
            result.outcome, result.message = "error", f"teardown failed: {_exception_line(excinfo)}"
            return True
        return False
    if report.passed:
        result.outcome = "passed"
        result.message = observed.message if observed is not None else "passed"
        return True
    if excinfo is not None and isinstance(excinfo.value, AssertionError) and call.when == "call":
        result.outcome = "failed"
        result.message = observed.message if isinstance(excinfo.value, CheckFailed) and observed is not None \
            else (str(excinfo.value).splitlines() or ["assertion failed"])[0]
        result.cause = observed.cause if isinstance(excinfo.value, CheckFailed) and observed is not None else None
        return True
    if excinfo is not None and isinstance(excinfo.value, ClusterReadError):
        error = excinfo.value
        result.outcome = "failed" if error.status == 403 else "error"
        result.message = f"cannot read cluster state: {error}"
        result.cause = error.cause
        return True
    result.outcome = "error"
    result.message = f"{call.when} raised {_exception_line(excinfo)}"
    return True


def _exception_line(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str:
    if excinfo is None:
        return "an unknown error"
    text = (str(excinfo.value).splitlines() or [""])[0]
    return f"{excinfo.typename}: {text}"[:300]


def _render(state: RunState, item: pytest.Item, result: CheckResult, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
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
        context["error"] = _exception_line(call.excinfo)
        own = state.catalog.render(result.id, context, None)
        generic = state.catalog.render("_error", context)
        return type(own)(own.title, generic.steps + own.steps, own.docs)
    return state.catalog.render(result.id, context, result.cause)


def remediation_context(state: RunState, item: pytest.Item) -> dict[str, Any]:
    """The names a catalog entry is rendered with, for this target and this check."""
    target = state.target
    assert target is not None
    context: dict[str, Any] = dict(target.names())
    # the versions observed so far; without probes (no network check ran) the local ones
    context.update(state.probes.known_versions() if state.probes is not None else known_versions(None, {}))
    group = next((m.name for m in item.iter_markers() if m.name in GROUP_MARKERS), None)
    rerun = ["pytest", "--target", target.source]
    if state.settings.dns_server is not None:
        rerun += ["--dns-server", str(state.settings.dns_server)]
    if group:
        rerun += ["-m", group]
    context.update(
        rerun=" ".join(rerun),
        test_name=item.name,
        head_pod=HEAD_POD.format(ns=target.ray_namespace, name=target.cluster_name),
    )
    return context


# ----------------------------------------------------------------------------- the end


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.has_checks:
        return
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = state.exit_status()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.results:
        return
    tr = terminalreporter
    results = list(state.results.values())
    counts = {o: sum(r.outcome == o for r in results) for o in ("failed", "error", "blocked", "skipped", "passed")}
    headline = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    status = state.exit_status() if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else exitstatus
    tr.write_sep("=", f"raycheck: {headline} (fail on {state.settings.fail_on}: exit {int(status)})",
                 red=state.exit_status() != 0, green=state.exit_status() == 0, bold=True)
    for severity in SEVERITIES:
        shown = [r for r in results if r.severity == severity and r.outcome in PROBLEM_OUTCOMES]
        if not shown:
            continue
        counts_here = any(r.counts_against(state.settings.fail_on) for r in shown)
        tr.write_line(severity.upper(), red=counts_here, yellow=not counts_here, bold=True)
        for r in sorted(shown, key=lambda r: r.outcome == "blocked"):
            label = {"failed": "FAIL   ", "error": "ERROR  ", "blocked": "BLOCKED"}[r.outcome]
            tr.write_line(f"  {label} {r.id}: {redact_text(r.message)}"[:400])
            if r.outcome != "blocked" and r.remediation is not None:
                tr.write_line(f"          -> {redact_text(r.remediation.title)}")
                first = next((s.command for s in r.remediation.steps if s.command), None)
                if first:
                    lines = first.splitlines()
                    tr.write_line(f"          $ {redact_text(lines[0])}" + (" ..." if len(lines) > 1 else ""))
    passed = [r.id for r in results if r.outcome == "passed"]
    if passed:
        tr.write_line(f"PASSED  {', '.join(dict.fromkeys(passed))}", green=True)
    if any(r.outcome in ("failed", "error") for r in results):
        tr.write_line("Full remediation per failure: the FAILURES section above and the report files.")
