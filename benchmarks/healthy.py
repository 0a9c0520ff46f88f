"""A healthy target: raycheck's whole ``-m connectivity`` run vs one bare Ray Client handshake.

The bare handshake is what a user runs to check a cluster today:
``python -c "import ray; ray.init('ray://127.0.0.1:PORT'); ray.shutdown()"``. raycheck runs all
ten connectivity checks (DNS, TCP, dashboard, token, its own handshake in a child process) against
the same real head, reached by its cluster name through the sandbox's loopback DNS.

Every Ray Client connection starts a per-client server on the head (alive about 30 s after it
disconnects) and the first client of a fresh head is slow, so one warm-up of each kind runs
first and the measured runs alternate (raycheck first in even rounds, bare first in odd ones):
both see the same head load. The breakdown of raycheck's time comes from the same runs (each
check's ``duration_s`` in ``raycheck.json``) plus ``--co`` runs in the same rounds for pytest's
fixed cost: interpreter, imports, plugins, collection (of every suite: ``-m`` deselects after
collecting) and the terminal summary. A narrower ``--co`` (``suites/connectivity`` only, without
Hypothesis' plugin) shows what that start could cost. The remainder is the plugin's hooks between
checks, the report files and the exit.

Both run in two environments: a developer's venv (bytecode cached), and without any bytecode
cache, where every start compiles every module it imports.

:func:`matched_runtime` does the same against a head on another Python than raycheck's (Ray
2.49.2 on 3.12 here), which raycheck reaches through the client runtime ``raycheck client-env``
built for it; the bare handshake runs in that same runtime. With cluster state (a dump whose
RayCluster names the head image) raycheck knows the head's Python before it connects; without,
the head names it when it refuses raycheck's own Ray Client, and raycheck connects again.
"""

from __future__ import annotations

import copy
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from harness import PYTHON, ROOT, Context, outcomes, pytest_command, ratio, read_report, suite_env, summary, timed

sys.path.insert(0, str(ROOT))

from raycheck.harness.dnszone import DnsZoneServer, zone_from_objects  # noqa: E402
from raycheck.harness.sandbox import HeadPorts, RayHead, pod_resolv_conf, scenario_for_head, seed_target  # noqa: E402
from raycheck.cluster.files import load_objects
from raycheck.harness.scenarios import SCENARIOS, write_snapshot  # noqa: E402
from tests.runtimes_support import BUILDS, CACHE, PIN  # noqa: E402

HEAD_SERVICE = ("ray", "ray-gpu-head-svc")
# Where each check's time goes. The handshake runs once per run (the probes cache it), inside
# whichever of ray.version-match (which asks it for the cluster's Python) and
# ray.client-handshake comes first.
PHASES = {
    "dns": ("dns.head-service", "dns.client-srv", "dns.dashboard-alias", "dns.search-path"),
    "tcp": ("port.client",),
    "dashboard": ("port.dashboard", "ray.gcs-health", "ray.auth"),
    "handshake": ("ray.version-match", "ray.client-handshake"),
}
SETTLE_S = 3.0  # after each run of the matched-runtime pair: the per-client server it started settles
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)")


class HealthyTarget:
    """The sandbox's real head and DNS, and the seed's target file pointed at them."""

    def __init__(self, work: Path, python: str | None = None) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.ports = HeadPorts.pick()
        self.head = RayHead(self.ports, work, python=python)
        objects = scenario_for_head(load_objects(SCENARIOS / "seed"), *HEAD_SERVICE,
                                    {"client": self.ports.client, "dashboard": self.ports.dashboard,
                                     "gcs-server": self.ports.gcs})
        self.objects = objects
        self.dns = DnsZoneServer(zone_from_objects(objects, endpoint_override={HEAD_SERVICE: ["127.0.0.1"]}))
        self.target_path = work / "target.yaml"

    def start(self) -> "HealthyTarget":
        """DNS first, then the head; ``RayHead.start`` returns after one client was served."""
        self.dns.start()
        resolv = self.work / "resolv.conf"
        resolv.write_text(pod_resolv_conf("swe-ai-fleet", self.dns.host))
        self.target_path.write_text(yaml.safe_dump(
            seed_target(self.ports.client, self.ports.dashboard, self.ports.gcs, resolv), sort_keys=False))
        self.head.start()
        return self

    def stop(self) -> None:
        self.head.stop()
        self.dns.stop()

    def suite_args(self, report_dir: Path) -> list[str]:
        return ["-m", "connectivity", f"--target={self.target_path}", f"--dns-server={self.dns.address}",
                f"--report-dir={report_dir}"]

    def bare_handshake(self, python: str = PYTHON) -> list[str]:
        address = f"ray://127.0.0.1:{self.ports.client}"
        return [python, "-c", f"import ray; ray.init({address!r}); ray.shutdown()"]

    def dump(self, head_image: str) -> Path:
        """The seed's cluster state with this head image, as ``--cluster-dump`` reads it."""
        objects = copy.deepcopy(self.objects)
        raycluster = next(o for o in objects if o["kind"] == "RayCluster")
        raycluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = head_image
        return write_snapshot(self.work / "dump", objects)


