"""Ray and Python versions, local and as observed on the cluster, for messages and remediations.

Kept apart from the probes so that rendering a remediation does not import them (dnspython alone
costs 30 ms at every start).
"""

from __future__ import annotations

import functools
import platform
import re
from importlib import metadata
from typing import Any

# rayproject/ray, rayproject/ray-ml, rayproject/ray-llm, mirrored anywhere: {ray}[-py{XY}][-{cpu|gpu|cuXXX}],
# and the variants with a word before the Python (``2.44.1-extra-py312-cu125``)
_RAY_IMAGE = re.compile(r"(?:^|/)rayproject/ray(?:-ml|-llm)?:(?P<ray>\d+\.\d+\.\d+)(?P<rest>(?:-[\w.]+)*)$")
_PY_TAG = re.compile(r"-py(?P<py>3)(?P<minor>\d{1,2})(?=-|$)")


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


def default_python(ray: str) -> str:
    """The Python of ``rayproject/ray:<ray>`` without a ``-pyXY`` tag (FACTS.md): 3.9 up to the
    2.51 releases, 3.10 from 2.52 on (ray PR#58765, "change default python version tag to 3.10")."""
    try:
        major, minor = (int(part) for part in ray.split(".")[:2])
    except ValueError:
        return "3.10"
    return "3.9" if (major, minor) <= (2, 51) else "3.10"


def image_python(image: str) -> tuple[str, str] | None:
    """The Python minor of a Ray image, and how it was read; None for an image that is not Ray's
    own (a custom image says nothing about its Python in its name)."""
    match = _RAY_IMAGE.search(image.split("@")[0])
    if match is None:
        return None
    if tag := _PY_TAG.search(match["rest"]):
        return f"3.{tag['minor']}", f"head image {image}"
    default = default_python(match["ray"])
    return default, f"head image {image} (no -pyXY tag: Ray {match['ray']}'s default Python {default})"


def known_versions(dashboard_body: dict[str, Any] | None, handshake_figures: dict[str, str],
                   cluster_python: str | None = None, runtime: tuple[str | None, str] | None = None) -> dict[str, str]:
    """The versions a remediation quotes: the cluster's, as far as the dashboard, the handshake or
    the head image told them, and the client runtime's (``runtime``: its Ray and Python; raycheck's
    own interpreter without one)."""
    local_ray, local_python = runtime if runtime is not None else (local_ray_version(), platform.python_version())
    versions = {"local_ray_version": local_ray or "not installed", "local_python_version": local_python}
    cluster_ray = (dashboard_body or {}).get("ray_version") or handshake_figures.get("cluster_ray_version")
    cluster_python = handshake_figures.get("cluster_python_version") or cluster_python
    versions["cluster_ray_version"] = cluster_ray or local_ray_version() or "2.49.2"
    versions["cluster_python_version"] = cluster_python or "unknown"
    # the cluster's Python unknown: the client's, a guess the handshake corrects
    py = python_minor(cluster_python or local_python) or "3.11"
    versions["ray_image"] = f"rayproject/ray:{versions['cluster_ray_version']}-py{py.replace('.', '')}"
    local_tag = (python_minor(local_python) or "3.11").replace(".", "")
    versions["client_python_image"] = f"rayproject/ray:{versions['cluster_ray_version']}-py{local_tag}"
    versions["client_env_command"] = f"raycheck client-env --ray {versions['cluster_ray_version']} --python {py}"
    return versions
