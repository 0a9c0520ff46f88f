"""A loopback Kubernetes API server for tests, as strict as kube-apiserver for what raycheck sends.

It serves a scenario's objects with the API's paths and rules, written here from the Kubernetes
API conventions, not from raycheck's code: lists (cluster-wide and namespaced) with label
selectors (equality and set-based: ``in``, ``notin``, ``!=``, ``key``, ``!key``) and field
selectors (only the fields each resource supports: custom resources ``metadata.name`` and
``metadata.namespace``; anything else is ``400 field label not supported``), ``limit``/``continue``
pagination whose token is tied to the list's ``resourceVersion`` (a token older than a compaction
is ``410 Expired``), and access reviews whose body must carry the endpoint's exact ``apiVersion``
and ``kind`` and its required fields, answered from the decision table each test gives (what that
cluster's authorizer allows), never from raycheck's evaluator. Every error is a ``Status`` with
``reason`` and ``code``. Faults per resource: any status, slow answers, connection resets. Every
request is logged, so tests can prove what a run asked for.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

TOKEN = "test-token-3f9a1c"
TOKEN_USER = "system:serviceaccount:swe-ai-fleet:raycheck"  # who the token is (SelfSubjectAccessReview)


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


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    fields: tuple[str, ...] = ("metadata.name", "metadata.namespace")  # what every resource supports


# What the stand-in serves, with each resource's supported field selectors (kube-apiserver's
# per-resource field label conversion functions; pods: pkg/registry/core/pod/strategy.go).
RESOURCES = (
    Resource("", "v1", "pods", "Pod", True, ("metadata.name", "metadata.namespace", "spec.nodeName",
             "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
             "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName")),
    Resource("", "v1", "services", "Service", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True),
    Resource("", "v1", "events", "Event", True, ("metadata.name", "metadata.namespace", "involvedObject.kind",
             "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
             "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
             "source", "type")),
    Resource("", "v1", "namespaces", "Namespace", False, ("metadata.name", "status.phase")),
    Resource("", "v1", "nodes", "Node", False, ("metadata.name", "spec.unschedulable")),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("ray.io", "v1", "rayclusters", "RayCluster", True),
)
REVIEW_KINDS = {"subjectaccessreviews": "SubjectAccessReview", "selfsubjectaccessreviews": "SelfSubjectAccessReview"}


@dataclass(frozen=True)
class Allow:
    """One row of a decision table: ``user`` (or a group it is in) may ``verb`` ``group/resource``
    in ``namespace`` (None: every namespace and cluster scope), optionally only the named object."""

    user: str
    verb: str
    group: str
    resource: str
    namespace: str | None = None
    name: str | None = None


@dataclass
class Decisions:
    """What the cluster's authorizer answers: allowed rows, everything else denied."""

    allow: list[Allow] = field(default_factory=list)

    def decide(self, user: str, groups: list[str], attrs: dict[str, Any]) -> tuple[bool, str]:
        resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
        for row in self.allow:
            if row.user not in [user, *groups] or row.verb not in (attrs.get("verb"), "*"):
                continue
            if row.group not in (attrs.get("group", ""), "*") or row.resource not in (resource, "*"):
                continue
            if row.namespace is not None and row.namespace != attrs.get("namespace"):
                continue
            if row.name is not None and row.name != attrs.get("name"):
                continue
            return True, f'RBAC: allowed by the test\'s decision table ({row.user} {row.verb} {resource})'
        return False, ""


def seed_decisions() -> Decisions:
    """What a real API server answers for the seed's RBAC (its ClusterRole ray-client-access, bound
    cluster-wide to swe-ai-fleet/workspace-runner-sa), written by hand from the RBAC docs."""
    sa = "system:serviceaccount:swe-ai-fleet:workspace-runner-sa"
    rows = [Allow(sa, "get", "", "services"), Allow(sa, "list", "", "services")]
    rows += [Allow(sa, verb, "ray.io", resource) for resource in ("rayclusters", "rayjobs")
             for verb in ("get", "list", "create", "delete")]
    return Decisions(rows)


