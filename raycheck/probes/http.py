"""Dashboard HTTP probes (``/api/version``, ``/api/gcs_healthz``), bounded by the probe timeout."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from raycheck.observation import Observation, ms

MAX_BODY = 64 * 1024


def get(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[Observation, bytes]:
    """GET ``url``: an observation of the status, and the body (at most 64 KiB). An error status
    keeps the first line of its body (``http_body``): Ray says there why it refused a token."""
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "raycheck",
                                                   **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http only)
            body = response.read(MAX_BODY)
            status = response.status
    except urllib.error.HTTPError as exc:
        elapsed = time.monotonic() - start
        body = _first_line(exc)
        return Observation(False, f"GET {url} answered HTTP {exc.code} {exc.reason} in {ms(elapsed)}",
                           cause="http-status", figures={"http_status": str(exc.code), "http_body": body},
                           elapsed_s=elapsed), b""
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        elapsed = time.monotonic() - start
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return Observation(False, f"GET {url}: no answer within {timeout:g} s", cause="timeout",
                               elapsed_s=elapsed), b""
        if isinstance(reason, ConnectionRefusedError):
            return Observation(False, f"GET {url}: connection refused", cause="refused", elapsed_s=elapsed), b""
        return Observation(False, f"GET {url}: {reason}", cause="not-http", elapsed_s=elapsed), b""
    except Exception as exc:  # http.client.BadStatusLine and friends: the peer is not HTTP
        elapsed = time.monotonic() - start
        return Observation(False, f"GET {url}: not an HTTP answer ({type(exc).__name__})", cause="not-http",
                           elapsed_s=elapsed), b""
    elapsed = time.monotonic() - start
    return Observation(True, f"GET {url} answered HTTP {status} in {ms(elapsed)}", elapsed_s=elapsed), body


def _first_line(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(512).decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return (text.strip().splitlines() or [""])[0][:200]


def get_json(url: str, timeout: float,
             headers: dict[str, str] | None = None) -> tuple[Observation, dict[str, Any] | None]:
    """GET a JSON object; a body that is not one is a ``not-json`` failure."""
    obs, body = get(url, timeout, headers)
    if not obs.ok:
        return obs, None
    try:
        parsed = json.loads(body)
    except ValueError:
        return Observation(False, f"{url} answered HTTP 200 but not JSON ({body[:40]!r})", cause="not-json",
                           elapsed_s=obs.elapsed_s), None
    if not isinstance(parsed, dict):
        return Observation(False, f"{url} answered JSON that is not an object", cause="not-json",
                           elapsed_s=obs.elapsed_s), None
    return obs, parsed
