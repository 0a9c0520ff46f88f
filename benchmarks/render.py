"""Render ``docs/BENCHMARKS.md`` from the results of ``benchmarks/run.py``.

Every number in the document comes from the results; the text around them says how each was
measured and what limits it. A measurement missing from the results (``--only``, or a slow
baseline skipped) is said to be missing rather than left out silently.
"""

from __future__ import annotations

from typing import Any, Sequence

Results = dict[str, Any]

DEAD_GOAL = 10.0  # raycheck at least 10x faster than a plain ray.init on a dead address
HEALTHY_GOAL = 1.5  # raycheck's whole connectivity run within 1.5x of one bare handshake
PLUGIN_GOAL_PCT = 5.0
CAPACITY_GOAL_S = 10.0
CAPACITY_GOAL_MIB = 1024.0
DEAD_CASES = {
    "refused": "refused port",
    "silent": "silent port (accepts, never answers)",
    "silent-3s": "silent port, `--probe-timeout=3` (the old default)",
    "unresolvable": "unresolvable name (NXDOMAIN)",
}
PARTS = {
    "pytest fixed cost": "pytest's fixed cost: interpreter, imports, plugins, collection, summary (`--co` runs)",
    "dns": "DNS: the four `dns.*` checks",
    "tcp": "TCP connect and gRPC greeting: `port.client`",
    "dashboard": "dashboard HTTP: `port.dashboard`, `ray.gcs-health`, `ray.auth`",
    "handshake": "Ray Client handshake, in a child process: `ray.version-match`, `ray.client-handshake`",
    "remainder": "the rest: hooks between checks, five report files, exit (by difference)",
}
# What each kind of request of the live path grows with, by a fragment of its group name.
SCALING = (
    ("/pods fieldSelector=spec.nodeName", "GPU nodes (where Ray pods may go) × the pods bound to each"),
    ("/pods labelSelector=ray.io/cluster", "the Ray cluster's pods"),
    ("/nodes labelSelector=", "GPU nodes"),
    ("/nodes fieldSelector=metadata.name", "nodes hosting Ray pods, one request each"),
    ("subjectaccessreviews", "the client ServiceAccount's required permissions (fixed)"),
    ("rbac.authorization.k8s.io", "every RBAC object in the cluster (a handful here)"),
    ("/apis/apps/v1/daemonsets", "every DaemonSet in the cluster"),
    ("/events", "the events in the Ray namespace"),
    ("/api/v1/pods", "every pod in the cluster"),
    ("/api/v1/nodes", "every node in the cluster"),
)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def spread(figure: dict[str, Any]) -> str:
    """``1.23 s (1.20–1.31, n=3)``: the median, then the range it came from."""
    if figure["n"] == 1:
        return f"{figure['median']:.2f} s (n=1)"
    return f"{figure['median']:.2f} s ({figure['min']:.2f}–{figure['max']:.2f}, n={figure['n']})"


