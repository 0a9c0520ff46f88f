"""Child process of the handshake probe: ``ray.init`` once, print one JSON line, exit.

Run from its path by ``ray_client.handshake`` (``runpy``; it imports nothing of raycheck) in the
client runtime that matches the cluster: any Ray from 2.9 on, any Python from 3.9 on, so nothing
here may need a newer Python. Its parent owns the deadline and kills this process group when it
passes.

Arguments: the ``ray://`` address, the number of GPU tasks, their timeout, and (with TLS) the
host name the head's certificate must name when the address is an IP the parent resolved.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from typing import Any

# Ray's client logs each failed ping at debug level, then retries for ~30 s and raises a
# ConnectionError that reads like a network failure. A head that refuses the token answers the
# first ping with UNAUTHENTICATED ("Invalid or missing authentication token"): reported at once.
_PING_FAILED = "Received when checking init:"
_AUTH_WORDS = ("authentication", "unauthenticated")


class _AuthRefusal(logging.Handler):
    """Ends the child with the head's refusal the first time Ray's client logs one."""

    def __init__(self, result: dict[str, Any], start: float) -> None:
        super().__init__(logging.DEBUG)
        self.result = result
        self.start = start

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if _PING_FAILED in text and any(word in text.lower() for word in _AUTH_WORDS):
            self.result.update(ok=False, error_type="Unauthenticated", error=text.split(_PING_FAILED, 1)[1].strip(),
                               elapsed_s=round(time.monotonic() - self.start, 3))
            print(json.dumps(self.result), flush=True)
            os._exit(0)  # noqa: SLF001 (the parent's deadline would otherwise wait out Ray's retries)


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


def _verify_as(name: str) -> None:
    """With TLS, make gRPC check the head's certificate against the agents' host name while it
    dials the address the parent resolved (Ray's client passes its module's GRPC_OPTIONS)."""
    try:
        from ray.util.client import worker
    except ImportError:
        return
    options = getattr(worker, "GRPC_OPTIONS", None)
    if options is not None:
        worker.GRPC_OPTIONS = [*options, ("grpc.ssl_target_name_override", name)]


def main(address: str, gpu_task_count: int = 0, task_timeout: float = 60.0, tls_name: str = "") -> dict[str, Any]:
    """``task_timeout``: how long this child may take in all, connecting and running the tasks."""
    start = time.monotonic()
    result: dict[str, Any] = {"local_python_version": platform.python_version(), "local_python": sys.executable}
    try:
        import ray
    except ImportError as exc:
        return {**result, "ok": False, "error_type": "ImportError", "error": f"ray is not installed here: {exc}"}
    result["local_ray_version"] = ray.__version__
    if tls_name:
        _verify_as(tls_name)
    client_log = logging.getLogger("ray.util.client.worker")
    client_log.setLevel(logging.DEBUG)
    client_log.addHandler(_AuthRefusal(result, start))
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
            # what the connection left of the budget (at least a second): a slow ray.init on a loaded
            # head must not push the tasks' wait past the parent's deadline
            wait = max(1.0, task_timeout - (time.monotonic() - start))
            try:
                result["gpu_tasks"] = gpu_tasks(ray, gpu_task_count, wait)
            except Exception as exc:  # connected, but the tasks failed: that is the finding
                result["gpu_error"] = f"{type(exc).__name__} after {wait:.0f} s: {str(exc)[:300]}"
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
    address, tasks, timeout, name = sys.argv[1:] + ["", "0", "60", ""][len(sys.argv) - 1:]
    print(json.dumps(main(address, int(tasks), float(timeout), name)), flush=True)
