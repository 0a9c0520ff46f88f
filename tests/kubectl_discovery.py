"""A loopback API server that answers only API discovery, for the pinned kubectl.

``kubectl create role --resource=rayclusters.ray.io`` resolves resource names through the API's
discovery documents even with ``--dry-run=client``; this serves them (the legacy ``/api`` and
``/apis`` documents, as kube-apiserver does for a client that does not ask for the aggregated
form) for the kinds raycheck reads and the ones its remediations name, and 404 for anything else:
kubectl never gets an object from it, so a dry run shows only what kubectl itself makes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from raycheck.cluster.kinds import KINDS

EXTRA = (("ray.io", "v1", "rayjobs", "RayJob", True), ("apps", "v1", "deployments", "Deployment", True),
         ("", "v1", "resourcequotas", "ResourceQuota", True))
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resources() -> list[tuple[str, str, str, str, bool]]:
    return [(k.group, k.version, k.plural, k.kind, k.namespaced) for k in KINDS.values()] + list(EXTRA)


def documents() -> dict[str, dict[str, Any]]:
    """Path to discovery document."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for group, version, plural, kind, namespaced in _resources():
        groups.setdefault((group, version), []).append(
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": VERBS})
    out: dict[str, dict[str, Any]] = {"/api": {"kind": "APIVersions", "versions": ["v1"],
                                               "serverAddressByClientCIDRs": []}}
    named = []
    for (group, version), resources in groups.items():
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        out[path] = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
                     "resources": resources}
        if group:
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            named.append({"name": group, "versions": [gv], "preferredVersion": gv})
    out["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": named}
    return out


class DiscoveryServer:
    def __init__(self) -> None:
        docs = documents()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                doc = docs.get(self.path.split("?", 1)[0].rstrip("/"))
                code = 200 if doc is not None else 404
                body = json.dumps(doc if doc is not None else {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": "the server could not find the requested resource"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "d",
            "clusters": [{"name": "d", "cluster": {"server": self.url}}], "users": [{"name": "d", "user": {}}],
            "contexts": [{"name": "d", "context": {"cluster": "d", "user": "d"}}]}))
        return path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def discovery_server() -> Iterator[DiscoveryServer]:
    server = DiscoveryServer()
    yield server
    server.stop()