def _resolve(path: str) -> tuple[Resource, str | None] | None:
    """(resource, namespace) of a list path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) == 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 1:
        return None
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, rest[0]):
            return resource, namespace if resource.namespaced else None
    return None


class BadRequest(Exception):
    pass


# ----------------------------------------------------------------------------- selectors, as the API defines them

_LABEL_KEY = r"(?:[a-z0-9A-Z.-]+/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?"
_LABEL_VALUE = r"(|[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)"


def _split_requirements(text: str) -> list[str]:
    """Split on the commas outside parentheses (``a in (x,y),b``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(text: str):  # type: ignore[no-untyped-def]
    """A predicate on a labels mapping for a label selector (k8s.io/apimachinery/pkg/labels grammar)."""
    tests = []
    for requirement in _split_requirements(text):
        if m := re.fullmatch(rf"({_LABEL_KEY})\s+(in|notin)\s+\((.*)\)", requirement):
            key, op, values = m.group(1), m.group(3), {v.strip() for v in m.group(4).split(",") if v.strip()}
            if not values or not all(re.fullmatch(_LABEL_VALUE, v) for v in values):
                raise BadRequest(f"invalid label selector: values of {key!r} in {requirement!r}")
            tests.append((lambda k, vs: lambda labels: labels.get(k) in vs)(key, values) if op == "in" else
                         (lambda k, vs: lambda labels: labels.get(k) not in vs)(key, values))
        elif m := re.fullmatch(rf"({_LABEL_KEY})\s*(==|=|!=)\s*({_LABEL_VALUE})", requirement):
            key, op, value = m.group(1), m.group(3), m.group(4)
            tests.append((lambda k, v: lambda labels: labels.get(k) == v)(key, value) if op != "!=" else
                         (lambda k, v: lambda labels: labels.get(k) != v)(key, value))
        elif m := re.fullmatch(rf"!({_LABEL_KEY})", requirement):
            tests.append((lambda k: lambda labels: k not in labels)(m.group(1)))
        elif re.fullmatch(_LABEL_KEY, requirement):
            tests.append((lambda k: lambda labels: k in labels)(requirement))
        else:
            raise BadRequest(f"unable to parse requirement: {requirement!r}")
    return lambda labels: all(test(labels) for test in tests)


def _value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def field_matcher(text: str, resource: Resource):  # type: ignore[no-untyped-def]
    """A predicate for a field selector: ``=``, ``==``, ``!=`` on the fields the resource supports."""
    tests = []
    for requirement in _split_requirements(text):
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", requirement)
        if m is None:
            raise BadRequest(f"invalid field selector: {requirement!r}")
        path, op, value = m.groups()
        if path not in resource.fields:
            raise BadRequest(f'field label not supported: {path}')
        tests.append((lambda p, v, eq: lambda obj: (_value(obj, p) == v) == eq)(path, value, op != "!="))
    return lambda obj: all(test(obj) for test in tests)


class FakeApiServer:
    def __init__(self, objects: list[dict[str, Any]], token: str = TOKEN, tls: tuple[Path, Path] | None = None,
                 decisions: Decisions | None = None) -> None:
        self.objects = [o for o in objects if isinstance(o, dict)]
        # indexed as kube-apiserver's watch cache indexes them (by kind; pods also by spec.nodeName), so
        # that a benchmark times raycheck's requests, not this server scanning 60,000 pods per list
        self._by_kind: dict[str, list[dict[str, Any]]] = {}
        self._pods_by_node: dict[str, list[dict[str, Any]]] = {}
        for obj in self.objects:
            self._by_kind.setdefault(obj.get("kind", ""), []).append(obj)
            if obj.get("kind") == "Pod":
                self._pods_by_node.setdefault(_value(obj, "spec.nodeName"), []).append(obj)
        self.decisions = decisions if decisions is not None else Decisions()
        self.resource_version = 1000  # the store's; a continue token carries the one it was cut at
        self.compacted_below = 0  # continue tokens cut before this resourceVersion are 410 Expired
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

    def compact(self) -> None:
        """A write and an etcd compaction: every continue token cut before now is expired."""
        with self._lock:
            self.resource_version += 1
            self.compacted_below = self.resource_version

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
            return self._send(h, record, 401, status(401, "Unauthorized", "Unauthorized"))
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
                return self._send(h, record, fault.status, status(fault.status, fault.message), headers)
        try:
            if method == "POST" and url.path.startswith("/apis/authorization.k8s.io/v1/") and resource in REVIEW_KINDS:
                return self._send(h, record, 201, self._review(resource, body))
            resolved = _resolve(url.path)
            if method != "GET" or resolved is None:
                return self._send(h, record, 404, status(404, f"the server could not find the requested resource "
                                                              f"({method} {url.path})"))
            return self._send(h, record, 200, self._list(*resolved, query))
        except BadRequest as exc:
            return self._send(h, record, 400, status(400, str(exc)))
        except Expired as exc:
            return self._send(h, record, 410, status(410, str(exc)))

    def _list(self, resource: Resource, namespace: str | None, query: dict[str, list[str]]) -> dict[str, Any]:
        labels = label_matcher(query.get("labelSelector", [""])[0])
        fields = field_matcher(query.get("fieldSelector", [""])[0], resource)
        node = re.fullmatch(r"spec\.nodeName==?([^,]*)", query.get("fieldSelector", [""])[0].strip())
        candidates = self._pods_by_node.get(node.group(1), []) if node and resource.kind == "Pod" \
            else self._by_kind.get(resource.kind, [])
        items = [o for o in candidates
                 if (namespace is None or (o.get("metadata") or {}).get("namespace", "default") == namespace)
                 and labels((o.get("metadata") or {}).get("labels") or {}) and fields(o)]
        start, cut_at = 0, self.resource_version
        if "continue" in query:
            try:
                token = json.loads(base64.b64decode(query["continue"][0]))
                start, cut_at = int(token["start"]), int(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise BadRequest("invalid continue token") from None
            if cut_at < self.compacted_below:
                raise Expired("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.")
        limit_text = query.get("limit", ["0"])[0]
        if not limit_text.isdigit():
            raise BadRequest(f"invalid limit: {limit_text!r}")
        limit = int(limit_text) or len(items) or 1
        page = items[start:start + limit]
        more = start + limit < len(items)
        token = base64.b64encode(json.dumps({"rv": cut_at, "start": start + limit}).encode()).decode() if more else ""
        metadata: dict[str, Any] = {"resourceVersion": str(cut_at)}
        if token:
            metadata.update({"continue": token, "remainingItemCount": len(items) - start - limit})
        api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        return {"kind": f"{resource.kind}List", "apiVersion": api_version, "metadata": metadata,
                "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]}

    def _review(self, plural: str, body: bytes) -> dict[str, Any]:
        """A SubjectAccessReview or SelfSubjectAccessReview, decoded as kube-apiserver decodes it."""
        try:
            review = json.loads(body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None
        kind = REVIEW_KINDS[plural]
        if not isinstance(review, dict) or review.get("apiVersion") != "authorization.k8s.io/v1":
            raise BadRequest(f"the API version in the data ({review.get('apiVersion') if isinstance(review, dict) else None}) "
                             f"does not match the expected API version (authorization.k8s.io/v1)")
        if review.get("kind") != kind:
            raise BadRequest(f'no kind "{review.get("kind")}" is registered for version "authorization.k8s.io/v1" '
                             'in scheme "pkg/api/legacyscheme/scheme.go:30"')
        spec = review.get("spec")
        if not isinstance(spec, dict):
            raise BadRequest(f"{kind}.authorization.k8s.io is invalid: spec: Required value")
        if ("resourceAttributes" in spec) == ("nonResourceAttributes" in spec):
            raise BadRequest(f"{kind}.authorization.k8s.io is invalid: spec.resourceAttributes: Invalid value: "
                             "exactly one of nonResourceAttributes or resourceAttributes must be specified")
        if kind == "SubjectAccessReview":
            if not spec.get("user") and not spec.get("groups"):
                raise BadRequest("SubjectAccessReview.authorization.k8s.io is invalid: spec.user: Invalid value: "
                                 '"": at least one of user or group must be specified')
            user, groups = spec.get("user", ""), list(spec.get("groups") or [])
        else:
            user, groups = TOKEN_USER, ["system:serviceaccounts", "system:serviceaccounts:swe-ai-fleet",
                                        "system:authenticated"]
        allowed, reason = self.decisions.decide(user, groups, spec.get("resourceAttributes") or {})
        return {**review, "metadata": {"creationTimestamp": None}, "status": {"allowed": allowed, "reason": reason}
                if reason else {"allowed": allowed}}

    def _send(self, h: BaseHTTPRequestHandler, record: Request, code: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        record.bytes_out = len(data)
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): fine
            pass


class Expired(Exception):
    pass


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


def status(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """An error as kube-apiserver returns one: a ``Status`` with reason and code."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or REASONS.get(code, "Unknown"), "code": code}
