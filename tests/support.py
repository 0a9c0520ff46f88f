"""Real misbehaving peers for the tests: silent ports, black-hole DNS, a fake dashboard.

Each is a real socket on loopback; none is a Python mock of a probe.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


class FakeRayClientServer(_Closing):
    """A gRPC server speaking the Ray Client protocol (Ray's own generated stubs) that answers the
    handshake as a head running another Python would (the real ``ray.init`` then refuses it), or,
    given ``init_failure``, as a head whose proxier could not start the per-client server: from
    the ``fail_from``-th connection on, its ``init`` answer is not ok and carries that text, as the
    proxier sends its traceback. ``resources`` is what it reports as the cluster's (and available).

    Only the calls of a handshake are served: the cluster info, the usage record ``ray.init`` puts,
    the data stream's ``init``, ``connection_info`` and cleanup, and an idle log stream. A Python
    minor version different from the client's cannot be produced with a real head here (one
    interpreter on the machine), nor the proxier's fork race on demand.
    """

    def __init__(self, python_version: str, ray_version: str | None = None, init_failure: str | None = None,
                 fail_from: int = 1, resources: dict[str, float] | None = None) -> None:
        from concurrent import futures

        import grpc
        import ray
        from ray.core.generated import ray_client_pb2 as pb
        from ray.core.generated import ray_client_pb2_grpc as rpc

        info = pb.ConnectionInfoResponse(num_clients=1, python_version=python_version,
                                         ray_version=ray_version or ray.__version__, ray_commit=ray.__commit__)

        types = pb.ClusterInfoType
        answers = {types.CLUSTER_RESOURCES: resources or {}, types.AVAILABLE_RESOURCES: resources or {},
                   types.NODES: []}
        inits = itertools.count(1)

        class Driver(rpc.RayletDriverServicer):
            def ClusterInfo(self, request, context):  # noqa: N802 (gRPC's name)
                return pb.ClusterInfoResponse(json=json.dumps(answers.get(request.type, {})))

            def KVPut(self, request, context):  # noqa: N802 (ray.init records library usage here)
                return pb.KVPutResponse(already_exists=False)

        class Data(rpc.RayletDataStreamerServicer):
            def Datapath(self, request_iterator, context):  # noqa: N802
                for request in request_iterator:
                    kind = request.WhichOneof("type")
                    if kind == "init":
                        failing = init_failure is not None and next(inits) >= fail_from
                        yield pb.DataResponse(req_id=request.req_id, init=pb.InitResponse(
                            ok=not failing, msg=init_failure if failing else ""))
                    elif kind == "connection_info":
                        yield pb.DataResponse(req_id=request.req_id, connection_info=info)
                    elif kind == "connection_cleanup":
                        yield pb.DataResponse(req_id=request.req_id,
                                              connection_cleanup=pb.ConnectionCleanupResponse())
                        return

        class Logs(rpc.RayletLogStreamerServicer):
            def Logstream(self, request_iterator, context):  # noqa: N802
                for _ in request_iterator:
                    pass
                return iter(())

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        rpc.add_RayletDriverServicer_to_server(Driver(), self.server)
        rpc.add_RayletDataStreamerServicer_to_server(Data(), self.server)
        rpc.add_RayletLogStreamerServicer_to_server(Logs(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self) -> None:
        self.server.stop(grace=0)


def self_signed_certificate(folder: Path, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh self-signed certificate for ``127.0.0.1`` and its key, as PEM files: (cert, key).

    Made at test time (nothing key-like is committed); any two calls are two unrelated CAs."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
