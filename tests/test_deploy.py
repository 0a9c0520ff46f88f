"""Where users run raycheck: the kustomize base and overlay, the checker's RBAC, the image's pins,
the entrypoint against a real head, Prometheus output and the Pushgateway push, the HTML report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from raycheck.cluster.kinds import KINDS
from raycheck.config import load_target_file
from raycheck.model.rbac import Access, RbacEvaluator, ServiceAccountSubject
from tests.test_connectivity_suite import CONNECTIVITY

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = Path(sys.executable).with_name("kubectl")
CHECKER = ServiceAccountSubject("swe-ai-fleet", "raycheck")
READ_VERBS = {"get", "list", "watch"}
REVIEWS = {"subjectaccessreviews", "selfsubjectaccessreviews"}
# what the live source lists: (kind, namespace or None for all namespaces / cluster scope)
READS = [("Pod", None), ("Service", "ray"), ("Event", "ray"), ("EndpointSlice", "ray"), ("NetworkPolicy", "ray"),
         ("RayCluster", "ray"), ("Namespace", None), ("Node", None), ("DaemonSet", None), ("Role", None),
         ("RoleBinding", None), ("ClusterRole", None), ("ClusterRoleBinding", None),
         ("ServiceAccount", "swe-ai-fleet"), ("NetworkPolicy", "swe-ai-fleet")]


def render(folder: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / folder)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render("deploy/cronjob")


def of(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def test_base_renders_a_locked_down_cronjob(base, tmp_path):
    assert {o["kind"] for o in base} == {"ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                         "ClusterRoleBinding", "ConfigMap", "CronJob"}
    cron = of(base, "CronJob")[0]
    assert cron["metadata"]["namespace"] == "swe-ai-fleet"
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["successfulJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] > 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "raycheck"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["image"] == "raycheck:2.49.2"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/etc/raycheck", "/reports", "/tmp"}
    config = of(base, "ConfigMap")[0]
    assert any(v.get("configMap", {}).get("name") == config["metadata"]["name"] for v in pod["volumes"])
    target = tmp_path / "target.yaml"
    target.write_text(config["data"]["target.yaml"])
    assert load_target_file(target)[0].client_namespace == "swe-ai-fleet"


def test_deep_overlay_only_adds_the_deep_selection():
    cron = of(render("deploy/cronjob-deep-gpu"), "CronJob")[0]
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["-m", "deep or not deep"]
    assert {"name": "RAYCHECK_PUSH_JOB", "value": "raycheck-deep-gpu"} in container["env"]


def test_applying_both_overlays_leaves_two_cronjobs(base):
    """kubectl apply -k of both: no object of one has the other's name, so neither replaces the other."""
    deep = render("deploy/cronjob-deep-gpu")
    key = lambda o: (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])  # noqa: E731
    assert not {key(o) for o in base} & {key(o) for o in deep}
    crons = {o["metadata"]["name"]: o["spec"]["schedule"] for o in of(base + deep, "CronJob")}
    assert crons == {"raycheck": "*/15 * * * *", "raycheck-deep-gpu": "17 3 * * *"}
    pod = of(deep, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    names = {o["metadata"]["name"] for o in deep}
    assert pod["serviceAccountName"] in names  # its own ServiceAccount, RBAC and target ConfigMap
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} <= names


def checker_rules(objects):
    for role in of(objects, "Role") + of(objects, "ClusterRole"):
        for rule in role.get("rules") or []:
            yield role["metadata"]["name"], rule


@pytest.mark.parametrize("folder", ["deploy/cronjob", "deploy/cronjob-deep-gpu"])
def test_checker_rbac_is_read_only_but_for_access_reviews(folder):
    for name, rule in checker_rules(render(folder)):
        values = [*rule.get("apiGroups", []), *rule.get("resources", []), *rule.get("verbs", [])]
        assert "*" not in values, f"{name}: wildcard in {rule}"
        assert "secrets" not in rule.get("resources", []), f"{name}: secrets in {rule}"
        writes = set(rule["verbs"]) - READ_VERBS
        if writes:
            assert writes == {"create"} and set(rule["resources"]) <= REVIEWS, f"{name}: write verbs in {rule}"


def test_checker_rbac_covers_what_raycheck_reads(base):
    rbac = RbacEvaluator(base)
    for kind, namespace in READS:
        k = KINDS[kind]
        decision = rbac.decide(CHECKER, Access("list", k.group, k.plural, namespace))
        assert decision.allowed, f"the checker may not list {k.plural} in {namespace or 'all namespaces'}"
    assert rbac.decide(CHECKER, Access("create", "authorization.k8s.io", "subjectaccessreviews", None)).allowed
    assert not rbac.decide(CHECKER, Access("get", "", "secrets", "ray")).allowed


