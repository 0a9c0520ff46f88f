"""Time to a diagnosis on a dead Ray address: ``pytest -m connectivity`` vs a plain ``ray.init``.

What a user does today on a dead address is ``ray.init("ray://...")`` and wait: Ray Client
retries for about 30 s before it raises. Addresses measured, all on loopback:

* ``refused``: nothing listens on the client port;
* ``silent``: the port accepts the TCP connection and never answers (a stuck proxy), at the
  default probe timeout, and ``silent-3s``: the same with ``--probe-timeout=3`` (the default
  until the measurements below chose another);
* ``unresolvable``: the head's cluster name, answered NXDOMAIN by a loopback DNS server
  (``--dns-server``; the plain ``ray.init`` asks the system resolver, which answers the same).

The dashboard port is a refused port in every target, so a Ray head that someone else runs on
8265 cannot answer for the dead one. raycheck runs ``ctx.runs`` times; each plain ``ray.init``
takes about 30 s, so it runs ``ctx.slow_runs`` times (once by default, none with ``--quick``).

What the default probe timeout must leave room for is measured too (:func:`healthy_latencies`):
how long a live head takes to answer each probe (the gRPC greeting, the dashboard's
``/api/version``, a DNS lookup through the loopback server), idle and with every core busy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import yaml

from harness import PYTHON, ROOT, Context, outcomes, pytest_command, ratio, read_report, suite_env, summary, timed

sys.path.insert(0, str(ROOT))

from raycheck.harness.dnszone import DnsZoneServer, Zone  # noqa: E402
from raycheck.harness.sandbox import HeadPorts, RayHead  # noqa: E402
from raycheck.probes import http, tcp  # noqa: E402
from raycheck.probes.dns import DnsProbe  # noqa: E402
from raycheck.settings import DnsServer, Settings  # noqa: E402
from tests.support import SilentPort, refused_port  # noqa: E402

HEAD_NAME = "ray-gpu-head-svc.ray.svc.cluster.local"


def _target(address: str, dashboard_port: int) -> dict[str, Any]:
    return {"ray": {"address": address, "namespace": "ray", "cluster_name": "ray-gpu"},
            "raycheck": {"ports": {"dashboard": dashboard_port}}}


def _raycheck(ctx: Context, name: str, target: dict[str, Any], extra: list[str]) -> dict[str, Any]:
    """``ctx.runs`` runs of ``-m connectivity`` against one dead target: wall times and outcomes."""
    folder = ctx.work / "dead" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "target.yaml").write_text(yaml.safe_dump(target))
    command = pytest_command("-m", "connectivity", f"--target={folder / 'target.yaml'}",
                             f"--report-dir={folder / 'reports'}", *extra)
    runs = [timed(command, suite_env(ctx.work / "home"), timeout=120) for _ in range(ctx.runs)]
    return {"raycheck_s": summary([r.wall_s for r in runs]), "exit_status": sorted({r.status for r in runs}),
            "outcomes": outcomes(read_report(folder / "reports"))}


def plain_ray_init(ctx: Context, address: str) -> dict[str, Any] | None:
    """``python -c "import ray; ray.init(address)"``, ``ctx.slow_runs`` times; None when skipped."""
    if ctx.slow_runs == 0:
        return None
    runs = [timed([PYTHON, "-c", f"import ray; ray.init({address!r})"], suite_env(ctx.work / "home"), timeout=300)
            for _ in range(ctx.slow_runs)]
    last = (runs[-1].stderr.strip().splitlines() or ["no output"])[-1]
    return {**summary([r.wall_s for r in runs]), "exit_status": sorted({r.status for r in runs}),
            "last_error_line": last[:300]}


def measure(ctx: Context) -> dict[str, Any]:
    """Every dead-address case: raycheck's median, the plain ``ray.init``, their ratio."""
    silent = SilentPort()
    dns = DnsZoneServer(Zone()).start()  # an empty zone: every name is NXDOMAIN
    dashboard = refused_port()
    silent_address = f"ray://127.0.0.1:{silent.port}"
    cases = {
        "refused": (f"ray://127.0.0.1:{refused_port()}", []),
        "silent": (silent_address, []),
        "silent-3s": (silent_address, ["--probe-timeout=3"]),
        "unresolvable": (f"ray://{HEAD_NAME}:10001", [f"--dns-server={dns.address}"]),
    }
    results: dict[str, Any] = {"cases": {}}
    plain_by_address: dict[str, dict[str, Any] | None] = {}
    try:
        for name, (address, extra) in cases.items():
            case = {"address": address, "args": extra, **_raycheck(ctx, name, _target(address, dashboard), extra)}
            if address not in plain_by_address:
                plain_by_address[address] = plain_ray_init(ctx, address)
            plain = plain_by_address[address]
            case["plain_ray_init_s"] = plain
            if plain is not None:
                case["speedup"] = ratio(plain["median"], case["raycheck_s"]["median"], 1)
            results["cases"][name] = case
            print(f"  dead target {name}: {case['raycheck_s']['median']} s"
                  + (f" vs plain ray.init {plain['median']} s" if plain else ""), flush=True)
    finally:
        silent.close()
        dns.stop()
    results["default_probe_timeout_s"] = Settings().probe_timeout
    results["healthy_latencies"] = healthy_latencies(ctx)
    return results


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(at(0.5) * 1000, 2), "p99_ms": round(at(0.99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def healthy_latencies(ctx: Context) -> dict[str, Any]:
    """How long a live head takes to answer each probe, idle and with every core kept busy by
    spinning processes (a node under load): the gRPC greeting on the client port, the dashboard's
    ``/api/version``, and a DNS lookup through the loopback server. ``ctx.runs`` x 40 of each."""
    head = RayHead(HeadPorts.pick(), ctx.work / "latency-head", num_gpus=0, num_cpus=1)
    (ctx.work / "latency-head").mkdir(parents=True, exist_ok=True)
    zone = Zone()
    zone.add(HEAD_NAME, "A", "127.0.0.1")
    dns = DnsZoneServer(zone).start()
    resolver = DnsProbe(DnsServer("127.0.0.1", dns.port), 10.0)
    probes = {
        "grpc_greeting": lambda: tcp.grpc_greeting("127.0.0.1", head.ports.client, 10.0),
        "dashboard_version": lambda: http.get_json(f"http://127.0.0.1:{head.ports.dashboard}/api/version", 10.0)[0],
        "dns_lookup": lambda: resolver.addresses(HEAD_NAME),
    }
    results: dict[str, Any] = {}
    try:
        head.start()
        for load in ("idle", "all_cores_busy"):
            spinners = [subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)] \
                if load == "all_cores_busy" else []
            try:
                time.sleep(1.0 if spinners else 0)
                for name, probe in probes.items():
                    times = []
                    for _ in range(ctx.runs * 40):
                        start = time.monotonic()
                        answer = probe()
                        times.append(time.monotonic() - start)
                        if not answer.ok:
                            raise RuntimeError(f"{name} failed against a live head: {answer.message}")
                    results.setdefault(name, {})[load] = _percentiles(times)
            finally:
                for spinner in spinners:
                    spinner.kill()
                    spinner.wait()
    finally:
        head.stop()
        dns.stop()
    for name, loads in results.items():
        busy = loads["all_cores_busy"]
        print(f"  {name}: idle p99 {loads['idle']['p99_ms']} ms, all cores busy p99 {busy['p99_ms']} ms "
              f"(max {busy['max_ms']} ms)", flush=True)
    return results
