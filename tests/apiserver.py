"""A loopback Kubernetes API server for tests: a scenario's objects over HTTP, with faults on demand.

It serves what raycheck's live source reads, with the API's paths: lists (cluster-wide and
namespaced) with label and field selectors and ``limit``/``continue`` pagination, and access
reviews (``subjectaccessreviews``) answered by the RBAC evaluator. Faults per resource: any
status code (401, 403, 404, 410 on a ``continue``, 429 with ``Retry-After``, 500), slow answers,
and connection resets. Every request is logged, so tests can prove what a run asked for.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from raycheck.cluster.kinds import KINDS
from raycheck.cluster.selectors import parse_equality
from raycheck.cluster.source import MemorySource, Query
from raycheck.model.rbac import Access, RbacEvaluator, ServiceAccountSubject

TOKEN = "test-token-3f9a1c"


@dataclass
class Fault:
    """What to do instead of answering: a status, a delay, or a reset; ``times`` None means always."""

    status: int | None = None
    delay: float = 0.0
    reset: bool = False
    retry_after: float | None = None
    on_continue: bool = False  # only for requests that carry a continue token
    times: int | None = None
    message: str = "injected fault"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    bytes_out: int = 0


def _resolve(path: str) -> tuple[str, str | None] | None:
    """(kind, namespace) of a list path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) == 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 1:
        return None
    for kind in KINDS.values():
        if kind.plural == rest[0] and kind.group == group:
            return kind.kind, namespace
    return None


class FakeApiServer:
    def __init__(self, objects: list[dict[str, Any]], token: str = TOKEN, tls: tuple[Path, Path] | None = None) -> None:
        self.store = MemorySource(objects, name="fake API")
        self.rbac = RbacEvaluator(objects)
        self.token = token
        self.faults: dict[str, Fault] = {}  # by plural ("pods", "subjectaccessreviews") or "*"
        self.log: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as a real API server: no 40 ms delayed-ACK wait per answer

            def do_GET(self) -> None:  # noqa: N802
                outer._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                outer._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # serve HTTPS with this (cert, key): clients that do not trust it fail the handshake
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path, token: str | None = None, ca: Path | None = None) -> Path:
        """A kubeconfig for this server; ``ca``: the PEM the client trusts for HTTPS."""
        cluster: dict[str, Any] = {"server": self.url}
        if ca is not None:
            cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    # -- handling

    def _fault(self, resource: str, has_continue: bool) -> Fault | None:
        with self._lock:
            for key in (resource, "*"):
                fault = self.faults.get(key)
                if fault is None or (fault.on_continue and not has_continue):
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        record = Request(method, url.path, query)
        with self._lock:
            self.log.append(record)
        body = b""
        if method == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, record, 401, _status(401, "Unauthorized"))
        resource = url.path.rstrip("/").rsplit("/", 1)[-1]
        fault = self._fault(resource, "continue" in query)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.reset:
                h.connection.shutdown(2)
                h.close_connection = True
                return None
            if fault.status:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return self._send(h, record, fault.status, _status(fault.status, fault.message), headers)
        if method == "POST" and url.path.endswith("/subjectaccessreviews"):
            return self._send(h, record, 201, self._review(json.loads(body)))
        resolved = _resolve(url.path)
        if method != "GET" or resolved is None:
            return self._send(h, record, 404, _status(404, f"the server could not find {url.path}"))
        kind, namespace = resolved
        items = self.store.list(Query(kind, namespace, parse_equality(query.get("labelSelector", [""])[0]),
                                      parse_equality(query.get("fieldSelector", [""])[0])))
        start = int(base64.b64decode(query["continue"][0]).decode()) if "continue" in query else 0
        limit = int(query.get("limit", ["0"])[0]) or len(items) or 1
        page = items[start:start + limit]
        token = base64.b64encode(str(start + limit).encode()).decode() if start + limit < len(items) else ""
        k = KINDS[kind]
        return self._send(h, record, 200, {"kind": f"{kind}List", "apiVersion": k.api_version,
                                           "metadata": {"resourceVersion": "1", "continue": token},
                                           "items": page})

    def _review(self, review: dict[str, Any]) -> dict[str, Any]:
        spec = review.get("spec") or {}
        user = spec.get("user", "")
        attrs = spec.get("resourceAttributes") or {}
        _, _, namespace, name = (user.split(":") + ["", "", "", ""])[:4]
        decision = self.rbac.decide(ServiceAccountSubject(namespace, name), Access(
            attrs.get("verb", ""), attrs.get("group", ""), attrs.get("resource", ""), attrs.get("namespace"),
            attrs.get("subresource", ""), attrs.get("name", "")))
        return {**review, "status": {"allowed": decision.allowed, "reason": decision.reason}}

    def _send(self, h: BaseHTTPRequestHandler, record: Request, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        record.bytes_out = len(data)
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            pass


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