def size(n: float) -> str:
    for unit, factor in (("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:.0f} B"


def verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def scaling(group: str) -> str:
    return next((text for fragment, text in SCALING if fragment in group), "one object or a namespace's few (fixed)")


# ----------------------------------------------------------------------------- the summary


def dump_name(dump: Results) -> str:
    return f"{dump['nodes']:,} nodes / {dump['pods']:,} pods"


def summary_rows(m: Results, dump: Results) -> list[list[str]]:
    """One row per goal: raycheck's median, the baseline's, their ratio, the goal and the verdict."""
    rows: list[list[str]] = []
    for name, case in (m.get("dead_target") or {}).get("cases", {}).items():
        plain = case.get("plain_ray_init_s")
        speedup = case.get("speedup")
        compared = name == "silent-3s"  # not a default: the old one, beside the new
        rows.append([f"Dead address: {DEAD_CASES.get(name, name)}", secs(case["raycheck_s"]["median"]),
                     f"plain `ray.init`: {secs(plain['median']) if plain else '–'}",
                     f"{speedup:.1f}× faster" if speedup else "–",
                     "– (for comparison)" if compared else f"≥ {DEAD_GOAL:g}× faster",
                     "–" if compared else verdict(speedup >= DEAD_GOAL if speedup else None)])
    healthy = m.get("healthy")
    if healthy:
        for env, label in (("cached", "Healthy target, `-m connectivity`"),
                           ("no_bytecode", "…the same, without a bytecode cache")):
            figures = healthy["environments"][env]
            rows.append([label, secs(figures["raycheck_s"]["median"]),
                         f"bare handshake: {secs(figures['bare_handshake_s']['median'])}",
                         f"{figures['ratio']:.2f}×", f"≤ {HEALTHY_GOAL:g}×",
                         verdict(figures["ratio"] <= HEALTHY_GOAL)])
        matched = healthy.get("matched_runtime") or {}
        if "raycheck_s" in matched:
            bare = f"bare handshake in that runtime: {secs(matched['bare_handshake_s']['median'])}"
            rows.append([f"Healthy head on another Python ({matched['head']}), through the matched client runtime",
                         secs(matched["raycheck_s"]["median"]), bare, f"{matched['ratio']:.2f}×",
                         f"≤ {HEALTHY_GOAL:g}×", verdict(matched["ratio"] <= HEALTHY_GOAL)])
            rows.append(["…the same without cluster state (the head names its Python: one handshake more)",
                         secs(matched["raycheck_without_state_s"]["median"]), bare,
                         f"{matched['ratio_without_state']:.2f}×", "reported", "–"])
    plugins = m.get("plugin_overhead")
    if plugins:
        rows.append([f"Plugin overhead, {plugins['tests']} trivial checks", secs(plugins["with_plugins_s"]["median"]),
                     f"without plugins: {secs(plugins['without_plugins_s']['median'])}",
                     f"{plugins['overhead_pct']:+.1f} %", f"< {PLUGIN_GOAL_PCT:g} %",
                     verdict(plugins["overhead_pct"] < PLUGIN_GOAL_PCT)])
    live = m.get("live_scale")
    if live:
        rc, naive = live["raycheck"], live["naive"]
        rows.append([f"Live path, {dump_name(dump)}: bytes (requests)",
                     f"{size(rc['bytes'])} ({rc['requests']})", f"list all pods and nodes: {size(naive['bytes'])} "
                     f"({naive['requests']})", f"{live['bytes_ratio']:.1f}× fewer bytes",
                     "∝ Ray cluster, no cluster-wide pod or node list", verdict(not whole_cluster_lists(rc))])
        rows.append(["Live path: wall time", secs(rc["wall_s"]["median"]),
                     f"list all: {secs(naive['wall_s']['median'])}", f"{live['wall_ratio']:.1f}× faster", "–", "–"])
    capacity = m.get("capacity_scale")
    if capacity:
        wall, rss = capacity["wall_s"]["median"], capacity["peak_rss_mib"]["max"]
        rows.append([f"GPU/OOM/capacity checks, dump of {dump_name(dump)}", f"{secs(wall)}, {rss:.0f} MiB peak RSS",
                     "–", "–", f"< {CAPACITY_GOAL_S:g} s and < {CAPACITY_GOAL_MIB / 1024:g} GiB",
                     verdict(wall < CAPACITY_GOAL_S and rss < CAPACITY_GOAL_MIB)])
    verify = m.get("verify_scale")
    if verify:
        on, off, goals = verify["on"], verify["off"], verify["goals"]
        wall, rss = on["wall_s"]["median"], on["peak_rss_mib"]["max"]
        rows.append([f"Offline checks with remediation verification, broken dump of {dump_name(dump)}",
                     f"{secs(wall)}, {rss:.0f} MiB peak RSS", f"verification off: {secs(off['wall_s']['median'])}",
                     f"{verify['overhead']:+.0%}",
                     f"< {goals['overhead']:.0%} over, < {goals['wall_s']:g} s, < {goals['peak_rss_mib'] / 1024:g} GiB",
                     verdict(verify["overhead"] < goals["overhead"] and wall < goals["wall_s"]
                             and rss < goals["peak_rss_mib"])])
    for profile, figures in (m.get("properties") or {}).get("profiles", {}).items():
        rows.append([f"Capacity properties, profile `{profile}`",
                     f"{secs(figures['suite_wall_s']['median'])}, {figures['examples_per_s']['median']:.0f} examples/s",
                     "–", "–", "reported", "–"])
    return rows


def whole_cluster_lists(run: dict[str, Any]) -> list[str]:
    """Groups that list every pod or every node of the cluster (no selector)."""
    return [g["group"] for g in run["groups"] if g["group"] in ("GET /api/v1/pods", "GET /api/v1/nodes")]


# ----------------------------------------------------------------------------- the sections


def machine_section(r: Results) -> str:
    mc = r["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in mc["packages"].items())
    highest = max((max(v["load_1min"]) for v in r["measurements"].values()), default=0.0)
    return "\n".join([
        "## Machine", "",
        table(["", ""], [["CPU", f"{mc['cpu']}, {mc['cores']} cores"], ["Memory", f"{mc['memory_gib']} GiB"],
                         ["Kernel", mc["kernel"]], ["Python", mc["python"]], ["Packages", packages],
                         ["Commit", mc["commit"]], ["Date (UTC)", mc["date"]],
                         ["Runs", f"{r['runs']} per measurement, {r['slow_runs']} of each half-minute baseline"
                                  + (" (`--quick`)" if r["quick"] else "")],
                         ["Total time", f"{r['total_s']:.0f} s"]]),
        "",
        "The 1-minute load average before and after each measurement is in `results.json` (`load_1min`); the "
        f"highest was {highest:.1f} on {mc['cores']} cores. The benchmark itself keeps one or two cores busy; "
        "more than that means other work shared the machine, and the ranges show how much the runs varied.",
    ])


def dead_section(d: Results | None, m: Results) -> str:
    head = "## 1. Time to a diagnosis on a dead Ray address"
    if d is None:
        return f"{head}\n\nNot measured in this run."
    rows = []
    for name, case in d["cases"].items():
        plain = case.get("plain_ray_init_s")
        rows.append([DEAD_CASES.get(name, name), spread(case["raycheck_s"]), spread(plain) if plain else "not run",
                     f"{case['speedup']:.1f}×" if case.get("speedup") else "–",
                     ", ".join(f"{k} {v}" for k, v in sorted(_count(case["outcomes"]).items()))])
    silent = d["cases"].get("silent", {})
    default = d.get("default_probe_timeout_s", 3.0)
    fixed = (m.get("healthy") or {}).get("startup_s", {}).get("median")
    refused = d["cases"].get("refused", {}).get("raycheck_s", {}).get("median")
    plain_line = next((c["plain_ray_init_s"]["last_error_line"] for c in d["cases"].values()
                       if c.get("plain_ray_init_s")), None)
    return "\n".join([
        head, "",
        "**Method.** `benchmarks/dead_target.py`. Each address is a real socket on loopback: a port where nothing "
        "listens, a port that accepts TCP and never answers, and the head's cluster name answered NXDOMAIN by a "
        "loopback DNS server (`--dns-server`). raycheck runs `pytest -m connectivity --target=FILE` "
        "in a fresh process; the baseline is what a user runs today, `python -c \"import ray; "
        "ray.init('ray://...')\"`, on the same address. The dashboard port is a refused port in every target. "
        "raycheck runs `--runs` times; the plain `ray.init` takes half a minute, so it runs `--slow-runs` times "
        "(once by default) and the ratio is the median of raycheck's runs against it.", "",
        table(["Address", "raycheck `-m connectivity`", "plain `ray.init`", "Ratio", "Outcomes"], rows), "",
        "**What limits the numbers.** A refused port and an NXDOMAIN answer come back at once, so those runs are "
        f"pytest's fixed cost ({secs(fixed)} on a healthy run, see section 2) plus writing the reports: "
        f"{secs(refused)} in all. The silent port waits for the gRPC greeting until the probe timeout "
        f"(`--probe-timeout`, {default:g} s by default) and that wait is most of its "
        f"{secs(silent.get('raycheck_s', {}).get('median'))}; at the old default of 3 s the same diagnosis takes "
        f"{secs(d['cases'].get('silent-3s', {}).get('raycheck_s', {}).get('median'))}. The checks that need the "
        "port are reported `blocked` instead of each waiting again. "
        "The plain `ray.init` retries for about 30 s whatever the cause, and then says only that it could not "
        "connect" + (f" (`{plain_line}`)." if plain_line else "."),
        *probe_timeout_choice(d),
    ])


def probe_timeout_choice(d: Results) -> list[str]:
    """Why the default probe timeout is what it is: the live answers it must leave room for."""
    latencies = d.get("healthy_latencies")
    if not latencies:
        return []
    names = {"grpc_greeting": "gRPC greeting on the client port (`port.client`, the handshake's pre-check)",
             "dashboard_version": "dashboard `/api/version` (`port.dashboard`, `ray.auth`, `ray.version-match`)",
             "dns_lookup": "DNS lookup of the head's name (`dns.*`)"}
    rows = [[names.get(name, name), f"{loads['idle']['p50_ms']:.1f} / {loads['idle']['p99_ms']:.1f} / "
             f"{loads['idle']['max_ms']:.1f} ms", f"{loads['all_cores_busy']['p50_ms']:.1f} / "
             f"{loads['all_cores_busy']['p99_ms']:.1f} / {loads['all_cores_busy']['max_ms']:.1f} ms",
             loads["idle"]["n"]] for name, loads in latencies.items()]
    slowest = max(loads[load]["max_ms"] for loads in latencies.values() for load in loads)
    default = d.get("default_probe_timeout_s", 1.0)
    silent = d["cases"].get("silent", {})
    plain = (silent.get("plain_ray_init_s") or {}).get("median")
    room = f"{plain / 10 - (silent['raycheck_s']['median'] - default):.1f} s" if plain and silent else "–"
    return [
        "", "**Choosing the default probe timeout.** Every probe waits at most `--probe-timeout` for an answer, "
        "so the default is a trade: long enough that a live peer always answers within it, short enough that a "
        "silent one is diagnosed long before `ray.init` gives up. How long a live head takes to answer each probe "
        "(`benchmarks/dead_target.py`, `healthy_latencies`: a real head on loopback, the probe repeated, idle "
        "and with every core kept busy by spinning processes):", "",
        table(["Probe", "idle p50 / p99 / max", "all cores busy p50 / p99 / max", "Runs each"], rows), "",
        f"The slowest live answer seen was {slowest:.0f} ms. The default is {default:g} s: "
        f"{default * 1000 / slowest:.0f}× that, the same as testinfra's 1 s and twice goss's 500 ms, and it "
        "leaves the silent port 10× faster than a plain `ray.init` (the goal leaves room for a timeout up to "
        f"{room}). A longer network path adds its round trips (two for the greeting: connect, then the "
        "server's SETTINGS frame), which stay far below a second in one cluster; where they do not, "
        "`--probe-timeout` (`RAYCHECK_PROBE_TIMEOUT`, `raycheck.probe_timeout`) raises it. Kubernetes API "
        "requests have their own deadline, `--api-timeout` (5 s by default): a list through a loaded API server "
        "is queued by API Priority and Fairness for seconds, where a probe of the head takes milliseconds.",
    ]


def _count(outcomes: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def healthy_section(h: Results | None) -> str:
    head = "## 2. A healthy target: the whole connectivity run vs one bare handshake"
    if h is None:
        return f"{head}\n\nNot measured in this run."
    envs = h["environments"]
    rows = [[label, spread(envs[env]["raycheck_s"]), spread(envs[env]["bare_handshake_s"]),
             spread(envs[env]["startup_s"]), spread(envs[env]["narrow_startup_s"]), f"{envs[env]['ratio']:.2f}×"]
            for env, label in (("cached", "bytecode cached (a developer's venv)"),
                               ("no_bytecode", "no bytecode cache (no `.pyc` files, none written)"))]
    breakdown = [[PARTS.get(part, part), secs(seconds)] for part, seconds in h["breakdown_s"].items()]
    imports = ", ".join(f"{k} {v:.2f} s" for k, v in list(h["pytest_import_times_s"].items())[:5])
    cached, cold = envs["cached"], envs["no_bytecode"]
    handshake = h["breakdown_s"]["handshake"]
    return "\n".join([
        head, "",
        "**Method.** `benchmarks/healthy.py` starts the sandbox's real Ray head (`ray start --head`, "
        "`raycheck.harness.sandbox.RayHead`) and its loopback DNS, and writes the seed's target pointed at them. raycheck "
        "runs its ten connectivity checks (`-m connectivity`, the head reached by its cluster name); the baseline "
        "is one bare `python -c \"import ray; ray.init('ray://127.0.0.1:PORT'); ray.shutdown()\"`. Every Ray "
        "Client connection starts a per-client server on the head that lives about 30 s, and a fresh head's first "
        "client is slow, so one warm-up of each runs first and the measured runs alternate, in reverse order every "
        "other round: both see the same head. pytest's fixed cost is measured by `--co` runs of the same command "
        "in the same rounds, and by a narrower `--co` (`suites/connectivity -p no:hypothesispytest`) to show what "
        "a start that collects only the connectivity suite would cost; each check's time is its `duration_s` in "
        "`raycheck.json`.", "",
        table(["Environment", "raycheck", "bare handshake", "pytest fixed cost (`--co`)", "narrow `--co`", "Ratio"],
              rows), "",
        f"Where raycheck's {secs(cached['raycheck_s']['median'])} go (bytecode cached, medians):", "",
        table(["Part", "Time"], breakdown), "",
        "**What limits the numbers.** The Ray Client handshake: raycheck runs it in a child process with a hard "
        f"deadline ({secs(handshake)}), and that costs about what the whole bare handshake costs "
        f"({secs(cached['bare_handshake_s']['median'])}): a Python start, `import ray` "
        f"({secs(h['import_ray_s']['median'])} with the interpreter), and the head's proxier starting a per-client "
        "server, which imports Ray and connects to the GCS before the client gets an answer. DNS, TCP and the "
        "dashboard take milliseconds on loopback. The rest of the ratio is pytest's fixed cost, "
        f"{secs(cached['startup_s']['median'])}: the interpreter ({secs(h['interpreter_start_s']['median'])}) and "
        f"imports ({imports}; `python -X importtime`). What could still go:", "",
        "* `-m connectivity` collects every suite before deselecting, so the capacity properties import "
        "Hypothesis (its pytest plugin would import it anyway in the terminal summary): collecting only "
        "`suites/connectivity` without that plugin starts in "
        f"{secs(cached['narrow_startup_s']['median'])} instead of {secs(cached['startup_s']['median'])}.", "",
        "The remainder (hooks between checks, five report files, exit) is measured by difference, so it can come "
        "out slightly negative.", "",
        "Without a bytecode cache (no `.pyc` files and `PYTHONDONTWRITEBYTECODE=1`: a read-only install without "
        "bytecode, as the deploy image was until it compiled its bytecode and pytest's rewritten modules at "
        "build time), every start compiles every module it imports: pytest's fixed cost grows "
        f"from {secs(cached['startup_s']['median'])} to {secs(cold['startup_s']['median'])}, because pytest "
        "rewrites the asserts of every plugin package it loads (all of Hypothesis) and cannot cache the result, "
        "and raycheck's handshake child compiles Ray as the bare handshake does. The benchmark reproduces this "
        "with an empty `PYTHONPYCACHEPREFIX`; every other measurement runs with the bytecode cache.",
        *matched_runtime_section(h.get("matched_runtime")),
    ])


def matched_runtime_section(r: Results | None) -> list[str]:
    """A head on another Python, reached through the client runtime built for it."""
    if not r:
        return []
    if "raycheck_s" not in r:
        return ["", f"**A head on another Python.** Not measured: {r.get('skipped')}."]
    return [
        "", f"**A head on another Python, through a matched client runtime.** The same measurement against a head "
        f"on {r['head']}, which raycheck's own Ray Client (Python 3.11) cannot talk to: raycheck runs the handshake "
        f"in the runtime `raycheck client-env` built for it (`{r['runtime']}`), and the baseline is the bare "
        "handshake in that same runtime. With cluster state (a dump whose RayCluster names the head image, as the "
        "CronJob reads it live) raycheck knows the head's Python before it connects; without, it connects in its "
        "own runtime first, the head refuses it and names its Python, and raycheck connects again in the matched "
        "one.", "",
        table(["", "raycheck `-m connectivity`", "bare handshake in the runtime", "Ratio (medians)",
               "Ratio (fastest runs)"], [
            ["with cluster state", spread(r["raycheck_s"]), spread(r["bare_handshake_s"]), f"{r['ratio']:.2f}×",
             f"{r['ratio_min']:.2f}×"],
            ["without cluster state", spread(r["raycheck_without_state_s"]), spread(r["bare_handshake_s"]),
             f"{r['ratio_without_state']:.2f}×", "–"]]), "",
        "A handshake with this head takes about 2 s or about 4 s, whoever the client (the head's proxier starts "
        "the per-client server fast or slowly): the pair compared runs more often than elsewhere, in alternating "
        f"order with a {r['settle_s']:g} s pause after each run, and the fastest runs, in the same mode, are shown "
        "beside the medians. Without cluster state the refused first handshake (a Ray Client connects, reads the "
        "head's versions and gives up) is the difference. Outcomes of the last run with state: "
        + ", ".join(f"{k} {v}" for k, v in sorted(_count(r["outcomes"]).items())) + ".",
    ]


def plugin_section(p: Results | None) -> str:
    head = "## 3. What raycheck's pytest plugins cost"
    if p is None:
        return f"{head}\n\nNot measured in this run."
    c = p["components_ms"]
    delta = p["with_plugins_s"]["median"] - p["without_plugins_s"]["median"]
    return "\n".join([
        head, "",
        f"**Method.** `benchmarks/plugin_overhead.py` generates {p['tests']} trivial checks ({p['files']} files; "
        "`@pytest.mark.check(ID, severity=\"info\")` with the catalog's real ids in turn; half pass, a third fail, "
        "the rest skip) into two throwaway projects: one run with raycheck's plugin (its pytest11 entry point), "
        "one that blocks it (`-p no:raycheck`) and only registers the marker. Same command, same environment, runs alternating "
        "after one warm-up round, ten rounds at least (the difference is a tenth of a run).", "",
        table(["", "Time"], [["with the plugins", spread(p["with_plugins_s"])],
                             ["without", spread(p["without_plugins_s"])],
                             ["overhead", f"{delta:.2f} s ({p['overhead_pct']:+.1f} %, {p['per_test_ms']:.1f} ms "
                                          "per check, fixed costs included)"]]), "",
        "**What limits the number.** The parts, each measured alone in a fresh process:", "",
        table(["Part", "Cost", "How often"], [
            ["importing `raycheck.plugins` (runner, remediation, summary, reports, with the raycheck modules they import)",
             f"{c['plugin_imports_ms']:.0f} ms", "once"],
            ["loading `catalog.yaml` (the YAML parse and validation)", f"{c['catalog_load_ms']:.1f} ms", "once"],
            ["`raycheck.versions.local_ray_version()`", f"{c['local_ray_version_ms']:.3f} ms",
             "for every remediation rendered"],
            ["`raycheck.redact.redact_text()` on a one-line message", f"{c['redact_text_ms']:.3f} ms",
             "every message, summary line and report string"],
        ]), "",
        f"The imports and the catalog are {c['plugin_imports_ms'] + c['catalog_load_ms']:.0f} ms of the "
        f"{delta * 1000:.0f} ms; the rest is the hooks around every check, the longer text of each failure (its "
        "remediation replaces the traceback) and the five report files. The goal is relative to a run of trivial "
        "tests, which is mostly pytest's own fixed cost; on real checks, which wait on the network or read "
        "cluster state, the same absolute cost is a smaller fraction.",
    ])


def live_section(lv: Results | None, dump: Results) -> str:
    head = "## 4. The live path at scale: requests and bytes"
    if lv is None:
        return f"{head}\n\nNot measured in this run."
    rc, naive = lv["raycheck"], lv["naive"]
    rows = [[f"`{g['group']}`", g["requests"], size(g["bytes"]), scaling(g["group"])] for g in rc["groups"]]
    lists = whole_cluster_lists(rc)
    by_name = any("/nodes fieldSelector=metadata.name" in g["group"] for g in rc["groups"])
    return "\n".join([
        head, "",
        f"**Method.** `benchmarks/live_scale.py` serves the generated dump ({lv['objects']:,} objects: "
        f"{dump['nodes']:,} nodes, {dump['gpu_nodes']:,} of them with GPUs; {dump['pods']:,} pods, "
        f"{dump['ray_pods']:,} of them the Ray cluster's) from the project's loopback API server "
        "(`tests/apiserver.py`) in threads of the benchmark process. raycheck runs `pytest -m \"not network\" "
        "--kubeconfig=FILE` (every check that reads cluster state; the property tests left out) in a subprocess; "
        "the baseline is a script doing what one does with the official client today, "
        "`CoreV1Api.list_pod_for_all_namespaces()` and `list_node()`. Requests and response bytes come from the "
        f"server's log; runs alternate. Loading the dump into the server took {secs(lv['load_s'])} (parsing its "
        "JSON, the collector paused as raycheck's dump source does; starting the server "
        f"{secs(lv['server_start_s'])}), before any run.", "",
        table(["", "raycheck", "list everything"], [
            ["requests", rc["requests"], naive["requests"]],
            ["response bytes", size(rc["bytes"]), size(naive["bytes"])],
            ["wall time", spread(rc["wall_s"]), spread(naive["wall_s"])],
            ["server busy", spread(rc["server_busy_s"]), spread(naive["server_busy_s"])],
        ]), "",
        "Where raycheck's requests and bytes go:", "",
        table(["Request", "Requests", "Bytes", "Grows with"], rows), "",
        "**What limits the numbers.** raycheck never lists every pod or node"
        + (f" (it did here: {', '.join(lists)})" if lists else "")
        + ": it lists the Ray cluster's pods by label, the GPU nodes by label, and the pods bound to each "
        "candidate node by `spec.nodeName`, which the capacity and OOM checks need to know what else uses those "
        "nodes. Its bytes therefore grow with the GPU nodes and what runs on them, not with the rest of the "
        f"cluster: {lv['bytes_ratio']:.1f}× fewer bytes here. Its requests are many small ones (one per candidate "
        "node" + (", and one per node hosting Ray pods that no list returned" if by_name else "") + "), "
        "made one after another, so on a real API server its time grows with the request latency times "
        f"{rc['requests']}. The naive script's time is the official client turning {size(naive['bytes'])} "
        f"of JSON into typed models: {secs(naive['pods_list_s']['median'])} for the pods, while the server "
        f"spent {secs(naive['server_busy_s']['median'])} answering.", "",
        "The loopback server is made to set `TCP_NODELAY` (`disable_nagle_algorithm`), as a real API server "
        "does: by default it writes each answer's headers and body in two sends and every answer waits for the "
        "client's delayed ACK, 40 ms, which made this run about 12 s slower when the benchmark was written.",
    ])


def capacity_section(c: Results | None, dump: Results) -> str:
    head = "## 5. The capacity model at scale"
    if c is None:
        return f"{head}\n\nNot measured in this run."
    return "\n".join([
        head, "",
        "**Method.** `benchmarks/capacity_scale.py`: `pytest -m \"(gpu or oom or capacity) and not network\" "
        f"--cluster-dump=DUMP` on the same generated dump ({dump_name(dump)}, {size(dump['bytes'])} of JSON), "
        "in fresh "
        "processes; the peak RSS is the suite process's own (`getrusage` of a wrapper's child).", "",
        table(["Wall time", "Peak RSS (largest run)", "Outcomes"],
              [[spread(c["wall_s"]), f"{c['peak_rss_mib']['max']:.0f} MiB",
                ", ".join(f"{k} {v}" for k, v in sorted(_count(c["outcomes"]).items()))]]), "",
        "**What limits the numbers.** A dump is read whole: every pod is parsed and held in memory (most of the "
        "peak RSS), so time and memory grow with the dump's size, while the capacity model itself only works on "
        "the Ray cluster's candidate nodes. pytest's fixed cost is in the wall time too.",
    ])


def verify_section(v: Results | None, dump: Results) -> str:
    head = "## 6. Remediation verification at scale"
    if v is None:
        return f"{head}\n\nNot measured in this run."
    when = v.get("machine", {}).get("date")
    counted = ", ".join(f"{n} {status}" for status, n in sorted(_count(v["verifications"]).items()))
    return "\n".join([
        head, "",
        "**Method.** `benchmarks/verify_scale.py`: `pytest -m \"not network\" --cluster-dump=DUMP` on a broken copy "
        f"of the generated dump ({dump_name(dump)}): the Ray workers' memory limits at 64Gi (their nodes "
        "overcommitted), no `/dev/shm`, the worker group allowed to grow to 1,000, more than its GPU nodes hold. "
        "Each run is made with verification on (the default for a dump) and off "
        "(`RAYCHECK_VERIFY_REMEDIATIONS=0`), alternating, in fresh processes"
        + (f"; measured {when}" if when else "") + ".", "",
        table(["", "Wall time", "Peak RSS (largest run)"],
              [["verification off", spread(v["off"]["wall_s"]), f"{v['off']['peak_rss_mib']['max']:.0f} MiB"],
               ["verification on", spread(v["on"]["wall_s"]), f"{v['on']['peak_rss_mib']['max']:.0f} MiB"]]), "",
        f"Overhead of verification: **{v['overhead']:+.0%}** of the run's wall time (medians; "
        f"{v['overhead_fastest']:+.0%} between the fastest runs, the least disturbed by other load). Verifications: "
        f"{counted or 'none'} ({', '.join(f'`{k}` {s}' for k, s in sorted(v['verifications'].items()))}).", "",
        "**What limits the numbers.** Only failed checks are verified, each once per alternative of its "
        "remediation and once per step that changes something. The copy of the state is copy-on-write: the "
        "60,000 pods stay shared, only the objects a step touches are copied, and the dump's indexes are "
        "reused; a changed RayCluster's pods are made again as KubeRay makes them (here 199 workers, once per "
        "patch of the template). The checks decided again read the same few nodes as the run did.",
    ])


def properties_section(props: Results | None) -> str:
    head = "## 7. Hypothesis: the capacity properties"
    if not props:
        return f"{head}\n\nNot measured in this run."
    profiles = list(props)
    rows = [[f"`{name}`", f["runs"], spread(f["suite_wall_s"]), f"{f['test_cases']['median']:.0f}",
             secs(f["hypothesis_s"]["median"]), f"{f['examples_per_s']['median']:.0f}"] for name, f in props.items()]
    tests = sorted({t for f in props.values() for t in f["per_test_examples_per_s"]})
    per_test = [[f"`{t}`", *(f"{props[p]['per_test_examples_per_s'].get(t, 0):.0f}" for p in profiles)] for t in tests]
    slowest = min(tests, key=lambda t: props[profiles[-1]]["per_test_examples_per_s"].get(t, 0))
    why = " (each example is a whole run of rule steps, the invariant checked after each)" \
        if "Machine" in slowest else ""
    return "\n".join([
        head, "",
        "**Method.** `benchmarks/properties.py` runs `pytest suites/capacity/test_properties.py "
        "--hypothesis-show-statistics` in each profile: Hypothesis' own default (no `--hypothesis-profile`, `CI` "
        "unset: 100 examples, the example database replayed first), and the project's `fast` (25 examples) and "
        "`thorough` (2,000, not derandomised) from `suites/capacity/conftest.py`, chosen with "
        "`--hypothesis-profile=NAME`. Examples per second are the test cases Hypothesis ran (passing, failing "
        "and invalid) over the seconds its statistics report for all phases. `thorough` takes about a minute, so "
        "it runs `--slow-runs` times.", "",
        table(["Profile", "Runs", "Suite wall time", "Test cases", "Time in Hypothesis", "Examples/s"], rows), "",
        "Examples per second, per property (medians):", "",
        table(["Property", *(f"`{p}`" for p in profiles)], per_test), "",
        "**What limits the numbers.** With 25 or 100 examples the suite's time is mostly pytest's fixed cost and "
        "the first property of a run also pays Hypothesis' own warm-up, which lowers its rate in the short "
        "profiles; with 2,000 it "
        f"is the properties themselves, the slowest being `{slowest}`{why}. Invalid test cases (`assume()` "
        "rejections) count as work done.",
    ])


def missed_section(m: Results) -> str:
    """Each missed goal: what was found with the profiler and fixed, and why the rest stays."""
    lines = ["## Missed goals, and why", ""]
    dead = m.get("dead_target")
    silent = (dead or {}).get("cases", {}).get("silent", {})
    if silent.get("speedup") and silent["speedup"] < DEAD_GOAL:
        lines.append(
            f"* **Silent port, {DEAD_GOAL:g}×.** A port that accepts and never speaks can only be diagnosed by "
            f"waiting for `--probe-timeout` ({dead.get('default_probe_timeout_s', 3.0):g} s by default here); the "
            f"measured {silent['speedup']:.1f}× is that wait plus pytest's start (section 1 says how the default "
            "was chosen).")
    healthy = m.get("healthy")
    if healthy and "no_bytecode" in healthy["environments"]:
        lines.append(
            "* **Healthy run without a bytecode cache.** This row reproduces the deploy image as it was "
            "(bytecode removed, none written on a read-only filesystem): every start compiled pytest, "
            "Hypothesis and Ray. Found here, fixed in `deploy/Dockerfile`: the image now compiles its bytecode "
            "and pytest's rewritten modules at build time, and the CronJob's entrypoint neither collects the "
            "property tests nor loads Hypothesis' plugin, so the image starts like the cached row. (No container "
            "runtime on this machine: the image itself is not timed.)")
    plugins = m.get("plugin_overhead")
    if plugins and plugins["overhead_pct"] >= PLUGIN_GOAL_PCT:
        lines.append(
            f"* **Plugin overhead, {PLUGIN_GOAL_PCT:g} %.** Profiled with cProfile on this benchmark: it was +93 % "
            "(0.71 s): reading Ray's package metadata at every rendered remediation (0.48 s of the profile), "
            "scanning the environment for secret values at every redacted string (0.36 s), PyYAML's pure-Python "
            "loader for the catalog (50 ms) and importing urllib3 and dnspython in every run. All four are fixed "
            f"(cached, cached until the environment changes, libyaml, imported when used). What is left, "
            f"{plugins['per_test_ms']:.1f} ms a check with the fixed costs, is the plugins' job: a remediation "
            "rendered for each failure, the preconditions and verdict around each check, five report files. "
            "Against checks that take no time at all that cannot be 5 %; against real checks it is: on the "
            "healthy connectivity run (section 2) everything besides pytest's start and the probes, reports "
            "included, is within the noise of the by-difference row.")
    return "\n".join(lines) if len(lines) > 2 else ""


def render(results: Results) -> str:
    m = results["measurements"]
    summary_table = table(["Measurement", "raycheck (median)", "Baseline (median)", "Ratio", "Goal", "Result"],
                          summary_rows(m, results["dump"]))
    return "\n\n".join([
        "# Benchmarks",
        "raycheck measured against what users do today: a plain `ray.init(\"ray://...\")`, a bare handshake, "
        "listing the whole cluster with the official client. Written by `make bench` from "
        "`benchmarks/results.json`; do not edit by hand. Every figure is the median of several runs (the range "
        "and the count are given), ratios compare runs made in the same benchmark run, and nothing asserts a time: "
        "a missed goal is reported here.",
        "## How to reproduce\n\n"
        f"```sh\nmake bench                            # --runs 5, --slow-runs 1: {results['total_s'] / 60:.0f} min "
        "here\n"
        "make bench BENCH_ARGS=\"--runs 3\"       # fewer runs per median, a faster pass\n"
        "make bench BENCH_ARGS=\"--runs 9\"       # more runs per median\n"
        "make bench BENCH_ARGS=\"--slow-runs 3\"  # also repeat the half-minute baselines\n"
        ".venv/bin/python benchmarks/run.py --quick               # smoke pass, writes benchmarks/out/\n"
        ".venv/bin/python benchmarks/run.py --only healthy        # one measurement, writes benchmarks/out/\n"
        ".venv/bin/python benchmarks/run.py --only verify_scale --merge  # one measurement into this file\n"
        ".venv/bin/python benchmarks/run.py --render              # this file again from results.json\n```",
        machine_section(results),
        "## Summary\n\n" + summary_table,
        missed_section(m),
        dead_section(m.get("dead_target"), m),
        healthy_section(m.get("healthy")),
        plugin_section(m.get("plugin_overhead")),
        live_section(m.get("live_scale"), results["dump"]),
        capacity_section(m.get("capacity_scale"), results["dump"]),
        verify_section(m.get("verify_scale"), results["dump"]),
        properties_section((m.get("properties") or {}).get("profiles")),
    ]) + "\n"
