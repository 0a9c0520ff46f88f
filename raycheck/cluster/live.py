"""The live source: the official ``kubernetes`` client over HTTP, read-only, bounded and paginated.

Every request carries ``_request_timeout``; lists are paginated (``limit``/``continue``) and
narrowed by label and field selectors, so a 5,000-node cluster is never listed whole. A 410
(stale ``continue``) restarts the list once; a 429 waits for ``Retry-After`` once, within the
timeout. Every other failure is a :class:`ClusterReadError` with its cause.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raycheck.cluster.coverage import ALL
from raycheck.cluster.kinds import KINDS
from raycheck.cluster.selectors import equality
from raycheck.cluster.source import ClusterReadError, Object, Query
from raycheck.model.rbac import AccessReviewer, service_account_of_token
from raycheck.redact import redact_text

if TYPE_CHECKING:
    from kubernetes import client

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CAUSES = {401: "unauthorized", 403: "forbidden", 404: "not-found", 410: "expired", 429: "throttled"}


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").exists()


def kubeconfig_available(kubeconfig: str | None) -> bool:
    if kubeconfig or os.environ.get("KUBECONFIG"):
        return True
    return Path("~/.kube/config").expanduser().exists()


class LiveSource:
    def __init__(self, api: "client.ApiClient", timeout: float, page_size: int = 500) -> None:
        self.name = "live API " + api.configuration.host
        self.api = api
        self.timeout = timeout
        self.page_size = page_size
        self.requests = 0
        self.bytes = 0
        self.unusable: ClusterReadError | None = None  # set once the server as a whole cannot be used
        self._timeouts_in_a_row = 0

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, timeout: float) -> "LiveSource":
        """In-cluster first (unless a kubeconfig is named), then the kubeconfig."""
        from kubernetes import client, config  # imported when used: it costs a quarter second at startup

        cfg = client.Configuration()
        try:
            if kubeconfig is None and context is None and in_cluster():
                config.load_incluster_config(client_configuration=cfg)
            else:
                config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            raise ClusterReadError(None, None, "no-config", f"cannot load the kubeconfig: {redact_text(str(exc))}") \
                from None
        cfg.retries = 0  # raycheck decides what to retry, within its deadlines
        return cls(client.ApiClient(cfg), timeout)

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "requests": self.requests, "bytes": self.bytes}

    def covers(self, kind: str, namespace: str | None) -> bool:
        """Whatever raycheck may list: a list it may not read is a 403, a finding about its own RBAC."""
        return True

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        return "(live: nothing to add)"

    def covered_namespaces(self, kind: str) -> set[str]:
        return {ALL}

    def authorizer(self) -> AccessReviewer:
        """The API server decides, through access reviews (as the checker's own ServiceAccount where
        that is the subject)."""
        return AccessReviewer(self, service_account_of_token(SERVICE_ACCOUNT_DIR / "token"))

    def list(self, query: Query) -> list[Object]:
        kind = KINDS[query.kind]
        path = kind.path(query.namespace)
        params: list[tuple[str, Any]] = [("limit", self.page_size)]
        if query.labels:
            params.append(("labelSelector", equality(query.labels)))
        if query.fields:
            params.append(("fieldSelector", equality(query.fields)))
        items: list[Object] = []
        token: str | None = None
        restarted = False
        while True:
            try:
                page = self.request("GET", path, params + ([("continue", token)] if token else []), query)
            except ClusterReadError as exc:
                if exc.status == 410 and not restarted:  # the continue token expired: start over, once
                    items, token, restarted = [], None, True
                    continue
                raise
            for item in page.get("items") or []:
                item.setdefault("kind", kind.kind)
                item.setdefault("apiVersion", kind.api_version)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def create(self, path: str, body: Object) -> Object:
        """POST (access reviews only: raycheck writes nothing else)."""
        try:
            return self.request("POST", path, [], None, body)
        except ClusterReadError as exc:
            raise ClusterReadError(None, exc.status, exc.cause, exc.detail, verb="create",
                                   resource=path.rsplit("/", 1)[1]) from None

    def request(self, method: str, path: str, params: list[tuple[str, Any]], query: Query | None,
                body: Object | None = None) -> Object:
        """One request, or at once the failure that made the server unusable (a dead API server
        costs two timeouts, not one per check): refused or unresolvable, TLS, 401, two timeouts in a row.
        A failure of one resource (403, 404, 5xx, a reset, one slow list) leaves the others readable."""
        if self.unusable is not None:
            first = self.unusable
            raise ClusterReadError(query, first.status, first.cause,
                                   f"{first.detail} (not asked: an earlier request failed this way)")
        try:
            answer = self._send(method, path, params, query, body)
        except ClusterReadError as exc:
            self._timeouts_in_a_row = self._timeouts_in_a_row + 1 if exc.cause == "timeout" else 0
            if exc.cause in ("tls", "unauthorized", "refused") or self._timeouts_in_a_row >= 2:
                self.unusable = exc
            raise
        self._timeouts_in_a_row = 0
        return answer

    def _send(self, method: str, path: str, params: list[tuple[str, Any]], query: Query | None,
              body: Object | None) -> Object:
        import urllib3  # here, not at the top: a run without live state does not pay its 20 ms import

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            method_, url, headers_, body_, _ = self.api.param_serialize(
                method, path, query_params=params, header_params=headers, body=body, auth_settings=["BearerToken"])
            start = time.monotonic()
            try:
                response = self.api.call_api(method_, url, header_params=headers_, body=body_,
                                             _request_timeout=(self.timeout, self.timeout))
                response.read()
            except urllib3.exceptions.SSLError as exc:
                raise ClusterReadError(query, None, "tls", f"TLS failed: {redact_text(str(exc))[:200]}") from None
            except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
                raise ClusterReadError(query, None, "timeout", f"no answer within {self.timeout:g} s") from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, urllib3.exceptions.NewConnectionError):  # (a ConnectTimeoutError subclass)
                    raise ClusterReadError(query, None, "refused",
                                           f"cannot connect to the API server: {redact_text(str(reason))[:200]}") \
                        from None
                if isinstance(reason, urllib3.exceptions.SSLError):
                    raise ClusterReadError(query, None, "tls", f"TLS failed: {redact_text(str(reason))[:200]}") \
                        from None
                if isinstance(reason, (urllib3.exceptions.TimeoutError, TimeoutError)):
                    raise ClusterReadError(query, None, "timeout", f"no answer within {self.timeout:g} s") from None
                raise ClusterReadError(query, None, "unreachable",
                                       f"cannot reach the API server: {redact_text(str(reason))[:200]}") from None
            self.requests += 1
            data = response.data or b""
            self.bytes += len(data)
            status = response.status
            if status == 429 and attempt == 0:
                retry_after = _retry_after(response.getheader("Retry-After"))
                if retry_after is not None and retry_after <= self.timeout:
                    time.sleep(max(0.0, retry_after - (time.monotonic() - start)))
                    continue
            if status >= 400:
                raise ClusterReadError(query, status, CAUSES.get(status, "unavailable"),
                                       f"HTTP {status}: {_status_message(data)}")
            try:
                return json.loads(data)
            except ValueError:
                raise ClusterReadError(query, status, "unavailable", "the API server answered something "
                                       "that is not JSON") from None
        raise ClusterReadError(query, 429, "throttled", "HTTP 429 twice: the API server is throttling")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status_message(data: bytes) -> str:
    try:
        status = json.loads(data)
        return redact_text(str(status.get("message") or status.get("reason") or "")[:300]) or "no message"
    except ValueError:
        return redact_text(data[:120].decode(errors="replace"))