def test_image_ray_version_equals_the_projects_pin():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    image_default = re.search(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M).group(1)
    lock = re.search(r"^ray==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    project = re.search(r'"ray\[[^\]]*\]==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert image_default == lock == project == "2.49.2"
    assert "USER 10001" in dockerfile and dockerfile.count("FROM ") == 2


def test_gate_hooks_run_the_gate_selection():
    for name in ("argocd-presync-job.yaml", "helm-hook-job.yaml"):
        text = (ROOT / "deploy" / "gate" / name).read_text()
        plain = "\n".join(line for line in text.splitlines() if "{{" not in line)  # Helm template lines
        job = next(d for d in yaml.safe_load_all(plain) if d and d["kind"] == "Job")
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["-m", "gate"] and "--with-manifests=/manifests" in args and "--fail-on=critical" in args
    assert "PreSync" in (ROOT / "deploy" / "gate" / "argocd-presync-job.yaml").read_text()
    assert "pre-install,pre-upgrade" in (ROOT / "deploy" / "gate" / "helm-hook-job.yaml").read_text()


def test_prometheus_rule_has_an_absence_alert_per_cronjob():
    rule = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheusrule.yaml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "raycheck_check_passed" in alerts["RaycheckCriticalCheckFailing"]
    assert 'raycheck_last_run_timestamp_seconds{job="raycheck"}' in alerts["RaycheckNotRunning"]
    assert 'raycheck_last_run_timestamp_seconds{job="raycheck-deep-gpu"}' in alerts["RaycheckDeepGpuNotRunning"]


# ----------------------------------------------------------------------------- the entrypoint, for real


def test_entrypoint_against_a_real_head_writes_every_report(healthy_target, seed_objects, serve_dns, tmp_path):
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump(healthy_target))
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYCHECK_") and k != "CI"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", HOME=str(tmp_path),
               RAYCHECK_TARGET=str(target), RAYCHECK_REPORT_DIR=str(reports))
    dns = serve_dns(seed_objects)
    out = subprocess.run([str(ROOT / "deploy" / "entrypoint.sh"), "-m", "connectivity", f"--dns-server={dns.address}",
                          "--handshake-timeout=60"],
                         capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert {p.name for p in reports.iterdir()} == {"raycheck.json", "raycheck.md", "raycheck.html", "junit.xml",
                                                  "raycheck.prom"}
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"schema":"raycheck/v1"')]
    assert len(lines) == 1 and lines[0]["summary"]["passed"] == len(CONNECTIVITY)
    families = {f.name: f for f in text_string_to_metric_families((reports / "raycheck.prom").read_text())}
    passed = [s for s in families["raycheck_check_passed"].samples]
    assert len(passed) == len(CONNECTIVITY) and all(s.value == 1 for s in passed)
    assert {"raycheck_check_duration_seconds", "raycheck_last_run_timestamp_seconds", "raycheck_checks",
            "raycheck_run_exit_status"} <= set(families)


class _Pushgateway:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.bodies.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_metrics_are_pushed_and_a_dead_pushgateway_only_warns(run_suite, seed_state, write_dump):
    from tests.test_k8s_suite import TARGET
    from tests.support import refused_port

    gateway = _Pushgateway()
    try:
        run = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(seed_state)}",
                        f"--pushgateway={gateway.url}")
        deep = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(seed_state)}",
                         f"--pushgateway={gateway.url}", env={"RAYCHECK_PUSH_JOB": "raycheck-deep-gpu"})
    finally:
        gateway.close()
    assert run.status == 0 and deep.status == 0
    assert gateway.bodies[1][0] == "/metrics/job/raycheck-deep-gpu/instance/ray-gpu"  # the deep CronJob's own job
    path, body = gateway.bodies[0]
    assert path == "/metrics/job/raycheck/instance/ray-gpu"
    assert 'raycheck_check_passed{id="k8s.head-service"' in body.decode()
    dead = run_suite(TARGET, "-m", "k8s", f"--cluster-dump={write_dump(seed_state)}",
                     f"--pushgateway=http://127.0.0.1:{refused_port()}")
    assert dead.status == 0 and "WARNING: cannot push to Pushgateway" in dead.output


def test_html_report_is_self_contained_and_folds_blocked_checks(run_suite, healthy_target):
    import copy
    target = copy.deepcopy(healthy_target)
    target["ray"]["address"] = "ray://127.0.0.1:1"
    run = run_suite(target, "-m", "connectivity")
    page = (run.report_dir / "raycheck.html").read_text()
    assert "<script" not in page and "<link" not in page and " src=" not in page
    assert all(u.startswith("https://") for u in re.findall(r'href="([^"]+)"', page))
    assert "What to fix" in page and "port.client" in page
    assert "blocked by this one" in page and "ray.client-handshake" in page
    assert "kubectl get pods -n ray -l ray.io/cluster=ray-gpu,ray.io/node-type=head -o wide" in page
