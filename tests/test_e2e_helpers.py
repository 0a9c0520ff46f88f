"""The kind e2e's parts that run without a cluster: its table, its comparisons, its dump walk, its manifests.

The walk (tests/e2e/dump.py) runs here on the seed scenario, with a ``kubectl`` that answers ``get
<plural> (-n NS | -A) -o yaml`` from the scenario's files as kubectl prints them (a ``List``); the
no-RBAC column runs real raycheck against the strict API stand-in refusing everything with 403.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from raycheck.config import load_target_file
from tests.apiserver import Fault
from tests.e2e.dump import raycheck_offline, take_dump
from tests.e2e.expected import EXPECTED, SCENARIOS, row_key
from tests.e2e.manifests import checker_bindings, for_kind, kind_target
from tests.e2e.verdicts import disagreements, report_from_log, unexpected, unfixed_forbidden, verdicts
from tests.test_deploy import render

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "fixtures" / "scenarios" / "seed"
SHIPPED = ROOT / "deploy" / "cronjob" / "target.yaml"  # the seed's names, as the CronJob ships


def _on_this_host(shipped: Path) -> Path:
    """The shipped target without what only the image has (its client runtime, raycheck.ray_python)."""
    target = yaml.safe_load(shipped.read_text())
    target.get("raycheck", {}).pop("ray_python", None)
    written = Path(tempfile.mkdtemp(prefix="raycheck-target-")) / "target.yaml"
    written.write_text(yaml.safe_dump(target, sort_keys=False))
    return written


TARGET = _on_this_host(SHIPPED)

FAKE_KUBECTL = """#!{python}
import os, sys, yaml
from pathlib import Path
args = sys.argv[1:]
assert args[0] == "get" and args[-2:] == ["-o", "yaml"], args
plural = args[1].split(".")[0]
namespace = args[args.index("-n") + 1] if "-n" in args else None
def plural_of(kind):
    return kind.lower()[:-1] + "ies" if kind.endswith("y") else kind.lower() + "s"
