"""The fault matrix: every way the cluster breaks on its worst day, one row each, run as users run it.

A row names the fault, where it is injected, the outcome of each check it affects (every other
check keeps its healthy outcome, so "unaffected checks still run" is asserted, not assumed), the
remediation the first affected checks must carry, the exit status, and the wall time the run must
stay within. Every row also gets the common checks: the report is written, valid and complete, each
problem has a fully rendered remediation, no traceback reaches the terminal. Faults are real peers
(sockets, DNS, HTTP and gRPC servers, a Ray head killed mid-run), never a mock of a probe.

Rows whose input is bad (a dump that does not parse, a RayCluster without its required fields, an
empty dump) are usage errors by design: exit 4, one line naming the file, no report.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import platform
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from raycheck.harness.dnszone import DnsZoneServer, Zone, zone_from_objects
from raycheck.harness.sandbox import HeadPorts, RayHead, pod_resolv_conf, scenario_for_head, seed_target
from tests.apiserver import FakeApiServer, Fault, seed_decisions
from tests.conftest import HEAD, SuiteRun
from tests.support import (
    BlackholeDns, FakeDashboard, FakeRayClientServer, SilentPort, refused_port, self_signed_certificate,
)
from raycheck.harness.scenarios import write_snapshot
from tests.test_connectivity_suite import CONNECTIVITY, PLACEHOLDER, blocked_by, service, without_service
from tests.test_k8s_suite import SEED_OUTCOMES, TARGET

HEAD_FQDN = "ray-gpu-head-svc.ray.svc.cluster.local"
BASELINES = {
    # -m connectivity against the session's real head, through loopback DNS serving the seed
    "connectivity": {check_id: "passed" for check_id in CONNECTIVITY},
    # -m "not network and not gate" from the seed's state (live API or dump)
    "seed": {k: v for k, v in SEED_OUTCOMES.items() if k != "capacity.manifests-fit"},
}
PROBLEMS = ("failed", "error", "blocked")
LIVE = ("-m", "not network and not gate")


@dataclass
class Setup:
    """How a row's run is started: the target, extra options, the DNS server, environment."""

    target: dict[str, Any] | str
    args: tuple[str, ...] = ()
    dns: DnsZoneServer | str | None = None
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Row:
    name: str
    where: str  # where the fault is injected, in words
    arrange: Callable[["Bench"], Setup]
    changed: dict[str, str]  # check id -> outcome, for the checks the fault affects
    remediation: dict[str, tuple[str, str]]  # check id -> (severity, words of the remediation's title)
    status: int
    budget_s: float
    baseline: str = "connectivity"
    usage_error: str = ""  # for bad input: the words of the one ERROR line
    more: Callable[[SuiteRun, "Bench"], None] | None = None  # the row's own assertions (messages, commands)


@dataclass
class Bench:
    """What rows build their faults from: the session's head, servers stopped after the row."""

    request: pytest.FixtureRequest
    stack: contextlib.ExitStack
    tmp_path: Path
    server: FakeApiServer | None = None

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def healthy(self) -> dict[str, Any]:
        return copy.deepcopy(self.fixture("healthy_target"))

    @property
    def seed_objects(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.fixture("seed_objects"))

    def dns(self, zone_or_objects: Zone | list[dict[str, Any]] | None = None) -> DnsZoneServer:
        return self.fixture("serve_dns")(self.seed_objects if zone_or_objects is None else zone_or_objects)

    def zone(self) -> Zone:
        return zone_from_objects(self.seed_objects, endpoint_override={HEAD: ["127.0.0.1"]})

    def close_later(self, thing: Any) -> Any:
        self.stack.callback(thing.close)
        return thing

    def with_dashboard(self, **fault: Any) -> dict[str, Any]:
        fake = self.close_later(FakeDashboard(**fault))
        target = self.healthy
        target["raycheck"]["ports"]["dashboard"] = fake.port
        return target

    def client_at(self, port: int, target: dict[str, Any] | None = None) -> tuple[dict[str, Any], DnsZoneServer]:
        """The target and the cluster DNS with the head Service's client port moved to ``port``."""
        target = target or self.healthy
        target["ray"]["address"] = f"ray://{HEAD_FQDN}:{port}"
        objects = self.seed_objects
        for service_port in service(objects, *HEAD)["spec"]["ports"]:
            if service_port["name"] == "client":
                service_port["port"] = service_port["targetPort"] = port
        return target, self.dns(objects)

    def live(self, objects: list[dict[str, Any]] | None = None, token: str | None = None,
             **faults: Fault) -> tuple[str, ...]:
        """The seed served by the loopback API server with these faults (by resource plural)."""
        server = self.fixture("api_server")(objects if objects is not None else self.fixture("seed_state"))
        server.faults.update(faults)
        self.server = server
        kubeconfig = server.kubeconfig(self.tmp_path / "kubeconfig", token=token)
        return (*LIVE, f"--kubeconfig={kubeconfig}")

    def dump(self, files: dict[str, str]) -> str:
        """A dump folder with these files (name -> text)."""
        folder = self.tmp_path / "dump"
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        return f"--cluster-dump={folder}"


