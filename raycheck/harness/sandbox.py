"""The sandbox: the seed's reference deployment, simulated with real parts on this machine.

``make sandbox`` (``raycheck sandbox``) starts

* a real Ray head (``ray start --head --block``) with the client server on 10001 and the
  dashboard on 8265 when free (other ports otherwise) and 8 declared GPUs,
* a real DNS server on loopback answering the ``cluster.local`` records that cluster DNS would
  derive from the scenario's Services, with the head service pointing at the local head,
* a pod-style ``resolv.conf`` for the client namespace, and the seed dump as cluster state
  (its head Service moved to the local head's ports),

writes a target file for it, runs the suite against it, says where the reports are, and stops
everything it started, also on Ctrl-C, SIGTERM or failure. ``--serve`` keeps it running instead.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from raycheck.harness.dnszone import DnsZoneServer, zone_from_objects
from raycheck.probes import http, ray_client, tcp
from raycheck.cluster.files import load_objects
from raycheck.harness.scenarios import SCENARIOS, write_snapshot

SEED = SCENARIOS / "seed"
# The Ray Client port must stay out of the worker port range (10002-19999) and out of the range
# where the client proxier starts per-client servers (23000 and up): see FACTS.md.
CLIENT_PORTS = [10001, *range(20001, 22999)]
DASHBOARD_PORTS = [8265, *range(8266, 8999)]
GCS_PORTS = [6379, *range(6380, 6999)]
AGENT_PORTS = list(range(52365, 52999))
# The head's own environment. Ray's client proxier forks a server per client while gRPC threads
# are busy; gRPC's fork handlers then race them ("skipping fork() handlers") and now and then the
# new server dies: the client gets "Initialization failure from server" after 30 s
# (ray-project/ray#63202; raycheck reports it as cause server-init, with this as the workaround).
# The proxier forks only to exec, so the handlers are not needed: off.
HEAD_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "GRPC_ENABLE_FORK_SUPPORT": "0"}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


START_LOCK = Path(tempfile.gettempdir()) / "raycheck-head-start.lock"


def pick_port(candidates: Iterable[int], taken: set[int] | None = None) -> int:
    taken = taken or set()
    for port in candidates:
        if port not in taken and port_is_free(port):
            taken.add(port)
            return port
    raise RuntimeError("no free port among the candidates")


@dataclass(frozen=True)
class HeadPorts:
    client: int
    dashboard: int
    gcs: int
    agent: int

    @classmethod
    def pick(cls) -> "HeadPorts":
        taken: set[int] = set()
        return cls(pick_port(CLIENT_PORTS, taken), pick_port(DASHBOARD_PORTS, taken),
                   pick_port(GCS_PORTS, taken), pick_port(AGENT_PORTS, taken))


class RayHead:
    """A real Ray head on loopback, in its own process group so that stopping it stops all of it.

    ``ray stop`` would kill every Ray process on the machine, including ones this did not start;
    signalling the group of ``ray start --block`` stops exactly this head.
    """

    def __init__(self, ports: HeadPorts, workdir: Path, num_gpus: int = 8, num_cpus: int = 2,
                 env: dict[str, str] | None = None, python: str | None = None) -> None:
        self.ports = ports
        # on top of this process's environment; Ray's workers inherit it. Ray's TLS and token
        # variables here make a TLS or token head, and its own first client uses them too.
        self.env = env or {}
        self.python = python or sys.executable  # whose Ray runs the head (another Ray or Python than raycheck's)
        self.workdir = workdir
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "ray-head.log"
        # Ray's unix socket paths must stay short: keep its temp dir directly under /tmp.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))

    def command(self) -> list[str]:
        ray = str(Path(self.python).with_name("ray"))
        return [
            ray, "start", "--head", "--block", "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1",
            "--port", str(self.ports.gcs),
            "--ray-client-server-port", str(self.ports.client),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.ports.dashboard),
            "--dashboard-agent-listen-port", str(self.ports.agent),
            "--num-cpus", str(self.num_cpus), "--num-gpus", str(self.num_gpus),
            "--object-store-memory", str(100 * 1024 * 1024),
            "--temp-dir", str(self.temp_dir),
        ]

    def start(self, ready_within: float = 120.0) -> "RayHead":
        env = {**os.environ, **HEAD_ENV, **self.env}
        deadline = time.monotonic() + ready_within
        # Heads started at once (two sandboxes, parallel test workers) would pick the same free
        # ports: one starts at a time, from picking its ports until it listens on them.
        with open(START_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not all(port_is_free(p) for p in (self.ports.client, self.ports.dashboard, self.ports.gcs,
                                                 self.ports.agent)):
                self.ports = HeadPorts.pick()
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
            log.close()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"ray start exited with status {self.proc.returncode}:\n{self.log_tail()}")
                if self.ready():
                    break
                time.sleep(0.25)
            else:
                self.stop()
                raise RuntimeError(f"the Ray head was not ready within {ready_within:g} s:\n{self.log_tail()}")
        # The first client of a fresh head waits for the proxier to start its server: serve one
        # here (twice at most, should the fork race of HEAD_ENV's note strike anyway), so the
        # head is ready for clients when this returns.
        for _ in range(2):
            first = ray_client.handshake(f"ray://127.0.0.1:{self.ports.client}",
                                         max(5.0, deadline - time.monotonic()), python=self.python, env=self.env)
            if first.ok:
                return self
        logs = self.log_tail("session_latest/logs/ray_client_server.err")
        self.stop()
        raise RuntimeError(f"the Ray head does not serve clients: {first.message}\n{logs}")

    def ready(self) -> bool:
        greeting = tcp.grpc_greeting("127.0.0.1", self.ports.client, 1.0, tls=tcp.TlsSettings.from_env(self.env))
        if not greeting.ok:
            return False
        token = self.env.get("RAY_AUTH_TOKEN")
        obs, body = http.get_json(f"http://127.0.0.1:{self.ports.dashboard}/api/version", 1.0,
                                  {"Authorization": f"Bearer {token}"} if token else None)
        return obs.ok and bool(body)

    def log_tail(self, ray_log: str | None = None, lines: int = 20) -> str:
        """The last lines of ``ray start``'s output, or of one of Ray's own logs."""
        path = self.temp_dir / ray_log if ray_log else self.log_path
        try:
            return f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {path})"

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the group may outlive its leader for a moment: make sure nothing is left
            if not _group_alive(self.proc.pid):
                break
            time.sleep(0.5)
        self.proc = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "RayHead":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scenario_for_head(objects: list[dict[str, Any]], namespace: str, service: str,
                      ports: dict[str, int]) -> list[dict[str, Any]]:
    """The scenario's objects with the head service's named ports moved to the local head's."""
    out = copy.deepcopy(objects)
    for obj in out:
        meta = obj.get("metadata", {})
        if obj.get("kind") == "Service" and meta.get("name") == service and meta.get("namespace") == namespace:
            for port in obj["spec"].get("ports", []):
                if port.get("name") in ports:
                    port["port"] = port["targetPort"] = ports[port["name"]]
    return out


