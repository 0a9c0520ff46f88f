"""Child process of the handshake probe: ``ray.init`` once, print one JSON line, exit.

Run as ``python -m raycheck.probes.ray_handshake_child ray://host:port``; its parent owns the
deadline and kills this process group when it passes.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from typing import Any


def main(address: str) -> dict[str, Any]:
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
    except Exception as exc:  # every failure becomes data for the parent
        result.update(ok=False, error_type=type(exc).__name__, error=str(exc)[:4000])
    finally:
        try:
            ray.shutdown()
        except Exception:  # noqa: S110 (the parent's deadline covers a stuck shutdown)
            pass
    result["elapsed_s"] = round(time.monotonic() - start, 3)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
