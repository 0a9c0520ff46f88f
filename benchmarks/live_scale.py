"""The live path at scale: what a full offline run asks the API server, vs listing everything.

The loopback API server of the project's tests (``tests/apiserver.py``) serves the generated
dump (2,000 nodes, 60,000 pods of which 200 are Ray pods) from threads of this process. Then:

* raycheck: ``pytest -m "not network" --kubeconfig=FILE`` in a subprocess, ``ctx.runs`` times
  (the property tests left out: they read no cluster state; ``properties.py`` measures them);
* the naive way: a subprocess that lists every pod in every namespace and every node with the
  official client, ``CoreV1Api.list_pod_for_all_namespaces()`` and ``list_node()``, as a script
  written today would, ``ctx.runs`` times.

Requests and response bytes come from the server's log, grouped by path and selector; the time
the server spent answering is measured around its handler.

One deviation from ``FakeApiServer``'s defaults: its handler writes the headers and the body of
each answer in two ``send`` calls without ``TCP_NODELAY``, so every answer waits for the
client's delayed ACK (40 ms on Linux). A real API server (Go's net/http) sets ``TCP_NODELAY``;
so does this benchmark's server (``disable_nagle_algorithm``), or the 270 small answers of a
raycheck run would add about 11 s that no real cluster costs.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from harness import PYTHON, ROOT, Context, outcomes, pytest_command, ratio, read_report, suite_env, summary, timed

sys.path.insert(0, str(ROOT))

from tests.apiserver import FakeApiServer, Request  # noqa: E402
from tests.test_k8s_suite import TARGET  # noqa: E402  (the seed's target, as the suite tests use it)

NAIVE = """\
import json, sys, time
from kubernetes import client, config
api = client.CoreV1Api(config.new_client_from_config(sys.argv[1]))
start = time.monotonic()
pods = api.list_pod_for_all_namespaces()
listed = time.monotonic()
nodes = api.list_node()
print(json.dumps({"pods": len(pods.items), "nodes": len(nodes.items), "pods_s": listed - start,
                  "nodes_s": time.monotonic() - listed}))
"""


class TimedServer:
    """FakeApiServer with TCP_NODELAY (as a real API server) and the seconds its handler was busy."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.server = FakeApiServer(objects)
        handler_class: Any = self.server.server.RequestHandlerClass
        handler_class.disable_nagle_algorithm = True
        self.busy_s = 0.0
        self._lock = threading.Lock()
        handle: Callable[..., None] = self.server._handle

        def timed_handle(handler: Any, method: str) -> None:
            start = time.perf_counter()
            try:
                handle(handler, method)
            finally:
                with self._lock:
                    self.busy_s += time.perf_counter() - start

        self.server._handle = timed_handle  # type: ignore[method-assign,assignment]

    def start(self) -> "TimedServer":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def take(self) -> tuple[list[Request], float]:
        """The requests and busy seconds since the last call, then reset both."""
        with self._lock:
            log, busy = list(self.server.log), self.busy_s
            self.server.log.clear()
            self.busy_s = 0.0
        return log, busy


def request_group(request: Request) -> str:
    """``GET /api/v1/pods fieldSelector=spec.nodeName``: the path and what narrowed it.

    Label selectors keep their value (they are constant); field selectors keep the field only
    (their value is the node or object name, one per request)."""
    parts = [f"{request.method} {request.path}"]
    for selector in ("labelSelector", "fieldSelector"):
        for value in request.query.get(selector, []):
            shown = value if selector == "labelSelector" else ",".join(v.split("=")[0] for v in value.split(","))
            parts.append(f"{selector}={shown}")
    return " ".join(parts)