def import_times(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds of ``-X importtime`` per top-level package imported, largest first (one run)."""
    run = timed([command[0], "-X", "importtime", *command[1:]], env)
    per_package: dict[str, float] = defaultdict(float)
    for match in IMPORT_LINE.finditer(run.stderr):
        cumulative_us, indent, module = match.groups()
        if not indent:  # a top-level import: its cumulative time contains everything below it
            per_package[module.split(".")[0]] += int(cumulative_us) / 1e6
    return {k: round(v, 3) for k, v in sorted(per_package.items(), key=lambda kv: -kv[1])[:12]}


def _phases(report: dict[str, Any]) -> dict[str, float]:
    durations: dict[str, float] = defaultdict(float)
    for check in report["checks"]:
        durations[check["id"]] += check["duration_s"]
    return {phase: sum(durations[c] for c in checks) for phase, checks in PHASES.items()}


def environments(ctx: Context) -> dict[str, dict[str, str]]:
    """``cached``: a developer's venv, bytecode cached. ``no_bytecode``: no ``.pyc`` files and
    ``PYTHONDONTWRITEBYTECODE=1`` (a read-only install without bytecode, as the deploy image was
    until it compiled at build time), reproduced here by an empty ``PYTHONPYCACHEPREFIX``: every
    module is compiled from source at every start."""
    home = ctx.work / "home"
    return {"cached": suite_env(home),
            "no_bytecode": suite_env(home, PYTHONDONTWRITEBYTECODE="1",
                                     PYTHONPYCACHEPREFIX=str(ctx.work / "empty-pycache"))}


def measure(ctx: Context) -> dict[str, Any]:
    """Interleaved raycheck and bare-handshake runs on one warm head, in both environments."""
    sandbox = HealthyTarget(ctx.work / "healthy")
    envs = environments(ctx)
    reports = ctx.work / "healthy" / "reports"
    co_reports = ctx.work / "healthy" / "co-reports"
    commands = {"raycheck": pytest_command(*sandbox.suite_args(reports), "--handshake-timeout=60"),
                "bare": sandbox.bare_handshake(),
                "startup": pytest_command("--co", *sandbox.suite_args(co_reports)),
                "narrow_startup": pytest_command("--co", "-p", "no:hypothesispytest", *sandbox.suite_args(co_reports),
                                                 "suites/connectivity")}
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    phases: dict[str, list[float]] = defaultdict(list)
    statuses: set[int] = set()
    try:
        sandbox.start()
        for warm_up in envs.values():  # not counted: the head's next per-client servers, the page cache
            timed(commands["bare"], warm_up)
            timed(commands["raycheck"], warm_up)
        for round_ in range(ctx.runs):
            order = [(name, kind) for name in envs for kind in commands]
            for name, kind in (order if round_ % 2 == 0 else order[::-1]):
                run = timed(commands[kind], envs[name])
                walls[name, kind].append(run.wall_s)
                if kind == "bare" and run.status != 0:
                    raise RuntimeError(f"the bare handshake failed: {run.stderr[-2000:]}")
                if kind == "raycheck":
                    statuses.add(run.status)
                    if name == "cached":
                        for phase, seconds in _phases(read_report(reports)).items():
                            phases[phase].append(seconds)
        # -s: pytest captures stderr, where -X importtime writes, while it loads conftest files
        imports = import_times([*commands["startup"], "-s"], envs["cached"])
        final_outcomes = outcomes(read_report(reports))
    finally:
        sandbox.stop()
    per_env: dict[str, dict[str, Any]] = {}
    for name in envs:
        raycheck_s, bare_s = summary(walls[name, "raycheck"]), summary(walls[name, "bare"])
        per_env[name] = {"raycheck_s": raycheck_s, "bare_handshake_s": bare_s,
                         "startup_s": summary(walls[name, "startup"]),
                         "narrow_startup_s": summary(walls[name, "narrow_startup"]),
                         "ratio": ratio(raycheck_s["median"], bare_s["median"])}
    cached = per_env["cached"]
    phase_medians = {k: summary(v) for k, v in phases.items()}
    accounted = cached["startup_s"]["median"] + sum(p["median"] for p in phase_medians.values())
    result = {
        **cached, "environments": per_env, "exit_status": sorted(statuses), "outcomes": final_outcomes,
        "breakdown_s": {"pytest fixed cost": cached["startup_s"]["median"],
                        **{k: v["median"] for k, v in phase_medians.items()},
                        "remainder": round(cached["raycheck_s"]["median"] - accounted, 3)},
        "phases_s": phase_medians,
        "interpreter_start_s": summary([timed([PYTHON, "-c", "pass"], envs["cached"]).wall_s for _ in range(3)]),
        "import_ray_s": summary([timed([PYTHON, "-c", "import ray"], envs["cached"]).wall_s for _ in range(3)]),
        "pytest_import_times_s": imports,
        "matched_runtime": matched_runtime(ctx),
    }
    for name, figures in per_env.items():
        print(f"  healthy ({name}): raycheck {figures['raycheck_s']['median']} s vs bare handshake "
              f"{figures['bare_handshake_s']['median']} s (x{figures['ratio']})", flush=True)
    return result


def matched_runtime(ctx: Context) -> dict[str, Any]:
    """raycheck through the client runtime matched to a head on another Python, with and without
    cluster state, vs a bare handshake in that same runtime, on one warm head.

    A head's handshake time is bimodal here (about 2 s or about 4 s, whoever the client: the
    proxier's per-client server starts fast or slow), so the pair compared (raycheck with cluster
    state, the bare handshake) is repeated more often than the other measurements, in alternating
    order, with a pause after each run for the per-client server it started to settle; the run
    without cluster state (two handshakes) is measured after them, so it slows neither."""
    head, runtime = BUILDS.wait("head-other"), BUILDS.wait("client-env-other")
    if not (head.python and runtime.python):
        return {"skipped": head.skip or runtime.skip or head.error or runtime.error}
    minor = BUILDS.other_minor or ""
    sandbox = HealthyTarget(ctx.work / "matched", python=head.python)
    env = suite_env(ctx.work / "home", XDG_CACHE_HOME=str(CACHE))  # where `raycheck client-env` cached it
    reports = ctx.work / "matched" / "reports"
    walls: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, set[int]] = defaultdict(set)

    def run(kind: str, command: list[str]) -> None:
        result = timed(command, env)
        walls[kind].append(result.wall_s)
        statuses[kind].add(result.status)
        if kind == "bare" and result.status != 0:
            raise RuntimeError(f"the bare handshake in the runtime failed: {result.stderr[-2000:]}")
        time.sleep(SETTLE_S)

    try:
        sandbox.start()
        dump = sandbox.dump(f"rayproject/ray:{PIN}-py{minor.replace('.', '')}")
        pair = {"with_state": pytest_command(*sandbox.suite_args(reports), f"--cluster-dump={dump}",
                                             "--handshake-timeout=60"),
                "bare": sandbox.bare_handshake(runtime.python)}
        without = pytest_command(*sandbox.suite_args(ctx.work / "matched" / "without"), "--handshake-timeout=60")
        for kind, command in pair.items():  # warm-up, not counted
            timed(command, env)
        for round_ in range(ctx.runs + 4):
            for kind in (list(pair) if round_ % 2 == 0 else list(pair)[::-1]):
                run(kind, pair[kind])
        final_outcomes = outcomes(read_report(reports))
        for _ in range(ctx.runs):
            run("without_state", without)
    finally:
        sandbox.stop()
    figures = {kind: summary(values) for kind, values in walls.items()}
    result = {"head": f"Ray {PIN}, Python {minor}", "runtime": runtime.python, "settle_s": SETTLE_S,
              "raycheck_s": figures["with_state"], "raycheck_without_state_s": figures["without_state"],
              "bare_handshake_s": figures["bare"],
              "ratio": ratio(figures["with_state"]["median"], figures["bare"]["median"]),
              "ratio_min": ratio(figures["with_state"]["min"], figures["bare"]["min"]),
              "ratio_without_state": ratio(figures["without_state"]["median"], figures["bare"]["median"]),
              "exit_status": {k: sorted(v) for k, v in statuses.items()}, "outcomes": final_outcomes}
    print(f"  matched runtime ({result['head']}): raycheck {figures['with_state']['median']} s with cluster state, "
          f"{figures['without_state']['median']} s without, vs bare handshake {figures['bare']['median']} s "
          f"(x{result['ratio']}, fastest x{result['ratio_min']}; x{result['ratio_without_state']})", flush=True)
    return result
