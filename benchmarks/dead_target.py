"""Time to a diagnosis on a dead Ray address: ``pytest -m connectivity`` vs a plain ``ray.init``.

What a user does today on a dead address is ``ray.init("ray://...")`` and wait: Ray Client
retries for about 30 s before it raises. Addresses measured, all on loopback:

* ``refused``: nothing listens on the client port;
* ``silent``: the port accepts the TCP connection and never answers (a stuck proxy), with the
  default 3 s probe timeout, and ``silent-1s``: the same with ``--probe-timeout=1``;
* ``unresolvable``: the head's cluster name, answered NXDOMAIN by a loopback DNS server
  (``--dns-server``; the plain ``ray.init`` asks the system resolver, which answers the same).

The dashboard port is a refused port in every target, so a Ray head that someone else runs on
8265 cannot answer for the dead one. raycheck runs ``ctx.runs`` times; each plain ``ray.init``
takes about 30 s, so it runs ``ctx.slow_runs`` times (once by default, none with ``--quick``).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from harness import PYTHON, ROOT, Context, outcomes, pytest_command, ratio, read_report, suite_env, summary, timed

sys.path.insert(0, str(ROOT))

from raycheck.harness.dnszone import DnsZoneServer, Zone  # noqa: E402
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
        "silent-1s": (silent_address, ["--probe-timeout=1"]),
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
    return results