# ----------------------------------------------------------------------------- Ray


def _head_killed_after_handshake(bench: Bench) -> Setup:
    """A head of its own, killed (SIGKILL, its whole process group) once ray.client-handshake is reported."""
    workdir = bench.tmp_path / "doomed-head"
    workdir.mkdir()
    head = RayHead(HeadPorts.pick(), workdir).start()
    bench.stack.callback(head.stop)
    plugin = bench.tmp_path / "plugins" / "kill_head_after_handshake.py"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent("""\
        import os, signal

        def pytest_runtest_logreport(report):
            if report.when == "call" and report.nodeid.endswith("test_client_handshake_completes"):
                os.killpg(int(os.environ["DOOMED_HEAD_PGID"]), signal.SIGKILL)
        """))
    resolv = bench.tmp_path / "resolv.conf"
    resolv.write_text(pod_resolv_conf("swe-ai-fleet", "127.0.0.1"))
    ports = head.ports
    target = seed_target(ports.client, ports.dashboard, ports.gcs, resolv)
    objects = scenario_for_head(copy.deepcopy(bench.fixture("seed_state")), *HEAD,
                                {"client": ports.client, "dashboard": ports.dashboard, "gcs-server": ports.gcs})
    return Setup(target, ("-m", "connectivity or deep", "-p", "kill_head_after_handshake", "--deep-timeout=30"),
                 dns=bench.dns(objects),
                 env={"PYTHONPATH": str(plugin.parent), "DOOMED_HEAD_PGID": str(os.getpgid(head.proc.pid))})


def _more_head_killed(run: SuiteRun, bench: Bench) -> None:
    check = run.check("gpu.worker-visible")
    # refused, or (killed while the kernel still completed the connection) accepted and reset
    assert "the client port stopped answering after the handshake" in check["message"], check
    assert "--previous" in check["remediation"]["steps"][1]["command"]


def _silent_client_port(bench: Bench) -> Setup:
    silent = bench.close_later(SilentPort())
    target, dns = bench.client_at(silent.port)
    return Setup(target, ("-m", "connectivity", "--probe-timeout=1"), dns)


def _dropped_by_a_network_policy(bench: Bench) -> Setup:
    """The port drops the agents (a silent port stands in for the dropped SYNs), and the cluster state
    holds the NetworkPolicy that explains it: KubeRay's DenyAll on the head."""
    setup = _silent_client_port(bench)
    deny_all_head = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "ray-gpu-head", "namespace": "ray"},
                     "spec": {"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "head"}},
                              "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu"}}}]}]}}
    dump = write_snapshot(bench.tmp_path / "state", bench.fixture("seed_state") + [deny_all_head])
    return Setup(setup.target, (*setup.args, f"--cluster-dump={dump}"), setup.dns)


def _more_netpol(run: SuiteRun, bench: Bench) -> None:
    check = run.check("port.client")
    assert check["cause"] == "netpol-ingress" and "NetworkPolicy ray-gpu-head in ray" in check["message"], check
    assert "kind: NetworkPolicy" in check["remediation"]["steps"][0]["command"]


def _more_silent(run: SuiteRun, bench: Bench) -> None:
    assert "sent nothing within 1 s" in run.check("port.client")["message"]
    assert blocked_by(run, "ray.client-handshake") == "port.client"


def _refused_client_port(bench: Bench) -> Setup:
    target, dns = bench.client_at(refused_port())
    return Setup(target, ("-m", "connectivity"), dns)


def _more_refused(run: SuiteRun, bench: Bench) -> None:
    assert "connection refused by 127.0.0.1:" in run.check("port.client")["message"]
    assert blocked_by(run, "ray.client-handshake") == "port.client"
    assert "dashboard /api/version" in run.check("ray.version-match")["message"]  # the dashboard still told it


