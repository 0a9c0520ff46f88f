"""The Ray Client handshake, run in a child process with a hard deadline.

``ray.init("ray://...")`` cannot be told to give up sooner than about 30 s, and after
connecting some calls wait without any deadline (FACTS.md). So the handshake runs in its own
process group, after a TCP/gRPC pre-check, and the whole group is killed on the deadline:
nothing is left behind and the suite never stalls.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from raycheck.observation import Observation, ms

# Run from its path, not with -m: importing the raycheck.probes package first (config, YAML,
# dnspython) would add 0.1-0.2 s to every handshake. Not as `python script.py` either: that puts
# the script's folder first on sys.path, where probes/http.py would shadow the standard library's
# http for Ray (and -P, which prevents it, needs Python 3.11; images may be built on the cluster's 3.10).
CHILD_SCRIPT = Path(__file__).with_name("ray_handshake_child.py")
_RUN_CHILD = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
_MISMATCH = re.compile(
    r"cluster was started with:\s*Ray: (?P<cluster_ray>\S+)\s*Python: (?P<cluster_python>\S+)"
    r".*?started with:\s*Ray: (?P<local_ray>\S+)\s*Python: (?P<local_python>\S+)",
    re.S,
)
# What ``ray.init`` raises when the head's proxier took the connection but could not start (or
# reach) the per-client server; the head's own traceback follows it in the message.
_SERVER_FAILURE = "Initialization failure from server"
# The head refused the token (the child saw UNAUTHENTICATED), or Ray's client, told to use token
# authentication, found none: not a network failure, whatever ray.init would have raised later.
_AUTH_REFUSALS = ("Unauthenticated", "AuthenticationError")


def parse_version_mismatch(text: str) -> dict[str, str] | None:
    """The four versions in Ray's ``Version mismatch`` error, or None if it is not one."""
    match = _MISMATCH.search(text)
    return match.groupdict() if match else None


def handshake(address: str, deadline: float, gpu_tasks: int = 0, python: str | None = None,
              env: dict[str, str] | None = None, tls_name: str = "") -> Observation:
    """Run ``ray.init(address)`` in a child process; kill its whole group at ``deadline`` seconds.

    ``python``: the client runtime's interpreter (default raycheck's own); ``env``: added to the
    child's environment (the auth token: never on its command line); ``tls_name``: with TLS, the
    name the head's certificate must carry when ``address`` is an IP. With ``gpu_tasks``, the
    child also runs that many ``num_gpus=1`` tasks (the deep GPU probe)."""
    start = time.monotonic()
    child_env = {**os.environ, **(env or {})}
    child_env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    proc = subprocess.Popen(
        [python or sys.executable, "-c", _RUN_CHILD, str(CHILD_SCRIPT), address, str(gpu_tasks),
         str(max(1.0, deadline - 5)), tls_name],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_env, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        elapsed = time.monotonic() - start
        return Observation(False, f"ray.init({address!r}) did not complete within its {deadline:g} s deadline "
                           "(child process group killed)", cause="deadline", elapsed_s=elapsed)
    finally:
        _kill_group(proc)  # ray.init may leave helpers in the group even after a clean exit
    elapsed = time.monotonic() - start
    result = _last_json_line(out)
    if result is None:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Observation(False, f"the handshake process exited with status {proc.returncode} after "
                           f"{ms(elapsed)}: {tail[0][:300]}", cause="crashed", elapsed_s=elapsed)
    return interpret(address, result, elapsed)


def interpret(address: str, result: dict[str, Any], elapsed: float) -> Observation:
    """Turn the child's JSON into an observation with figures the catalog can quote."""
    figures = {k: str(result[k]) for k in ("local_ray_version", "local_python_version") if k in result}
    if result.get("ok"):
        resources = result.get("resources") or {}
        figures.update(cluster_ray_version=str(result.get("ray_version")),
                       cluster_python_version=str(result.get("python_version")))
        summary = ", ".join(f"{k} {_num(k, v)}" for k, v in sorted(resources.items())
                            if k in ("CPU", "GPU", "memory", "object_store_memory") or k.startswith("accelerator"))
        return Observation(True, f"ray.init({address!r}) connected in {ms(elapsed)}: Ray {result.get('ray_version')}, "
                           f"Python {result.get('python_version')}, nodes alive {result.get('nodes', '?')}, {summary}",
                           figures=figures, data=result, elapsed_s=elapsed)
    error = str(result.get("error", "")).strip()
    mismatch = parse_version_mismatch(error)
    if mismatch:
        figures.update(cluster_ray_version=mismatch["cluster_ray"], cluster_python_version=mismatch["cluster_python"])
        return Observation(False, f"ray.init({address!r}) refused: version mismatch, cluster Ray "
                           f"{mismatch['cluster_ray']} / Python {mismatch['cluster_python']}, this client Ray "
                           f"{mismatch['local_ray']} / Python {mismatch['local_python']}",
                           cause="version-mismatch", figures=figures, data={**result, **mismatch}, elapsed_s=elapsed)
    if result.get("error_type") in _AUTH_REFUSALS:
        return Observation(False, f"ray.init({address!r}) refused after {ms(elapsed)} for authentication: "
                           f"{result['error_type']}: {error.splitlines()[0][:200] if error else 'no reason given'}",
                           cause="unauthenticated", figures=figures, data=result, elapsed_s=elapsed)
    server_error = head_traceback_reason(error)
    if server_error is not None:
        figures["server_error"] = server_error
        return Observation(False, f"ray.init({address!r}) failed after {ms(elapsed)}: the head took the connection "
                           f"but could not start a Ray Client server for it: {server_error}",
                           cause="server-init", figures=figures, data=result, elapsed_s=elapsed)
    first_line = error.splitlines()[0][:300] if error else "no error text"
    cause = "connection" if result.get("error_type") == "ConnectionError" else "error"
    return Observation(False, f"ray.init({address!r}) failed after {ms(elapsed)}: "
                       f"{result.get('error_type', 'Error')}: {first_line}", cause=cause, figures=figures,
                       data=result, elapsed_s=elapsed)


def head_traceback_reason(error: str) -> str | None:
    """The last line of the head's traceback in an ``Initialization failure from server`` error
    (``RuntimeError: Proxy failed to Connect to backend! ...``), or None for any other error."""
    if not error.startswith(_SERVER_FAILURE):
        return None
    lines = [line.strip() for line in error.splitlines()[1:] if line.strip()]
    return lines[-1][:300] if lines else "the head gave no reason"


def _num(key: str, value: Any) -> str:
    if key in ("memory", "object_store_memory") and isinstance(value, (int, float)):
        return f"{value / 1024 ** 3:.1f} GiB" if value >= 1024 ** 3 else f"{value / 1024 ** 2:.0f} MiB"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _last_json_line(out: bytes) -> dict[str, Any] | None:
    for line in reversed(out.decode(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
