"""Real misbehaving peers for the tests: silent ports, black-hole DNS, a fake dashboard.

Each is a real socket on loopback; none is a Python mock of a probe.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Closing:
    """Use as a context manager: closed on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SilentPort(_Closing):
    """A TCP port that accepts connections (the kernel completes the handshake) and never speaks."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class ClosingPort(_Closing):
    """A TCP port that accepts and immediately closes each connection."""

    def __init__(self, payload: bytes = b"") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.payload = payload
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.payload:
                    conn.sendall(self.payload)
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()


def refused_port() -> int:
    """A loopback port where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BlackholeDns(_Closing):
    """A UDP port bound and never read: a DNS server that never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


class FakeDashboard(_Closing):
    """A small HTTP server that answers ``/api/version`` as a dashboard would, or fails on demand."""

    def __init__(self, ray_version: str = "2.49.2", status: int = 200, body: bytes | None = None,
                 gcs_status: int = 200) -> None:
        outer = self
        self.ray_version, self.status, self.body, self.gcs_status = ray_version, status, body, gcs_status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/api/gcs_healthz":
                    self._answer(outer.gcs_status, b"success" if outer.gcs_status == 200 else b"GCS unreachable")
                    return
                payload = outer.body if outer.body is not None else json.dumps(
                    {"version": "4", "ray_version": outer.ray_version, "ray_commit": "0" * 40,
                     "session_name": "session_fake"}).encode()
                self._answer(outer.status, payload)

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