def _more_dashboard_down(run: SuiteRun, bench: Bench) -> None:
    version = run.check("ray.version-match")
    assert "Ray Client handshake" in version["message"], version  # the version came from the handshake instead
    # no evidence either way about a token: skipped, and the handshake not blocked by it
    assert "whether the cluster requires a token is not known" in run.check("ray.auth")["message"]


def _ray_version_mismatch(bench: Bench) -> Setup:
    return Setup(bench.with_dashboard(ray_version="2.48.0"), ("-m", "connectivity"), bench.dns())


def _more_ray_mismatch(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.version-match")
    assert "cluster Ray 2.48.0 (dashboard /api/version)" in check["message"], check
    assert "no client runtime with Ray 2.48.0 on Python 3.11" in check["message"], check
    steps = [step["command"] for step in check["remediation"]["steps"]]
    assert steps[0].startswith("raycheck client-env --ray 2.48.0 --python 3.11 && pytest --target="), steps
    assert steps[1] == "pip install 'ray[client]==2.48.0'"
    assert "FROM rayproject/ray:2.48.0-py311" in steps[2]
    assert blocked_by(run, "ray.client-handshake") == "ray.version-match"


def _python_mismatch(bench: Bench) -> Setup:
    """The client port is a Ray Client server (Ray's own gRPC protocol) that reports Python 3.10."""
    fake = bench.close_later(FakeRayClientServer(python_version="3.10.14"))
    target, dns = bench.client_at(fake.port, bench.with_dashboard())
    return Setup(target, ("-m", "connectivity"), dns)


def _more_python_mismatch(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.version-match")
    assert "Python 3.10 (the head, in the Ray Client handshake)" in check["message"], check
    assert "run `raycheck client-env --ray 2.49.2 --python 3.10`" in check["message"], check
    steps = check["remediation"]["steps"]
    assert steps[0]["command"].startswith("raycheck client-env --ray 2.49.2 --python 3.10 && pytest --target=")
    assert steps[1]["command"] == "sed -i 's#^FROM .*#FROM rayproject/ray:2.49.2-py310#' Dockerfile"
    assert "rayproject/ray:2.49.2-py311" in steps[2]["command"] and steps[2]["danger"]
    assert not any("pip install" in (s["command"] or "") for s in steps)  # the same Ray: pip would not help
    assert blocked_by(run, "ray.client-handshake") == "ray.version-match"


def _token_required(bench: Bench) -> Setup:
    """The dashboard answers as a Ray >= 2.52 head with token authentication does, to no token."""
    target = bench.with_dashboard(status=401, body=b"Unauthorized: Missing authentication token")
    return Setup(target, ("-m", "connectivity"), bench.dns(), env={"RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": ""})


def _more_token_required(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.auth")
    assert check["cause"] == "missing-token" and "HTTP 401 (Unauthorized: Missing authentication token)" in \
        check["message"], check
    # the handshake is blocked by the missing token, not attempted and failed as if the head were unreachable
    assert blocked_by(run, "ray.client-handshake") == "ray.auth"
    assert blocked_by(run, "ray.version-match") == "ray.auth"  # the dashboard kept the version behind the token
    assert "requires a token (see ray.auth)" in run.check("port.dashboard")["message"]


def _token_refused(bench: Bench) -> Setup:
    """raycheck holds a token (from RAY_AUTH_TOKEN) and the dashboard refuses it, as a token head does."""
    target = bench.with_dashboard(status=403, body=b"Forbidden: Invalid authentication token")
    return Setup(target, ("-m", "connectivity"), bench.dns(),
                 env={"RAY_AUTH_TOKEN": "rc-planted-wrong-5e1f", "RAY_AUTH_TOKEN_PATH": ""})


def _more_token_refused(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.auth")
    assert check["cause"] == "invalid-token" and "from RAY_AUTH_TOKEN" in check["message"], check
    assert any("sha256sum" in step["command"] for step in check["remediation"]["steps"])
    assert "rc-planted-wrong-5e1f" not in json.dumps(run.report) + run.output


# The proxier's answer when the per-client server it forked never opened its port (Ray 2.49's
# proxier.py, the traceback shortened): what ray.init then raises as "Initialization failure from server".
PROXIER_TRACEBACK = """Traceback (most recent call last):
  File "/home/ray/anaconda3/lib/python3.11/site-packages/ray/util/client/server/proxier.py", line 710, in Datapath
    raise RuntimeError(
RuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err` and `ray_client_server_23017.err` \
on the head node of the cluster for the relevant logs. By default these are located at /tmp/ray/session_latest/logs.
"""


def _server_init_fails(bench: Bench) -> Setup:
    """A Ray Client server whose proxier answers the handshake's init with its traceback."""
    fake = bench.close_later(FakeRayClientServer(python_version=platform.python_version(),
                                                 init_failure=PROXIER_TRACEBACK))
    target, dns = bench.client_at(fake.port, bench.with_dashboard())
    return Setup(target, ("-m", "connectivity"), dns)


def _more_server_init(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.client-handshake")
    assert "RuntimeError: Proxy failed to Connect to backend!" in check["message"], check
    commands = [step["command"] for step in check["remediation"]["steps"]]
    assert any("ray_client_server_*.err" in c and "ray.io/cluster=ray-gpu,ray.io/node-type=head" in c
               for c in commands), commands
    assert any("pgrep -fc mode=specific-server" in c and "kubectl top pod -n ray -l ray.io/cluster=ray-gpu" in c
               for c in commands), commands
    # the workaround for Ray's fork race, on this target's RayCluster
    assert any("kubectl get raycluster ray-gpu -n ray -o json" in c and '"GRPC_ENABLE_FORK_SUPPORT"' in c
               for c in commands), commands


def _server_init_fails_on_deep(bench: Bench) -> Setup:
    """The first connection (the handshake) is served; the deep GPU probe's, the second, is not."""
    fake = bench.close_later(FakeRayClientServer(python_version=platform.python_version(), resources={"GPU": 2.0},
                                                 init_failure=PROXIER_TRACEBACK, fail_from=2))
    target, dns = bench.client_at(fake.port, bench.with_dashboard())
    return Setup(target, ("-m", "connectivity or deep"), dns)


def _more_server_init_on_deep(run: SuiteRun, bench: Bench) -> None:
    check = run.check("gpu.worker-visible")
    assert "RuntimeError: Proxy failed to Connect to backend!" in check["message"], check
    assert any("pgrep -fc mode=specific-server" in step["command"] for step in check["remediation"]["steps"])


def _handshake_hangs(bench: Bench) -> Setup:
    """The address names a gRPC port that is not a Ray Client server (the GCS): ray.init hangs."""
    healthy = bench.healthy
    target, dns = bench.client_at(healthy["raycheck"]["ports"]["gcs"], healthy)
    return Setup(target, ("-m", "connectivity", "--handshake-timeout=4"), dns)


def _more_hangs(run: SuiteRun, bench: Bench) -> None:
    check = run.check("ray.client-handshake")
    assert "within its 4 s deadline" in check["message"]
    # a fork race on the head also answers only after 30 s: the logs to tell it from a stall
    assert any('grep -c "skipping fork"' in (step["command"] or "") for step in check["remediation"]["steps"])


# ----------------------------------------------------------------------------- DNS


def _nxdomain(bench: Bench) -> Setup:
    return Setup(bench.healthy, ("-m", "connectivity"), bench.dns(without_service(bench.seed_objects, *HEAD)))


def _more_nxdomain(run: SuiteRun, bench: Bench) -> None:
    check = run.check("dns.head-service")
    assert HEAD_FQDN in check["message"] and "NXDOMAIN" in check["message"]
    assert "kubectl get svc -n ray -l ray.io/cluster=ray-gpu" in " ".join(
        s["command"] for s in check["remediation"]["steps"])
    for dependent in ("dns.client-srv", "dns.search-path", "port.client", "port.dashboard",
                      "ray.version-match", "ray.gcs-health", "ray.client-handshake"):
        assert blocked_by(run, dependent) == "dns.head-service"
    assert "BLOCKED ray.client-handshake: blocked by dns.head-service" in run.output


def _servfail(bench: Bench) -> Setup:
    zone = bench.zone()
    zone.faults[HEAD_FQDN] = "servfail"
    return Setup(bench.healthy, ("-m", "connectivity"), bench.dns(zone))


def _blackhole(bench: Bench) -> Setup:
    blackhole = bench.close_later(BlackholeDns())
    return Setup(bench.healthy, ("-m", "connectivity", "--probe-timeout=1"), blackhole.address)


def _more_blackhole(run: SuiteRun, bench: Bench) -> None:
    assert "no answer within 1 s" in run.check("dns.head-service")["message"]


def _truncated(bench: Bench) -> Setup:
    """Every name the suite asks is truncated over UDP: dnspython must retry over TCP and succeed."""
    zone = bench.zone()
    for name in (HEAD_FQDN, f"_client._tcp.{HEAD_FQDN}", "internal-ray-dashboard.swe-ai-fleet.svc.cluster.local"):
        zone.faults[name] = "truncate"
    return Setup(bench.healthy, ("-m", "connectivity"), bench.dns(zone))


def _cname_loop(bench: Bench) -> Setup:
    objects = bench.seed_objects
    service(objects, "swe-ai-fleet", "internal-ray-dashboard")["spec"]["externalName"] = \
        "internal-ray-dashboard.swe-ai-fleet.svc.cluster.local"
    return Setup(bench.healthy, ("-m", "connectivity"), bench.dns(objects))


# ----------------------------------------------------------------------------- the Kubernetes API


def _more_token_never_shown(run: SuiteRun, bench: Bench) -> None:
    assert "tok-revoked-9x8q" not in json.dumps(run.report) + run.output


def _more_forbidden(run: SuiteRun, bench: Bench) -> None:
    check = run.check("security.ray-exposure")
    assert "--verb=get,list,watch --resource=networkpolicies.networking.k8s.io" in \
        check["remediation"]["steps"][0]["command"]


def _stale_continue(bench: Bench) -> Setup:
    """More ClusterRoles than a page (500), so their list needs a continue token; the first one has expired."""
    objects = copy.deepcopy(bench.fixture("seed_state")) + [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"filler-{i:03d}"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]} for i in range(600)]
    return Setup(TARGET, bench.live(objects, clusterroles=Fault(status=410, on_continue=True, times=1)))


def _more_restarted(run: SuiteRun, bench: Bench) -> None:
    assert bench.server is not None and bench.server.faults["clusterroles"].times == 0  # the 410 was served
    role_lists = [r for r in bench.server.log if r.path.endswith("/clusterroles")]
    assert [("continue" in r.query) for r in role_lists] == [False, True, False, True], role_lists
    state = run.report["cluster_state"]
    assert state["source"] == f"live API {bench.server.url}" and state["requests"] == len(bench.server.log), state


def _tls_unknown_ca(bench: Bench) -> Setup:
    server_cert = self_signed_certificate(bench.tmp_path / "server-ca")
    other_ca, _ = self_signed_certificate(bench.tmp_path / "rotated-ca")
    server = FakeApiServer(bench.fixture("seed_state"), tls=server_cert, decisions=seed_decisions()).start()
    bench.stack.callback(server.stop)
    return Setup(TARGET, (*LIVE, f"--kubeconfig={server.kubeconfig(bench.tmp_path / 'kc', ca=other_ca)}"))


def _more_tls(run: SuiteRun, bench: Bench) -> None:
    check = run.check("k8s.raycluster-ready")
    assert "CERTIFICATE_VERIFY_FAILED" in check["message"], check
    assert "openssl s_client" in check["remediation"]["steps"][0]["command"]
    ca_data = base64.b64encode(b"-----BEGIN CERTIFICATE-----").decode()[:20]
    assert ca_data not in json.dumps(run.report) + run.output  # the kubeconfig's CA data is not echoed


# ----------------------------------------------------------------------------- files


def _seed_dump_with(extra_files: dict[str, str], bench: Bench) -> str:
    """The seed as a complete snapshot (one file per kind, every namespace), plus these files."""
    write_snapshot(bench.tmp_path / "dump", bench.fixture("seed_state"))
    return bench.dump(extra_files)


def _more_ignored(run: SuiteRun, bench: Bench) -> None:
    state = run.report["cluster_state"]
    assert state["ignored_kinds"] == {"ConfigMap": 2, "VolumeSnapshot": 1}, state


RAYCLUSTER_WITHOUT_HEAD = """\
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: ray-gpu, namespace: ray}
spec:
  workerGroupSpecs: []
"""

# what the checks read: a fault on one list errors exactly the checks that needed it
API_ERROR = {check_id: "error" for check_id in BASELINES["seed"]}  # every check reads the API
POD_READERS = {check_id: "error" for check_id in (
    "k8s.raycluster-ready", "oom.recent-kills", "oom.requests-fit", "oom.limits-overcommit", "oom.headroom",
    "oom.shm", "capacity.autoscale-range", "security.ray-exposure", "k8s.client-path")}
RAYCLUSTER_READERS = {"k8s.raycluster-ready": "failed", "gpu.node-allocatable": "error",
                      "gpu.ray-gpus-backed": "error", "capacity.autoscale-range": "error"}


def _api_refused(bench: Bench) -> Setup:
    """The kubeconfig names a port where nothing listens (an API server down, a tunnel closed)."""
    kubeconfig = bench.tmp_path / "kc"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{refused_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return Setup(TARGET, (*LIVE, f"--kubeconfig={kubeconfig}"))


def _more_asked_twice(run: SuiteRun, bench: Bench) -> None:
    """A dead API server costs two timeouts, not one per check."""
    assert bench.server is not None and len(bench.server.log) == 2, bench.server.log
    assert sum("not asked: an earlier request failed this way" in c["message"] for c in run.report["checks"]) >= 10

ROWS = [
    # --- Ray
    Row("ray-head-killed-after-handshake", "SIGKILL to the head's process group once ray.client-handshake is reported",
        _head_killed_after_handshake, {"gpu.worker-visible": "failed"},
        {"gpu.worker-visible": ("critical", "stopped answering after the handshake")}, 1, 60,
        baseline="connectivity", more=_more_head_killed),
    Row("client-port-silent", "the client port accepts and never speaks", _silent_client_port,
        {"port.client": "failed", "ray.client-handshake": "blocked"},
        {"port.client": ("critical", "does not speak gRPC")}, 1, 30, more=_more_silent),
    Row("client-port-dropped-by-netpol", "the client port drops connections; the dump holds KubeRay's DenyAll policy",
        _dropped_by_a_network_policy, {"port.client": "failed", "ray.client-handshake": "blocked"},
        {"port.client": ("critical", "does not admit the agents to the head")}, 1, 30, more=_more_netpol),
    Row("client-port-refused", "nothing listens on the client port", _refused_client_port,
        {"port.client": "failed", "ray.client-handshake": "blocked"},
        {"port.client": ("critical", "Connection refused")}, 1, 30, more=_more_refused),
    Row("dashboard-500", "the dashboard answers HTTP 500", lambda b: Setup(b.with_dashboard(status=500),
        ("-m", "connectivity"), b.dns()), {"port.dashboard": "failed", "ray.gcs-health": "blocked", "ray.auth": "skipped"},
        {"port.dashboard": ("warning", "answers HTTP 500")}, 0, 60, more=_more_dashboard_down),
    Row("dashboard-garbage", "the dashboard answers HTML, not JSON",
        lambda b: Setup(b.with_dashboard(body=b"<html>login</html>"), ("-m", "connectivity"), b.dns()),
        {"port.dashboard": "failed", "ray.gcs-health": "blocked", "ray.auth": "skipped"},
        {"port.dashboard": ("warning", "does not answer JSON")}, 0, 60,
        more=_more_dashboard_down),
    Row("gcs-unhealthy", "the dashboard's /api/gcs_healthz answers 503",
        lambda b: Setup(b.with_dashboard(gcs_status=503), ("-m", "connectivity"), b.dns()),
        {"ray.gcs-health": "failed"}, {"ray.gcs-health": ("critical", "answers HTTP 503")}, 1, 60),
    Row("ray-version-mismatch", "the dashboard reports Ray 2.48.0", _ray_version_mismatch,
        {"ray.version-match": "failed", "ray.client-handshake": "blocked"},
        {"ray.version-match": ("critical", "Cluster Ray 2.48.0")}, 1, 60, more=_more_ray_mismatch),
    Row("python-minor-mismatch", "a Ray Client server reporting Python 3.10.14 in its connection info",
        _python_mismatch, {"ray.version-match": "failed", "ray.client-handshake": "blocked"},
        {"ray.version-match": ("critical", "Ray Client needs the same Python major.minor")}, 1, 60,
        more=_more_python_mismatch),
    Row("token-required", "the dashboard answers 401 to no token (Ray's token authentication)", _token_required,
        {"ray.auth": "failed", "ray.version-match": "blocked", "ray.client-handshake": "blocked"},
        {"ray.auth": ("critical", "raycheck holds no token")}, 1, 30, more=_more_token_required),
    Row("token-refused", "the dashboard answers 403 to raycheck's token", _token_refused,
        {"ray.auth": "failed", "ray.version-match": "blocked", "ray.client-handshake": "blocked"},
        {"ray.auth": ("critical", "refuses raycheck's token")}, 1, 30, more=_more_token_refused),
    Row("server-init-fails", "the head's proxier cannot start the per-client server (answers init with a traceback)",
        _server_init_fails, {"ray.client-handshake": "failed"},
        {"ray.client-handshake": ("critical", "could not start a Ray Client server")}, 1, 60, more=_more_server_init),
    Row("server-init-fails-on-deep", "the proxier serves the handshake, then cannot start the deep probe's server",
        _server_init_fails_on_deep, {"gpu.worker-visible": "failed"},
        {"gpu.worker-visible": ("critical", "could not start a Ray Client server")}, 1, 60,
        more=_more_server_init_on_deep),
    Row("handshake-hangs", "the Ray address names the GCS port (gRPC, not a Ray Client server)", _handshake_hangs,
        {"ray.client-handshake": "failed"}, {"ray.client-handshake": ("critical", "hung past its deadline")}, 1, 40,
        more=_more_hangs),
    # --- DNS
    Row("dns-nxdomain", "the head Service is missing from DNS", _nxdomain,
        {"dns.head-service": "failed", **{c: "blocked" for c in CONNECTIVITY if c not in (
            "dns.head-service", "dns.dashboard-alias")}, "dns.dashboard-alias": "failed"},
        {"dns.head-service": ("critical", "NXDOMAIN")}, 1, 30, more=_more_nxdomain),
    Row("dns-servfail", "the DNS server answers SERVFAIL for the head name", _servfail,
        {"dns.head-service": "failed", **{c: "blocked" for c in CONNECTIVITY if c not in (
            "dns.head-service", "dns.dashboard-alias")}, "dns.dashboard-alias": "failed"},
        {"dns.head-service": ("critical", "SERVFAIL")}, 1, 30),
    Row("dns-blackhole", "the DNS server never answers (UDP black hole)", _blackhole,
        {c: "blocked" for c in CONNECTIVITY} | {c: "failed" for c in ("dns.head-service", "dns.dashboard-alias")},
        {"dns.head-service": ("critical", "No DNS answer")}, 1, 30, more=_more_blackhole),
    Row("dns-truncated", "every answer truncated over UDP (TC bit): the resolver must retry over TCP", _truncated,
        {}, {}, 0, 60),
    Row("dns-cname-loop", "the dashboard alias is an ExternalName pointing at itself", _cname_loop,
        {"dns.dashboard-alias": "failed"}, {"dns.dashboard-alias": ("warning", "CNAME loop")}, 0, 60),
    # --- the Kubernetes API (the official client over HTTP to the loopback API server)
    Row("api-401-expired-token", "the kubeconfig's token is revoked (every request 401)",
        lambda b: Setup(TARGET, b.live(token="tok-revoked-9x8q")), API_ERROR,
        {"k8s.raycluster-ready": ("critical", "rejected raycheck's credentials")}, 1, 30, baseline="seed",
        more=_more_token_never_shown),
    Row("api-403-on-a-list", "403 on list networkpolicies",
        lambda b: Setup(TARGET, b.live(networkpolicies=Fault(status=403))),
        {"security.ray-exposure": "failed", "k8s.client-path": "failed"},
        {"security.ray-exposure": ("warning", "may not list networkpolicies in ray")}, 1, 30, baseline="seed",
        more=_more_forbidden),
    Row("api-404-no-kuberay", "404 on rayclusters (the CRD is not installed)",
        lambda b: Setup(TARGET, b.live(rayclusters=Fault(status=404))), RAYCLUSTER_READERS,
        {"k8s.raycluster-ready": ("critical", "KubeRay is not installed")}, 1, 30, baseline="seed"),
    Row("api-410-stale-continue", "410 Gone on the first continue of the ClusterRole list (600 more, pages of 500)",
        _stale_continue, {}, {}, 0, 60, baseline="seed", more=_more_restarted),
    Row("api-429-retry-after", "429 with Retry-After: 0.2 on the first pod list",
        lambda b: Setup(TARGET, b.live(pods=Fault(status=429, retry_after=0.2, times=1))), {}, {}, 0, 30,
        baseline="seed"),
    Row("api-500", "500 on every pod list", lambda b: Setup(TARGET, b.live(pods=Fault(status=500))), POD_READERS,
        {"k8s.raycluster-ready": ("critical", "could not read the cluster state")}, 1, 30, baseline="seed"),
    Row("api-reset", "the connection is reset on every pod list",
        lambda b: Setup(TARGET, b.live(pods=Fault(reset=True))), POD_READERS,
        {"k8s.raycluster-ready": ("critical", "cannot reach the API server")}, 1, 30, baseline="seed"),
    Row("api-stall", "pod lists answer after 4 s, past the 1 s _request_timeout",
        lambda b: Setup(TARGET, (*b.live(pods=Fault(delay=4)), "--api-timeout=1")), POD_READERS,
        {"k8s.raycluster-ready": ("critical", "did not answer within the API timeout")}, 1, 45, baseline="seed"),
    Row("api-refused", "the kubeconfig's server refuses connections", _api_refused, API_ERROR,
        {"k8s.raycluster-ready": ("critical", "Nothing answers at the API server's address")}, 1, 30,
        baseline="seed"),
    Row("api-down-every-request-stalls", "every request answers after 5 s, past the 1 s _request_timeout",
        lambda b: Setup(TARGET, (*b.live(**{"*": Fault(delay=5)}), "--api-timeout=1")), API_ERROR,
        {"k8s.raycluster-ready": ("critical", "did not answer within the API timeout")}, 1, 30, baseline="seed",
        more=_more_asked_twice),
    Row("api-tls-unknown-ca", "HTTPS with a certificate the kubeconfig's CA did not sign", _tls_unknown_ca,
        API_ERROR, {"k8s.raycluster-ready": ("critical", "TLS to the API server failed")}, 1, 30, baseline="seed",
        more=_more_tls),
    # --- files
    Row("dump-unparsable-file", "one file of the dump is not YAML",
        lambda b: Setup(TARGET, ("-m", "not network", _seed_dump_with({"broken.yaml": "items: [\n  - {a: 1\n"}, b))),
        {}, {}, 4, 20, usage_error="broken.yaml:"),
    Row("dump-unknown-kinds", "the dump also holds kinds raycheck does not read",
        lambda b: Setup(TARGET, (*LIVE, _seed_dump_with({"other.yaml": yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ray"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "ray"}},
            {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
             "metadata": {"name": "s", "namespace": "ray"}}])}, b))),
        {}, {}, 0, 20, baseline="seed", more=_more_ignored),
    Row("dump-empty", "the dump folder holds no objects", lambda b: Setup(TARGET, ("-m", "not network", b.dump({}))),
        {}, {}, 4, 20, usage_error="no objects; expected the output of `kubectl get"),
    Row("manifests-raycluster-missing-fields", "--with-manifests names a RayCluster without spec.headGroupSpec",
        lambda b: Setup(TARGET, ("-m", "not network", f"--with-manifests={_write(b, 'rc.yaml', RAYCLUSTER_WITHOUT_HEAD)}")),
        {}, {}, 4, 20, usage_error="RayCluster ray-gpu: spec.headGroupSpec.template.spec is required"),
]


def _write(bench: Bench, name: str, text: str) -> Path:
    path = bench.tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault(row: Row, request: pytest.FixtureRequest, run_suite, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        bench = Bench(request, stack, tmp_path)
        setup = row.arrange(bench)
        run = run_suite(setup.target, *setup.args, dns=setup.dns, env=setup.env, timeout=row.budget_s + 60)
    assert run.wall_s <= row.budget_s, f"{row.name}: {run.wall_s:.1f} s, budget {row.budget_s} s"
    assert "Traceback" not in run.output, run.output[-3000:]
    assert run.status == row.status, repr(run)
    if row.usage_error:
        errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1 and row.usage_error in errors[0], run.output[-2000:]
        assert run.report is None and not run.report_dir.exists()
        return
    report = run.report
    assert report is not None and report["schema"] == "raycheck/v1" and report["exit_status"] == row.status
    assert sum(report["summary"].values()) == len(report["checks"])
    expected = {**BASELINES[row.baseline], **row.changed}
    for check in report["checks"]:
        want = expected.get(check["id"])
        assert want is not None, f"{check['id']} ran, but is not expected in {row.name}"
        assert check["outcome"] == want, f"{row.name}: {check['id']}: {check}\n{run!r}"
        if check["outcome"] in PROBLEMS:
            remediation = check["remediation"]
            assert remediation and remediation["steps"], check
            texts = [remediation["title"]] + [s["text"] for s in remediation["steps"]] + \
                [s["command"] or "" for s in remediation["steps"]]
            assert not [t for t in texts if PLACEHOLDER.search(t)], texts
    assert {c["id"] for c in report["checks"]} == set(expected), repr(run)
    for check_id, (severity, title) in row.remediation.items():
        check = run.check(check_id)
        assert check["outcome"] in PROBLEMS and check["severity"] == severity, check
        assert title in check["remediation"]["title"], check["remediation"]["title"]
    if row.more is not None:
        row.more(run, bench)
    print(f"{row.name}: {run.wall_s:.1f} s of {row.budget_s:g} s")  # the figures, with -s
