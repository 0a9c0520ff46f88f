"""Fixtures for raycheck's own tests: one real Ray head per session, loopback DNS, suite runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from raycheck.harness.dnszone import DnsZoneServer, Zone, zone_from_objects
from raycheck.harness.sandbox import HeadPorts, RayHead, pod_resolv_conf, scenario_for_head, seed_target
from raycheck.cluster.files import load_objects
from raycheck.harness.scenarios import SCENARIOS, write_snapshot

pytest_plugins = ["pytester"]  # the project's own tests drive the plugin with pytester; user runs do not load it

ROOT = Path(__file__).resolve().parents[1]
HEAD = ("ray", "ray-gpu-head-svc")


# What the head's workers find as ``nvidia-smi``: the cards listed in GPU_CARDS, one UUID a line
# (``gpu_cards`` writes it), or, without that file, a machine with no NVIDIA driver (as here).
FAKE_NVIDIA_SMI = """#!/bin/sh
[ -f "{cards}" ] || {{ echo "NVIDIA-SMI has failed: no NVIDIA driver" >&2; exit 9; }}
cat "{cards}"
"""


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the other Rays and Pythons some tests need as soon as they are collected:
    in the background, while the rest of the suite runs (tests/runtimes_support.py)."""
    from tests.runtimes_support import start_if_needed

    start_if_needed([item.nodeid for item in session.items])


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A real ``ray start --head`` on loopback with 8 declared GPUs, shared by the whole session.

    Its workers' PATH starts with a stand-in ``nvidia-smi`` (the one part a CPU machine lacks): the
    deep GPU probe reads the cards behind Ray's GPU ids from it."""
    workdir = tmp_path_factory.mktemp("ray-head")
    smi = workdir / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(FAKE_NVIDIA_SMI.format(cards=workdir / "GPU_CARDS"))
    smi.chmod(0o755)
    head = RayHead(HeadPorts.pick(), workdir, env={"PATH": f"{smi.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    head.start()
    yield head
    head.stop()


@pytest.fixture
def gpu_cards(ray_head: RayHead) -> Iterator[Callable[[list[str]], None]]:
    """``gpu_cards([uuid, ...])``: the cards the head's nvidia-smi lists, until the test ends."""
    cards = ray_head.workdir / "GPU_CARDS"
    yield lambda uuids: cards.write_text("".join(f"{u}\n" for u in uuids))
    cards.unlink(missing_ok=True)


@pytest.fixture
def seed_objects(ray_head: RayHead) -> list[dict[str, Any]]:
    """The seed scenario's objects, with the head service's ports moved to the test head's."""
    ports = ray_head.ports
    return scenario_for_head(load_objects(SCENARIOS / "seed"), *HEAD,
                             {"client": ports.client, "dashboard": ports.dashboard, "gcs-server": ports.gcs})


def _servers(start: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """A fixture body: ``start(...)`` servers for the test, every one stopped after it."""
    servers: list[Any] = []

    def started(*args: Any, **kwargs: Any) -> Any:
        server = start(*args, **kwargs)
        servers.append(server)
        return server

    yield started
    for server in servers:
        server.stop()


@pytest.fixture
def serve_dns() -> Iterator[Callable[..., DnsZoneServer]]:
    """Start loopback DNS servers for a zone (or objects); all are stopped after the test."""

    def start(zone_or_objects: Zone | list[dict[str, Any]], head_ip: str = "127.0.0.1") -> DnsZoneServer:
        zone = zone_or_objects if isinstance(zone_or_objects, Zone) else \
            zone_from_objects(zone_or_objects, endpoint_override={HEAD: [head_ip]})
        return DnsZoneServer(zone).start()

    yield from _servers(start)


@pytest.fixture
def seed_state() -> list[dict[str, Any]]:
    """A fresh copy of the seed scenario's objects, to break as a test needs."""
    return load_objects(SCENARIOS / "seed")


@pytest.fixture
def write_dump(tmp_path: Path) -> Callable[..., Path]:
    """Write objects as a dump folder: ``complete`` (default) as a full snapshot, one
    ``kubectl get <plural> -A -o yaml`` file per kind raycheck reads; else as one ``List`` of the
    objects (``kubectl get a,b,c -o yaml``), which covers only the kinds and namespaces it holds."""
    counter = iter(range(1000))

    def write(objects: list[dict[str, Any]], complete: bool = True) -> Path:
        folder = tmp_path / f"dump-{next(counter)}"
        if complete:
            return write_snapshot(folder, objects)
        folder.mkdir()
        (folder / "all.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
        return folder

    return write


@pytest.fixture
def api_server() -> Iterator[Callable[..., Any]]:
    """Start strict loopback API servers for scenarios; all stopped after the test. Access reviews
    are answered from ``decisions`` (default: what a real API server answers for the seed's RBAC)."""
    from tests.apiserver import FakeApiServer, seed_decisions

    yield from _servers(lambda objects, decisions=None: FakeApiServer(
        objects, decisions=decisions if decisions is not None else seed_decisions()).start())


@dataclass
class SuiteRun:
    status: int
    output: str
    wall_s: float
    report: dict[str, Any] | None
    report_dir: Path

    def __repr__(self) -> str:
        """Short enough to read in a failed assertion: status, each check's outcome and message."""
        if self.report is None:
            return f"SuiteRun(status={self.status}, no report)\n{self.output[-3000:]}"
        lines = [f"{c['id']}: {c['outcome']}: {c['message']}" for c in self.report["checks"]]
        return f"SuiteRun(status={self.status}, {self.wall_s:.1f} s)\n" + "\n".join(lines)

    def check(self, check_id: str) -> dict[str, Any]:
        assert self.report is not None, f"no report written; output:\n{self.output}"
        matches = [c for c in self.report["checks"] if c["id"] == check_id]
        assert matches, f"{check_id} not in the report: {[c['id'] for c in self.report['checks']]}"
        return matches[0]

    def outcomes(self) -> dict[str, str]:
        assert self.report is not None, f"no report written; output:\n{self.output}"
        return {c["id"]: c["outcome"] for c in self.report["checks"]}


@pytest.fixture
def healthy_target(ray_head: RayHead, tmp_path: Path) -> dict[str, Any]:
    """The seed target pointed at the test head; tests break one piece of it."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(pod_resolv_conf("swe-ai-fleet", "127.0.0.1"))
    return seed_target(ray_head.ports.client, ray_head.ports.dashboard, ray_head.ports.gcs, resolv)


def not_verified(report: dict[str, Any]) -> list[str]:
    """Every failed check whose remediation, applied to a copy of the scenario, does not make it pass
    (or that is not verifiable without saying why): each scenario a test builds proves its
    remediations too (tests/test_verify.py plants wrong ones through the library, not the suite)."""
    out = []
    for check in report["checks"]:
        verification = (check.get("remediation") or {}).get("verification") if check["outcome"] == "failed" else None
        if verification and (verification["status"] == "not verified" or not verification["message"]):
            out.append(f"{check['nodeid']}: {verification['status']}: {verification['message']}")
    return out


@pytest.fixture
def run_suite(tmp_path: Path) -> Callable[..., SuiteRun]:
    """Run the real suite in a subprocess (as a user would) and read its JSON report."""
    counter = iter(range(1000))

    def run(target: dict[str, Any] | str | None, *args: str, dns: DnsZoneServer | str | None = None,
            timeout: float = 180, env: dict[str, str] | None = None) -> SuiteRun:
        n = next(counter)
        report_dir = tmp_path / f"reports-{n}"
        # option=value: pytest takes a bare path argument outside the repository for a test path
        # when it looks for its configuration (see README, "Running")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--report-dir={report_dir}"]
        if target is not None:
            target_path = tmp_path / f"target-{n}.yaml"
            target_path.write_text(target if isinstance(target, str) else yaml.safe_dump(target, sort_keys=False))
            command += [f"--target={target_path}"]
        if dns is not None:
            command += [f"--dns-server={dns if isinstance(dns, str) else dns.address}"]
        # Under a full test run on 2 cores the head's per-client server can take longer to start
        # than the 15 s default; tests about the deadline pass their own, which comes later and wins.
        command += ["--handshake-timeout=60", *args]
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("RAYCHECK_")}
        # PYTHONDONTWRITEBYTECODE (set on some machines) would make every run recompile Hypothesis
        # CI: what a user's shell has not (Hypothesis' ci profile would hide what a user sees)
        for name in ("KUBERNETES_SERVICE_HOST", "KUBECONFIG", "PYTHONDONTWRITEBYTECODE", "CI"):
            run_env.pop(name, None)
        run_env["HOME"] = str(tmp_path)  # no ~/.kube/config of the developer's is ever used
        run_env.update(env or {})
        start = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=run_env)
        wall = time.monotonic() - start
        report_file = report_dir / "raycheck.json"
        report = json.loads(report_file.read_text()) if report_file.exists() else None
        wrong = not_verified(report) if report is not None else []
        assert not wrong, "remediations the verifier found not to fix their check:\n" + "\n".join(wrong)
        return SuiteRun(proc.returncode, proc.stdout + proc.stderr, wall, report, report_dir)

    return run
