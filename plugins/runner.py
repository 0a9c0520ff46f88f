"""The check runner: options, markers, the ``check`` marker, preconditions, verdicts, budget, exit status.

A check is a test marked ``@pytest.mark.check(id, severity=..., requires=[...])``. The runner

* registers raycheck's options from the one settings table (:data:`raycheck.settings.SETTINGS`)
  and its markers from :data:`MARKERS`, as pytest-timeout does;
* is active when the run names a target (``--target``/``RAYCHECK_TARGET``: the target, settings,
  dump and manifests are read at configure time, bad input is a usage error, exit 4) and inert
  otherwise, unless checks are collected, which then need a target;
* orders checks so that preconditions run first, and reports a check ``blocked`` (with
  ``blocked_by``) when a check it requires did not pass, instead of repeating the same error;
* turns each check's phase reports into one :class:`~raycheck.results.CheckResult` (rendering its
  remediation with :mod:`.remediation`) and sets the exit status from ``--fail-on``.

The run's state lives in ``config.stash``; fixtures and suites reach it through :func:`run_state`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from raycheck.cluster import ClusterInputs
from raycheck.cluster.coverage import NoEvidence
from raycheck.cluster.source import ClusterReadError
from raycheck.cluster.view import ClusterView
from raycheck.config import Target, load_target_file
from raycheck.errors import ConfigError
from raycheck.observation import Observation
from raycheck.remediation import Catalog, CatalogError, Remediation, load_catalog
from raycheck.results import PROBLEM_OUTCOMES, CheckResult
from raycheck.settings import SETTINGS, SEVERITIES, Settings, resolve_settings

if TYPE_CHECKING:
    from raycheck.probes import Probes

# Every marker raycheck's suites use, with what it selects. The group markers (the first eight)
# name a suite's domain: remediations' rerun commands select a check's group with ``-m``.
MARKERS: dict[str, str] = {
    "connectivity": "client-to-head connectivity (DNS, ports, Ray Client)",
    "k8s": "Kubernetes state of the RayCluster and its services (also pytest-kubernetes' own marker)",
    "rbac": "permissions of the client ServiceAccount",
    "gpu": "GPU visibility",
    "oom": "memory headroom and OOM kills",
    "capacity": "capacity model and fit",
    "security": "exposure and least privilege",
    "gate": "what decides a deploy (pre-deploy gate)",
    "dns": "name resolution of the head service, its SRV records and the dashboard alias",
    "port": "TCP reachability of the Ray Client (10001) and dashboard (8265) ports",
    "ray_client": "Ray Client version match and handshake",
    "network": "talks to the target's network (deselect with -m 'not network' for offline runs)",
    "deep": "opt-in: creates objects or runs code on the target cluster",
    "e2e": "end-to-end against a real Kubernetes cluster (kind)",
}
GROUP_MARKERS = tuple(MARKERS)[:8]
CHECK_MARKER = ("check(id, severity, requires): a raycheck check: its id, severity (critical|warning|info) and "
                "the check ids it needs to pass first")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    severity: str
    requires: tuple[str, ...]


@dataclass
class RunState:
    settings: Settings
    catalog: Catalog
    target: Target
    inputs: ClusterInputs
    probes: Probes | None = None
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

            self.probes = Probes(self.target, self.settings)
        return self.probes

    def get_cluster(self) -> ClusterView | None:
        """The cluster view (see :meth:`ClusterInputs.open`); None when nothing says where state is.

        Raises ClusterReadError when a live API is configured but cannot be used."""
        if self.cluster is None:
            source = self.inputs.open()
            if source is None:
                return None
            self.cluster = ClusterView(source, self.target)
        return self.cluster

    def exit_status(self) -> int:
        failing = any(r.counts_against(self.settings.fail_on) for r in self.results.values())
        return 1 if failing or self.non_check_failures else 0


STATE = pytest.StashKey[RunState]()
SPEC = pytest.StashKey[CheckSpec]()
OBSERVED = pytest.StashKey[Observation]()


def run_state(config: pytest.Config) -> RunState | None:
    """The run's state: None in a run that names no target (the plugin is inert there)."""
    return config.stash.get(STATE, None)


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


