"""Generate a large cluster dump: N nodes, M pods, a RayCluster of R pods among them (JSON).

``.venv/bin/python benchmarks/gen_dump.py OUT_DIR [--nodes 2000] [--pods 60000] [--ray-pods 200]``
Writes ``nodes.json``, ``pods.json`` (a PodList, as ``kubectl get pods -A -o json`` does) and
``ray.json`` (the RayCluster, the device plugin, and the seed scenario's namespaces, Services,
EndpointSlice, client ServiceAccount and RBAC, so that the k8s and rbac checks have what a real
deployment has). Container statuses carry ``image`` and ``imageID``: the official ``kubernetes``
client refuses to deserialise a pod without them, and the scale benchmark lists pods with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raycheck.cluster.files import load_objects
from raycheck.harness.scenarios import SCENARIOS  # noqa: E402

GPU_NODES_EVERY = 20  # one node in 20 has 8 GPUs
GENERATED_KINDS = {"Node", "Pod", "RayCluster", "DaemonSet"}  # the seed's other objects are kept as they are


def node(i: int) -> dict:
    gpu = i % GPU_NODES_EVERY == 0
    labels = {"kubernetes.io/hostname": f"node-{i:04d}"}
    allocatable = {"cpu": "64", "memory": "256Gi", "pods": "110"}
    if gpu:
        labels.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8",
                       "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.replicas": "1"})
        allocatable["nvidia.com/gpu"] = "8"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i:04d}", "labels": labels},
            "spec": {}, "status": {"allocatable": allocatable, "capacity": allocatable}}


def pod(name: str, namespace: str, node_name: str, cpu: str, memory: str, labels: dict, gpu: int = 0) -> dict:
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    if gpu:
        resources["requests"]["nvidia.com/gpu"] = resources["limits"]["nvidia.com/gpu"] = str(gpu)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node_name, "containers": [{"name": "main", "image": "x", "resources": resources,
                                                            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}],
                     "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": True,
                                              "restartCount": 0, "lastState": {}}]}}


def generate(out: Path, node_count: int = 2000, pod_count: int = 60000, ray_pods: int = 200) -> Path:
    """Write the dump into ``out`` and return it."""
    out.mkdir(parents=True, exist_ok=True)
    nodes = [node(i) for i in range(node_count)]
    gpu_nodes = [n["metadata"]["name"] for n in nodes if "nvidia.com/gpu" in n["status"]["allocatable"]]
    workers = ray_pods - 1
    base = {"app.kubernetes.io/created-by": "kuberay-operator", "ray.io/cluster": "ray-gpu", "ray.io/is-ray-node": "yes"}
    pods = [pod("ray-gpu-head-abcde", "ray", gpu_nodes[0], "2", "16Gi",
                {**base, "ray.io/node-type": "head", "ray.io/group": "headgroup"})]
    for w in range(workers):
        pods.append(pod(f"ray-gpu-gpu-workers-worker-{w:05d}", "ray", gpu_nodes[(w // 4) % len(gpu_nodes)], "3", "24Gi",
                        {**base, "ray.io/node-type": "worker", "ray.io/group": "gpu-workers"}, gpu=1))
    for i in range(pod_count - ray_pods):
        pods.append(pod(f"app-{i:06d}", f"team-{i % 200:03d}", f"node-{i % node_count:04d}", "250m", "512Mi",
                        {"app": f"app-{i % 500}"}))
    raycluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "ray-gpu", "namespace": "ray"},
                  "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "h", "image": "x"}]}}},
                           "workerGroupSpecs": [{"groupName": "gpu-workers", "replicas": workers, "minReplicas": 1,
                                                 "maxReplicas": workers, "template": {"spec": {"containers": [{
                                                     "name": "w", "image": "x", "resources": {
                                                         "requests": {"cpu": "3", "memory": "24Gi", "nvidia.com/gpu": "1"},
                                                         "limits": {"cpu": "3", "memory": "24Gi", "nvidia.com/gpu": "1"}}}]}}}]},
                  "status": {"state": "ready"}}
    plugin = {"apiVersion": "apps/v1", "kind": "DaemonSet",
              "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
              "status": {"desiredNumberScheduled": len(gpu_nodes), "numberReady": len(gpu_nodes)}}
    seed_rest = [o for o in load_objects(SCENARIOS / "seed") if o["kind"] not in GENERATED_KINDS]
    (out / "nodes.json").write_text(json.dumps({"apiVersion": "v1", "kind": "NodeList", "items": nodes}))
    (out / "pods.json").write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": pods}))
    (out / "ray.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                              "items": [raycluster, plugin, *seed_rest]}))
    print(f"{out}: {len(nodes)} nodes ({len(gpu_nodes)} with GPUs), {len(pods)} pods ({ray_pods} Ray)", flush=True)
    return out


def cached(nodes: int, pods: int, ray_pods: int) -> Path:
    """The dump of this size under benchmarks/out/, generated again when missing or older than this file."""
    out = ROOT / "benchmarks" / "out" / f"dump-{nodes}x{pods}x{ray_pods}"
    pods_file = out / "pods.json"
    if not pods_file.exists() or pods_file.stat().st_mtime < Path(__file__).stat().st_mtime:
        generate(out, nodes, pods, ray_pods)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=60000)
    parser.add_argument("--ray-pods", type=int, default=200)
    args = parser.parse_args()
    generate(args.out, args.nodes, args.pods, args.ray_pods)


if __name__ == "__main__":
    main()
