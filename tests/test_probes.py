"""Probes against real peers: refused, silent, closing and foreign ports, a fake dashboard, Ray itself."""

from __future__ import annotations

import os
import time

import pytest

from raycheck.probes import http, ray_client, tcp
from tests.support import ClosingPort, FakeDashboard, SilentPort, refused_port


def test_greeting_from_the_real_ray_client_server(ray_head):
    obs = tcp.grpc_greeting("127.0.0.1", ray_head.ports.client, 3)
    assert obs.ok, obs.message
    assert "answered the gRPC (HTTP/2) greeting" in obs.message


def test_refused_port():
    obs = tcp.grpc_greeting("127.0.0.1", refused_port(), 3)
    assert (obs.ok, obs.cause) == (False, "refused")
    assert obs.elapsed_s < 1


def test_silent_port_is_caught_within_the_timeout():
    with SilentPort() as silent:
        obs = tcp.grpc_greeting("127.0.0.1", silent.port, 0.5)
    assert (obs.ok, obs.cause) == (False, "silent")
    assert 0.4 < obs.elapsed_s < 2


def test_closing_and_foreign_ports():
    with ClosingPort() as closing, ClosingPort(b"HTTP/1.1 400 Bad Request\r\n\r\n") as foreign:
        assert tcp.grpc_greeting("127.0.0.1", closing.port, 1).cause == "closed"
        assert tcp.grpc_greeting("127.0.0.1", foreign.port, 1).cause == "not-grpc"


def test_dashboard_version_and_failures(ray_head):
    obs, body = http.get_json(f"http://127.0.0.1:{ray_head.ports.dashboard}/api/version", 3)
    assert obs.ok and body["ray_version"] == "2.49.2"
    with FakeDashboard(status=500) as broken, FakeDashboard(body=b"not json") as garbage:
        obs, _ = http.get_json(f"http://127.0.0.1:{broken.port}/api/version", 3)
        assert (obs.cause, obs.figures["http_status"]) == ("http-status", "500")
        assert http.get_json(f"http://127.0.0.1:{garbage.port}/api/version", 3)[0].cause == "not-json"
    assert http.get_json(f"http://127.0.0.1:{refused_port()}/", 1)[0].cause == "refused"


def _children_alive() -> list[str]:
    """Handshake children of this process, or orphaned to init (not another test process's)."""
    alive = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ray_client.CHILD_SCRIPT.name in cmdline and ppid in (os.getpid(), 1):
                alive.append(pid)
    return alive


def test_handshake_deadline_kills_the_child_and_leaves_nothing(ray_head):
    before = _children_alive()
    start = time.monotonic()
    # the GCS port speaks gRPC but is not the client server: ray.init hangs there
    obs = ray_client.handshake(f"ray://127.0.0.1:{ray_head.ports.gcs}", deadline=3)
    elapsed = time.monotonic() - start
    assert (obs.ok, obs.cause) == (False, "deadline")
    assert elapsed < 10
    assert _children_alive() == before


def test_handshake_against_the_real_head(ray_head):
    obs = ray_client.handshake(f"ray://127.0.0.1:{ray_head.ports.client}", deadline=60)
    assert obs.ok, obs.message
    assert obs.data["resources"]["GPU"] == 8.0
    assert obs.figures["cluster_ray_version"] == "2.49.2"


def test_version_mismatch_message_is_parsed():
    text = ("Version mismatch: The cluster was started with:\n    Ray: 2.48.0\n    Python: 3.10.14\n"
            "This process on Ray Client was started with:\n    Ray: 2.49.2\n    Python: 3.11.7\n")
    assert ray_client.parse_version_mismatch(text) == {
        "cluster_ray": "2.48.0", "cluster_python": "3.10.14", "local_ray": "2.49.2", "local_python": "3.11.7"}
    obs = ray_client.interpret("ray://h:10001", {"ok": False, "error_type": "RuntimeError", "error": text}, 2.5)
    assert obs.cause == "version-mismatch" and obs.figures["cluster_ray_version"] == "2.48.0"
    assert "cluster Ray 2.48.0 / Python 3.10.14" in obs.message


@pytest.mark.parametrize("result, cause", [
    ({"ok": False, "error_type": "ConnectionError", "error": "ray client connection timeout"}, "connection"),
    ({"ok": False, "error_type": "ValueError", "error": "bad"}, "error"),
])
def test_other_handshake_failures(result, cause):
    assert ray_client.interpret("ray://h:1", result, 1.0).cause == cause
