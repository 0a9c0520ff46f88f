"""Child process of the handshake probe: ``ray.init`` once, print one JSON line, exit.

Run from its path by ``ray_client.handshake`` (``runpy``; it imports nothing of raycheck); its
parent owns the deadline and kills this process group when it passes.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from typing import Any


def gpu_tasks(ray: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    """One ``num_gpus=1`` task per GPU, spread over the nodes: what each one really got."""

    @ray.remote(num_gpus=1, num_cpus=0)
    def where() -> dict[str, Any]:
        import os
        import socket
        import subprocess

        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            uuids = smi.stdout.split() if smi.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            uuids = None
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "cuda_visible_devices": os.environ.get(
                    "CUDA_VISIBLE_DEVICES"), "uuids": uuids}

    refs = [where.options(scheduling_strategy="SPREAD").remote() for _ in range(count)]
    return ray.get(refs, timeout=timeout)


def main(address: str, gpu_task_count: int = 0, task_timeout: float = 60.0) -> dict[str, Any]:
    start = time.monotonic()
    result: dict[str, Any] = {"local_python_version": platform.python_version()}
    try:
        import ray
    except ImportError as exc:
        return {**result, "ok": False, "error_type": "ImportError", "error": f"ray is not installed here: {exc}"}
    result["local_ray_version"] = ray.__version__
    try:
        context = ray.init(address, logging_level=logging.ERROR)
        result.update(
            ok=True,
            ray_version=context.ray_version,
            python_version=context.python_version,
            resources=ray.cluster_resources(),
            available=ray.available_resources(),
            nodes=sum(1 for node in ray.nodes() if node.get("Alive")),
        )
        if gpu_task_count:
            try:
                result["gpu_tasks"] = gpu_tasks(ray, gpu_task_count, task_timeout)
            except Exception as exc:  # connected, but the tasks failed: that is the finding
                result["gpu_error"] = f"{type(exc).__name__} after {task_timeout:g} s: {str(exc)[:300]}"
    except Exception as exc:  # every failure becomes data for the parent
        text = str(exc)  # a head's traceback ends with its reason: keep both ends of a long one
        result.update(ok=False, error_type=type(exc).__name__,
                      error=text if len(text) <= 4000 else f"{text[:1000]}\n...\n{text[-3000:]}")
    finally:
        try:
            ray.shutdown()
        except Exception:  # noqa: S110 (the parent's deadline covers a stuck shutdown)
            pass
    result["elapsed_s"] = round(time.monotonic() - start, 3)
    return result


if __name__ == "__main__":
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(json.dumps(main(sys.argv[1], tasks, float(sys.argv[3]) if len(sys.argv) > 3 else 60.0)), flush=True)
