"""End to end in a real cluster: kind + the KubeRay operator + a CPU RayCluster, raycheck in-cluster.

Marker ``e2e``; skipped, with the reason, where ``kind``, ``helm`` or a container runtime is
missing (``make test`` on a machine without them). The kind workflow runs it. The work is done here
in Python rather than in workflow shell: create the cluster (pytest-kubernetes' ``k8s`` fixture,
kind provider, pinned ``--k8s-version``), install KubeRay with Helm (pinned chart), create the
seed's namespaces, client ServiceAccount, RBAC and alias, a CPU-only RayCluster ``ray-gpu`` whose
workers declare logical GPUs, build and load the image, run the CronJob as a Job from
``swe-ai-fleet``, read its JSON line; then delete the binding and expect ``rbac.client-sa`` to fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "e2e"
KUBERAY_CHART = "1.4.2"
IMAGE = "raycheck:e2e"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("kind") and shutil.which("helm") and shutil.which("docker")),
                       reason="needs kind, helm and a container runtime (the e2e-kind workflow has them)"),
]

RAYCLUSTER = {
    "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "ray-gpu", "namespace": "ray"},
    "spec": {
        "rayVersion": "2.49.2",
        "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                          "template": {"spec": {"containers": [{
                              "name": "ray-head", "image": "rayproject/ray:2.49.2-py311",
                              "resources": {"requests": {"cpu": "250m", "memory": "1Gi"},
                                            "limits": {"cpu": "1", "memory": "2Gi"}},
                              "ports": [{"name": "gcs-server", "containerPort": 6379},
                                        {"name": "dashboard", "containerPort": 8265},
                                        {"name": "client", "containerPort": 10001}]}]}}},
        "workerGroupSpecs": [{"groupName": "gpu-workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                              "rayStartParams": {"num-gpus": "1"},
                              "template": {"spec": {"containers": [{
                                  "name": "ray-worker", "image": "rayproject/ray:2.49.2-py311",
                                  "resources": {"requests": {"cpu": "250m", "memory": "1Gi"},
                                                "limits": {"cpu": "1", "memory": "2Gi"}}}]}}}],
    },
}


def run(*command: str, timeout: int = 600) -> str:
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(command)}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def raycheck_job(k8s, name: str) -> dict:
    """Run the CronJob once as a Job, wait for it, and return the JSON report from its log."""
    k8s.kubectl(["create", "job", "--from=cronjob/raycheck", name, "-n", "swe-ai-fleet"], as_dict=False)
    k8s.wait(f"job/{name}", "jsonpath={.status.conditions[0].status}=True", timeout=300, namespace="swe-ai-fleet")
    log = k8s.kubectl(["logs", f"job/{name}", "-n", "swe-ai-fleet"], as_dict=False)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.log").write_text(log)
    line = next(line for line in log.splitlines() if line.startswith('{"schema":"raycheck/v1"'))
    (REPORTS / f"{name}.json").write_text(line)
    return json.loads(line)


@pytest.mark.k8s(provider="kind", cluster_name="raycheck-e2e")
def test_raycheck_in_cluster_with_kuberay(k8s, tmp_path):
    k8s.create()
    kubeconfig = str(k8s.kubeconfig)
    run("helm", "repo", "add", "kuberay", "https://ray-project.github.io/kuberay-helm/")
    run("helm", "install", "kuberay-operator", "kuberay/kuberay-operator", "--version", KUBERAY_CHART,
        "--namespace", "kuberay-system", "--create-namespace", "--wait", "--kubeconfig", kubeconfig)
    seed = [o for o in yaml.safe_load_all((ROOT / "fixtures/scenarios/seed/services.yaml").read_text()) if o][0]
    alias = next(s for s in seed["items"] if s["metadata"]["name"] == "internal-ray-dashboard")
    rbac = yaml.safe_load((ROOT / "fixtures/scenarios/seed/rbac.yaml").read_text())["items"]
    for namespace in ("ray", "swe-ai-fleet"):
        k8s.kubectl(["create", "namespace", namespace], as_dict=False)
    for obj in [alias, *rbac, RAYCLUSTER]:
        path = tmp_path / f"{obj['kind']}-{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        k8s.apply(path)
    k8s.wait("raycluster/ray-gpu", "jsonpath={.status.state}=ready", timeout=600, namespace="ray")
    run("docker", "build", "-f", "deploy/Dockerfile", "-t", IMAGE, ".", timeout=1800)
    k8s.load_image(IMAGE)
    rendered = run(str(ROOT / ".venv/bin/kubectl"), "kustomize", "deploy/cronjob")
    manifest = tmp_path / "cronjob.yaml"
    manifest.write_text(rendered.replace("image: raycheck:2.49.2", f"image: {IMAGE}"))
    k8s.apply(manifest)

    report = raycheck_job(k8s, "raycheck-healthy")
    outcomes = {}
    for check in report["checks"]:
        outcomes.setdefault(check["id"], set()).add(check["outcome"])
    for check_id in ("dns.head-service", "dns.client-srv", "port.client", "ray.version-match",
                     "ray.client-handshake", "k8s.raycluster-ready", "k8s.head-service", "rbac.client-sa"):
        assert outcomes[check_id] == {"passed"}, (check_id, outcomes)

    k8s.kubectl(["delete", "clusterrolebinding", "swe-ai-fleet-ray-access"], as_dict=False)
    report = raycheck_job(k8s, "raycheck-no-binding")
    failed = [c for c in report["checks"] if c["id"] == "rbac.client-sa" and c["outcome"] == "failed"]
    assert len(failed) == 10 and all("kind: RoleBinding" in c["remediation"]["steps"][0]["command"] for c in failed)
