"""The deep GPU probe against real NVIDIA cards: run by hand on a GPU machine (CI has none).

``python tests/real_gpu.py`` starts a real Ray head on this machine (no dashboard), twice, and runs
``gpu.worker-visible``'s probe and judgement through Ray Client, as the suite does:

* ``healthy``: num-gpus = the cards nvidia-smi lists; must pass, one distinct UUID per Ray GPU;
* ``phantom``: one Ray GPU more than there are cards (a rayStartParams num-gpus above the
  container's limit); must fail with cause ``phantom-by-hand`` (no cluster state: which group is not known).

Prints one JSON line per case and exits 1 if either is judged wrongly. The test head in ``tests/``
stands in a scripted ``nvidia-smi`` for the cards; this is where the real one answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raycheck.checks.gpu import worker_visible  # noqa: E402 (after the path is set)
from raycheck.probes import ray_client, tcp  # noqa: E402
from raycheck.harness.sandbox import HEAD_ENV  # noqa: E402 (the same head environment as the tests' head)

CLIENT_PORT = 10001
RAY_CLI = "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"


def cards() -> list[str]:
    """The UUIDs of the cards this machine's driver lists."""
    out = subprocess.run(["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


def start_head(num_gpus: int) -> subprocess.Popen[bytes]:
    """``ray start --head --block`` in its own process group; returns once the client port speaks gRPC."""
    temp = tempfile.mkdtemp(prefix="rg-", dir="/tmp")
    proc = subprocess.Popen(
        [sys.executable, "-c", RAY_CLI, "start", "--head", "--block", "--disable-usage-stats",
         "--node-ip-address", "127.0.0.1", "--port", "6379", "--ray-client-server-port", str(CLIENT_PORT),
         "--include-dashboard", "false", "--num-cpus", "4", "--num-gpus", str(num_gpus), "--temp-dir", temp],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **HEAD_ENV}, start_new_session=True)
    deadline = time.monotonic() + 120
    while not tcp.grpc_greeting("127.0.0.1", CLIENT_PORT, 1.0).ok:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_head(proc)
            raise SystemExit(f"the Ray head did not come up (status {proc.poll()}); logs in {temp}")
        time.sleep(0.5)
    return proc


def stop_head(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def run_case(name: str, num_gpus: int, physical: list[str]) -> dict[str, object]:
    head = start_head(num_gpus)
    try:
        started = time.monotonic()
        observation = ray_client.handshake(f"ray://127.0.0.1:{CLIENT_PORT}", 180.0, gpu_tasks=num_gpus)
        verdict = worker_visible(observation, num_gpus)
        return {"case": name, "cards": len(physical), "ray_gpus": num_gpus, "ok": verdict.ok, "cause": verdict.cause,
                "message": verdict.message, "probe_s": round(time.monotonic() - started, 2),
                "tasks": observation.data.get("gpu_tasks") or observation.message}
    finally:
        stop_head(head)


def main() -> int:
    physical = cards()
    print(json.dumps({"nvidia_smi_uuids": physical}), flush=True)
    healthy = run_case("healthy", len(physical), physical)
    print(json.dumps(healthy), flush=True)
    phantom = run_case("phantom", len(physical) + 1, physical)
    print(json.dumps(phantom), flush=True)
    right = healthy["ok"] is True and f"{len(physical)} distinct GPU UUIDs" in str(healthy["message"]) \
        and phantom["ok"] is False and phantom["cause"] == "phantom-by-hand"
    print("real GPU check:", "as expected" if right else "WRONG", flush=True)
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