items = [o for f in sorted(Path(os.environ["FAKE_CLUSTER"]).glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
         if d for o in d.get("items", [d]) if plural_of(o["kind"]) == plural and namespace in (None, o["metadata"].get("namespace"))]
print(yaml.safe_dump({{"apiVersion": "v1", "kind": "List", "metadata": {{"resourceVersion": ""}}, "items": items}}))
"""


def declared_checks() -> set[str]:
    """The check ids the suites declare, but the opt-in ``deep`` ones (the CronJob runs ``-m 'not deep'``)."""
    ids = set()
    for file in (ROOT / "suites").rglob("test_*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            marks = {ast.unparse(d.func if isinstance(d, ast.Call) else d): d for d in node.decorator_list}
            check = marks.get("pytest.mark.check")
            if isinstance(check, ast.Call) and "pytest.mark.deep" not in marks:
                ids.add(ast.literal_eval(check.args[0]))
    return ids


def report(*results: tuple[str, str, str | None], network: tuple[str, ...] = ()) -> dict[str, Any]:
    """A raycheck/v1 report of these (``id`` or ``id::test[case]``, outcome, cause)."""
    checks = []
    for key, outcome, cause in results:
        check_id, _, test = key.partition("::")
        checks.append({"id": check_id, "nodeid": f"suites/x.py::{test or 'test_' + check_id}", "outcome": outcome,
                       "cause": cause, "markers": ["network"] if check_id in network else [], "message": "",
                       "remediation": None})
    return {"schema": "raycheck/v1", "checks": checks}


def as_expected(scenario: str) -> list[tuple[str, str, str | None]]:
    """The table's column as results; ``rbac.client-sa``'s own row as two permission cases."""
    out = []
    for key, row in EXPECTED.items():
        verdict = getattr(row, scenario)
        keys = [f"{key}::test_client_sa_may[core/services/{v}]" for v in ("get", "list")] \
            if key == "rbac.client-sa" else [key]
        out += [(k, verdict.outcome, verdict.cause) for k in keys]
    return out


def test_every_check_the_cronjob_runs_has_a_row():
    declared = declared_checks()
    assert "gpu.worker-visible" not in declared and "port.client" in declared
    rows = {key.split("::")[0] for key in EXPECTED}
    assert rows == declared, ("add a row to tests/e2e/expected.py for", sorted(declared - rows),
                              "remove", sorted(rows - declared))


def test_the_table_is_met_by_its_own_column_and_departures_are_named():
    for scenario in SCENARIOS:
        assert unexpected(report(*as_expected(scenario)), scenario) == []
    results = [r for r in as_expected("broken") if r[0] not in ("oom.shm", "rbac.client-sa::test_client_sa_exists")]
    results = [("port.client", "failed", "refused") if r[0] == "port.client" else r for r in results]  # any cause
    results = [(k, "passed", None) if k.startswith("rbac.client-sa::test_client_sa_may[") else (k, o, c)
               for k, o, c in results]
    results += [("new.check", "passed", None), ("rbac.client-sa::test_client_sa_exists[x]", "failed", "forbidden")]
    assert unexpected(report(*results), "broken") == [
        "new.check test_new.check: no row in tests/e2e/expected.py",
        "rbac.client-sa test_client_sa_exists[x]: failed (forbidden), expected passed (any cause)",
        "rbac.client-sa test_client_sa_may[core/services/get]: passed (None), expected failed (missing)",
        "rbac.client-sa test_client_sa_may[core/services/list]: passed (None), expected failed (missing)",
        "oom.shm: expected passed, not in the report",
    ]


def test_disagreements_compare_offline_checks_by_outcome_and_cause():
    live = report(("dns.head-service", "passed", None), ("k8s.head-service", "failed", "missing"),
                  ("oom.shm", "passed", None), ("rbac.client-sa::test_a[x]", "passed", None),
                  ("rbac.client-sa::test_b", "passed", None), network=("dns.head-service",))
    dump = report(("k8s.head-service", "failed", "no-endpoints"), ("rbac.client-sa::test_a[x]", "passed", None),
                  ("rbac.client-sa::test_b", "skipped", None))
    assert disagreements(live, dump) == [
        "k8s.head-service test_k8s.head-service: live failed (missing), dump failed (no-endpoints)",
        "oom.shm test_oom.shm: live passed (None), dump absent",
        "rbac.client-sa test_b: live passed (None), dump skipped (None)"]
    assert disagreements(live, live) == []


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str], Path]:
    """The dump walk on the seed scenario: the final report, the commands run, the dump folder."""
    work = tmp_path_factory.mktemp("walk")
    kubectl = work / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(0o755)
    env = {"PATH": f"{kubectl.parent}:/usr/bin:/bin", "FAKE_CLUSTER": str(SEED)}
    final, ran = take_dump(work / "dump", TARGET, env, work / "reports")
    return final, ran, work / "dump"


def test_the_walk_runs_raycheck_commands_until_nothing_lacks_evidence(walk):
    final, ran, dump = walk
    assert ran[0] == f"kubectl get nodes -o yaml > {dump}/nodes.yaml"
    assert all(re.fullmatch(rf"(mkdir -p {dump}/[a-z-]+ && )?kubectl get [a-z.]+ (-n [a-z-]+ |-A )?-o yaml > "
                            rf"{dump}/([a-z-]+/)?[a-z]+\.yaml", c) for c in ran), ran
    assert f"mkdir -p {dump}/ray && kubectl get rayclusters.ray.io -n ray -o yaml > {dump}/ray/rayclusters.yaml" in ran
    assert not [c for c in final["checks"] if "not evidence" in c["message"]]
    assert {c["id"] for c in final["checks"] if c["outcome"] != "skipped"} >= {"k8s.raycluster-ready", "rbac.client-sa",
                                                                              "oom.requests-fit", "gpu.device-plugin"}


def test_the_walked_dump_gives_the_verdicts_of_the_whole_scenario(walk, tmp_path):
    whole = raycheck_offline(TARGET, f"--cluster-dump={SEED}", tmp_path)
    assert disagreements(whole, walk[0]) == []


def test_without_the_checkers_rbac_every_offline_check_reports_its_403(api_server, seed_state, tmp_path):
    server = api_server(seed_state)
    server.faults["*"] = Fault(status=403, message='pods is forbidden: User "system:serviceaccount:swe-ai-fleet:'
                                                   'raycheck" cannot list resource "pods" in API group ""')
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
    live = raycheck_offline(TARGET, f"--kubeconfig={kubeconfig}", tmp_path / "reports")
    seen = verdicts(live)
    assert {k[0] for k in seen} >= {"k8s.raycluster-ready", "rbac.client-sa", "oom.shm", "capacity.manifests-fit"}
    assert [(k, got) for k, got in seen.items() if not EXPECTED[row_key(*k) or k[0]].no_rbac.admits(got)] == []
    assert unfixed_forbidden(live, "swe-ai-fleet:raycheck") == []
    assert unfixed_forbidden(live, "ray:someone-else")  # the assertion can fail


def test_the_cronjob_as_applied_in_kind_is_the_shipped_one_with_the_e2e_image_and_target(tmp_path):
    rendered = render("deploy/cronjob")
    target = kind_target(yaml.safe_load(SHIPPED.read_text()))
    target["raycheck"].pop("ray_python")  # the image's path: checked below on this host
    applied = for_kind(rendered, "raycheck:e2e", target)
    changed = [(a["kind"], a["metadata"]["name"]) for a, r in zip(applied, rendered) if a != r]
    assert changed == [("ConfigMap", next(o for o in rendered if o["kind"] == "ConfigMap")["metadata"]["name"]),
                       ("CronJob", "raycheck")]
    pod = next(o for o in applied if o["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["raycheck:e2e"]
    written = tmp_path / "target.yaml"
    written.write_text(next(o for o in applied if o["kind"] == "ConfigMap")["data"]["target.yaml"])
    parsed, _ = load_target_file(str(written))  # a target raycheck accepts, with the kind cluster's size
    assert (parsed.expect_gpus, parsed.expect_workers, parsed.dns_search_lookups) == (1, 1, 4)
    assert parsed.service_account == "workspace-runner-sa" and parsed.client_namespace == "swe-ai-fleet"
    bindings = checker_bindings(rendered)
    assert sorted((b["kind"], b["metadata"]["name"]) for b in bindings) == [
        ("ClusterRoleBinding", "raycheck-cluster-read"), ("RoleBinding", "raycheck-client-read"),
        ("RoleBinding", "raycheck-ray-read")]


def test_the_report_is_the_last_json_line_of_a_log():
    first, last = '{"schema":"raycheck/v1","checks":[1]}', '{"schema":"raycheck/v1","checks":[]}'
    assert report_from_log(f"{first}\ncollected 3 items\n{last}\n") == {"schema": "raycheck/v1", "checks": []}
    with pytest.raises(AssertionError, match="no raycheck/v1 JSON line"):
        report_from_log("ImagePullBackOff\n")