def traffic(log: list[Request]) -> dict[str, Any]:
    """Requests and response bytes, in all and per group, largest first."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for request in log:
        group = groups[request_group(request)]
        group[0] += 1
        group[1] += request.bytes_out
    ordered = sorted(groups.items(), key=lambda kv: -kv[1][1])
    return {"requests": len(log), "bytes": sum(r.bytes_out for r in log),
            "groups": [{"group": name, "requests": n, "bytes": size} for name, (n, size) in ordered]}


def load_objects(dump: Path) -> list[dict[str, Any]]:
    """Every object of the dump's three files, as the server is given them.

    As raycheck's dump source does, the collector is paused while they are built and they are then
    frozen out of later collections, which would otherwise re-scan them while the server answers."""
    gc.disable()
    try:
        objects = [item for name in ("nodes.json", "pods.json", "ray.json")
                   for item in json.loads((dump / name).read_text())["items"]]
    finally:
        gc.enable()
    gc.freeze()
    return objects


def measure(ctx: Context, dump: Path) -> dict[str, Any]:
    """Alternating raycheck and naive runs against one server: time, requests, bytes."""
    folder = ctx.work / "live"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    objects = load_objects(dump)
    loaded = time.monotonic()
    server = TimedServer(objects).start()
    server_start_s = time.monotonic() - loaded
    env = suite_env(ctx.work / "home")
    (folder / "target.yaml").write_text(TARGET)
    (folder / "naive.py").write_text(NAIVE)
    samples: dict[str, list[dict[str, Any]]] = {"raycheck": [], "naive": []}
    try:
        kubeconfig = server.server.kubeconfig(folder / "kubeconfig")
        commands = {
            "raycheck": pytest_command("-m", "not network", "--ignore=suites/capacity/test_properties.py",
                                       f"--target={folder / 'target.yaml'}", f"--kubeconfig={kubeconfig}",
                                       f"--report-dir={folder / 'reports'}"),
            "naive": [PYTHON, str(folder / "naive.py"), str(kubeconfig)],
        }
        for round_ in range(ctx.runs):
            for kind in (("raycheck", "naive") if round_ % 2 == 0 else ("naive", "raycheck")):
                server.take()
                run = timed(commands[kind], env, timeout=600)
                log, busy = server.take()
                if kind == "naive" and run.status != 0:
                    raise RuntimeError(f"the naive listing failed: {run.stderr[-2000:]}")
                sample = {"wall_s": run.wall_s, "server_busy_s": busy, "status": run.status, **traffic(log)}
                if kind == "naive":
                    sample["client"] = json.loads(run.stdout.strip().splitlines()[-1])
                samples[kind].append(sample)
    finally:
        server.stop()
        gc.unfreeze()
    raycheck, naive = samples["raycheck"], samples["naive"]
    ours: dict[str, Any] = {
        "wall_s": summary([s["wall_s"] for s in raycheck]),
        "server_busy_s": summary([s["server_busy_s"] for s in raycheck]),
        "exit_status": sorted({s["status"] for s in raycheck}), "requests": raycheck[-1]["requests"],
        "bytes": raycheck[-1]["bytes"], "groups": raycheck[-1]["groups"],
        "outcomes": outcomes(read_report(folder / "reports"))}
    theirs: dict[str, Any] = {
        "wall_s": summary([s["wall_s"] for s in naive]),
        "server_busy_s": summary([s["server_busy_s"] for s in naive]),
        "pods_list_s": summary([s["client"]["pods_s"] for s in naive]),
        "nodes_list_s": summary([s["client"]["nodes_s"] for s in naive]),
        "requests": naive[-1]["requests"], "bytes": naive[-1]["bytes"], "groups": naive[-1]["groups"]}
    result = {"load_s": round(loaded - started, 3), "server_start_s": round(server_start_s, 3),
              "objects": len(objects), "raycheck": ours, "naive": theirs,
              "bytes_ratio": ratio(theirs["bytes"], ours["bytes"], 1),
              "wall_ratio": ratio(theirs["wall_s"]["median"], ours["wall_s"]["median"], 2)}
    print(f"  live: raycheck {ours['requests']} requests, {ours['bytes']} B, {ours['wall_s']['median']} s; "
          f"naive {theirs['requests']} requests, {theirs['bytes']} B, {theirs['wall_s']['median']} s", flush=True)
    return result
