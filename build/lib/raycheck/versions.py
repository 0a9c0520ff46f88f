"""Ray and Python versions, local and as observed on the cluster, for messages and remediations.

Kept apart from the probes so that rendering a remediation does not import them (dnspython alone
costs 30 ms at every start).
"""

from __future__ import annotations

import functools
import platform
from importlib import metadata
from typing import Any


@functools.cache
def local_ray_version() -> str | None:
    """The Ray installed beside raycheck, read from package metadata once (importing ray is slow;
    reading the metadata parses a file: 0.7 ms, asked for every remediation)."""
    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return None


def python_minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None


def known_versions(dashboard_body: dict[str, Any] | None, handshake_figures: dict[str, str]) -> dict[str, str]:
    """Local versions, and the cluster's as far as the dashboard or the handshake told them."""
    local_python = platform.python_version()
    versions = {"local_ray_version": local_ray_version() or "not installed", "local_python_version": local_python}
    cluster_ray = (dashboard_body or {}).get("ray_version") or handshake_figures.get("cluster_ray_version")
    cluster_python = handshake_figures.get("cluster_python_version")
    versions["cluster_ray_version"] = cluster_ray or local_ray_version() or "2.49.2"
    versions["cluster_python_version"] = cluster_python or "unknown"
    py = python_minor(cluster_python or local_python) or "3.11"
    versions["ray_image"] = f"rayproject/ray:{versions['cluster_ray_version']}-py{py.replace('.', '')}"
    local_tag = (python_minor(local_python) or "3.11").replace(".", "")
    versions["client_python_image"] = f"rayproject/ray:{versions['cluster_ray_version']}-py{local_tag}"
    return versions