# ----------------------------------------------------------------------------- options and markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("raycheck", "raycheck: Ray cluster conformance and diagnostics")
    group.addoption("--target", metavar="FILE",
                    help="target description (ray.address, raycheck: section); env RAYCHECK_TARGET")
    for setting in SETTINGS:
        if setting.metavar is None:  # a flag
            group.addoption(setting.option, dest=setting.key, action="store_true", default=None,
                            help=f"{setting.help}; env {setting.env}=1")
        else:
            group.addoption(setting.option, dest=setting.key, metavar=setting.metavar,
                            help=f"{setting.help}; env {setting.env}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", CHECK_MARKER)
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    target_path = config.getoption("target") or os.environ.get("RAYCHECK_TARGET")
    if not target_path:
        return  # inert, unless checks are collected (pytest_collection_finish asks for a target)
    try:
        target, from_file = load_target_file(target_path)
        cli = {setting.key: config.getoption(setting.key) for setting in SETTINGS}
        settings = resolve_settings(cli, os.environ, from_file)
        catalog = load_catalog()
        inputs = ClusterInputs.read(settings)
    except (ConfigError, CatalogError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = RunState(settings=settings, catalog=catalog, target=target, inputs=inputs)


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
    """Attach each check's spec, skip opt-in checks not selected, run preconditions first."""
    specs = {}
    for item in items:
        spec = _spec(item)
        if spec is not None:
            item.stash[SPEC] = spec
            specs[item.nodeid] = spec
    if not specs:
        return
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
        if item.nodeid in specs and item.get_closest_marker("deep") is not None and not deep_selected:
            item.add_marker(pytest.mark.skip(reason="opt-in: runs code on the Ray cluster; select it with -m deep"))
    order = {item.nodeid: (depth(specs[item.nodeid].id) if item.nodeid in specs else 0, i)
             for i, item in enumerate(items)}
    items.sort(key=lambda it: order[it.nodeid])


def pytest_collection_finish(session: pytest.Session) -> None:
    has_checks = any(SPEC in item.stash for item in session.items)
    state = run_state(session.config)
    if has_checks and state is None:
        raise pytest.UsageError("no target: pass --target FILE or set RAYCHECK_TARGET (see README, 'Target file')")
    if state is not None:
        state.has_checks = has_checks


# ----------------------------------------------------------------------------- running


@pytest.fixture
def verdict(request: pytest.FixtureRequest) -> Verdict:
    """Hand a probe's observation to ``verdict(obs)``: recorded as the message, failed if not ok."""
    return Verdict(request.node)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = item.stash.get(SPEC, None)
    state = run_state(item.config)
    if spec is None or state is None:
        return
    budget = state.settings.budget
    elapsed = time.monotonic() - state.started_monotonic
    if budget is not None and elapsed >= budget:
        pytest.skip(f"not run: the run's budget of {budget:g} s was spent after {elapsed:.1f} s (--budget)")
    for required in spec.requires:
        if required in state.problems:
            cause = state.problems[required]
            raise Blocked(required, f"blocked by {required} ({cause.outcome}): {cause.message}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    state = run_state(item.config)
    if state is None:
        return report
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
    if call.excinfo is not None and isinstance(call.excinfo.value, NoEvidence):  # no evidence: neither pass nor fail
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value.message}")
    if not _conclude(result, item, call, report):
        return report
    if result.outcome in PROBLEM_OUTCOMES:
        from raycheck.plugins.remediation import render, replace_traceback

        state.problems.setdefault(spec.id, result)
        try:
            result.remediation = render(state, item, result, call)
        except CatalogError as exc:  # a catalog defect must not hide the finding
            result.remediation = Remediation(f"no remediation: {exc}", (), ())
        if report.failed:
            replace_traceback(report, result)
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
            result.outcome, result.message = "error", f"teardown failed: {exception_line(excinfo)}"
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
    result.message = f"{call.when} raised {exception_line(excinfo)}"
    return True


def exception_line(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str:
    if excinfo is None:
        return "an unknown error"
    text = (str(excinfo.value).splitlines() or [""])[0]
    return f"{excinfo.typename}: {text}"[:300]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = run_state(session.config)
    if state is None or not state.has_checks:
        return
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = state.exit_status()