def pod_resolv_conf(namespace: str, nameserver: str, cluster_domain: str = "cluster.local") -> str:
    """The resolv.conf that the kubelet writes for a ClusterFirst pod in ``namespace``."""
    return (f"search {namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}\n"
            f"nameserver {nameserver}\noptions ndots:5\n")


def seed_target(client_port: int, dashboard_port: int, gcs_port: int, resolv_conf: Path) -> dict[str, Any]:
    """The seed's target file (workers/config.yaml shape), with the sandbox's ports."""
    return {
        "ray": {
            "address": f"ray://ray-gpu-head-svc.ray.svc.cluster.local:{client_port}",
            "namespace": "ray",
            "cluster_name": "ray-gpu",
            "runtime_env": {"pip": ["openai", "anthropic", "nats-py"]},
        },
        "raycheck": {
            "client_namespace": "swe-ai-fleet",
            "service_account": "workspace-runner-sa",
            "dashboard_alias": "internal-ray-dashboard",
            "ports": {"dashboard": dashboard_port, "gcs": gcs_port},
            "expect": {"gpus": 8, "workers": 8},
            "resolv_conf": str(resolv_conf),
        },
    }


class Sandbox:
    """Everything the sandbox runs, started and stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = HeadPorts.pick()
        self.head = RayHead(self.ports, workdir)
        self.objects = scenario_for_head(load_objects(SEED), "ray", "ray-gpu-head-svc",
                                         {"client": self.ports.client, "dashboard": self.ports.dashboard,
                                          "gcs-server": self.ports.gcs})
        self.dns = DnsZoneServer(zone_from_objects(self.objects,
                                                   endpoint_override={("ray", "ray-gpu-head-svc"): ["127.0.0.1"]}))
        self.target_path = workdir / "target.yaml"
        self.dump_dir = workdir / "cluster-dump"

    def start(self) -> "Sandbox":
        self.dns.start()
        resolv = self.workdir / "resolv.conf"
        resolv.write_text(pod_resolv_conf("swe-ai-fleet", self.dns.host))
        self.target_path.write_text(yaml.safe_dump(seed_target(self.ports.client, self.ports.dashboard,
                                                               self.ports.gcs, resolv), sort_keys=False))
        write_snapshot(self.dump_dir, self.objects)
        self.head.start()
        return self

    def stop(self) -> None:
        self.head.stop()
        self.dns.stop()

    def pytest_args(self) -> list[str]:
        return [f"--target={self.target_path}", f"--dns-server={self.dns.address}",
                f"--cluster-dump={self.dump_dir}"]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raycheck sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="keep the sandbox running until Ctrl-C; run nothing")
    parser.add_argument("--report-dir", default="reports", help="where the suite writes its reports (default reports/)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --), e.g. -m connectivity")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="raycheck-sandbox-"))
    sandbox = Sandbox(workdir)
    try:
        print(f"sandbox: starting Ray head (client {sandbox.ports.client}, dashboard {sandbox.ports.dashboard}) "
              f"and DNS on {sandbox.dns.address} ...", flush=True)
        started = time.monotonic()
        sandbox.start()
        print(f"sandbox: ready in {time.monotonic() - started:.1f} s; target {sandbox.target_path}", flush=True)
        if args.serve:
            print("sandbox: serving; run, in another shell:\n  raycheck "
                  + " ".join(sandbox.pytest_args()) + "\nCtrl-C stops it.", flush=True)
            while True:
                time.sleep(3600)
        command = [sys.executable, "-m", "raycheck", *sandbox.pytest_args(), f"--report-dir={args.report_dir}",
                   *args.pytest_args]
        status = subprocess.call(command)
        print(f"sandbox: suite exit status {status}; reports in {args.report_dir}/ "
              "(raycheck.json, raycheck.md, raycheck.html, junit.xml, raycheck.prom)", flush=True)
        return status
    except KeyboardInterrupt:
        print("sandbox: interrupted", flush=True)
        return 130
    except RuntimeError as exc:
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        return 3
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("sandbox: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
