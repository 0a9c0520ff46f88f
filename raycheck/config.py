"""The target description and the run settings, validated in one place.

A target file has the seed's ``workers/config.yaml`` shape (a ``ray:`` section) plus an
optional ``raycheck:`` section. Every problem is reported as a :class:`ConfigError` whose text
names the file, the line and the key, so the plugin can turn it into pytest's usage error
(exit status 4) before anything runs or is written.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from raycheck.errors import ConfigError
from raycheck.settings import SETTING

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# The seed's ClusterRole: what the client ServiceAccount needs on the Ray namespace.
DEFAULT_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"apiGroup": "", "resource": "services", "verbs": ["get", "list"]},
    {"apiGroup": "ray.io", "resource": "rayclusters", "verbs": ["get", "list", "create", "delete"]},
    {"apiGroup": "ray.io", "resource": "rayjobs", "verbs": ["get", "list", "create", "delete"]},
)


@dataclass(frozen=True)
class Permission:
    api_group: str
    resource: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class RayAddress:
    """A parsed ``ray://host:port`` address."""

    host: str
    port: int
    absolute: bool = False  # written with a trailing dot: the resolver skips the search list

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ray://{host}{'.' if self.absolute else ''}:{self.port}"


def parse_ray_address(text: str) -> RayAddress:
    """Parse ``ray://host:port``; raise ValueError with a reason a human can act on."""
    if not isinstance(text, str) or not text:
        raise ValueError("expected a string like ray://<cluster>-head-svc.<ns>.svc.cluster.local:10001")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"{text!r} has no scheme: write ray://{text}")
    if scheme != "ray":
        raise ValueError(f"{text!r} has scheme {scheme!r}; Ray Client addresses start with ray://")
    if "/" in rest or "?" in rest:
        raise ValueError(f"{text!r} has a path or query; expected only ray://host:port")
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise ValueError(f"{text!r}: an IPv6 address needs the form ray://[addr]:port")
        port_text = tail[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise ValueError(f"{text!r} has no port: the Ray Client port is usually 10001")
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not port_text.isdigit():
        raise ValueError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is outside 1-65535")
    if ".." in host:
        raise ValueError(f"{text!r}: host {host!r} has an empty label")
    return RayAddress(host=host.rstrip("."), port=port, absolute=host.endswith("."))


@dataclass(frozen=True)
class ServiceName:
    """Where a Kubernetes Service name points: ``<service>.<namespace>.svc.<zone>``."""

    service: str
    namespace: str | None
    zone: str | None


def split_service_host(host: str) -> ServiceName:
    """Split a Service DNS name into service, namespace and cluster domain, where it has them."""
    parts = host.split(".")
    if len(parts) >= 4 and parts[2] == "svc":
        return ServiceName(parts[0], parts[1], ".".join(parts[3:]))
    if len(parts) == 3 and parts[2] == "svc":
        return ServiceName(parts[0], parts[1], None)
    if len(parts) == 2:
        return ServiceName(parts[0], parts[1], None)
    return ServiceName(parts[0], None, None)


@dataclass(frozen=True)
class Target:
    """What raycheck checks: the Ray cluster, the client side, and what is expected of them."""

    source: str
    address: RayAddress
    ray_namespace: str
    cluster_name: str
    head_service: str
    cluster_domain: str
    client_namespace: str
    service_account: str
    dashboard_alias: str | None
    dashboard_port: int
    expect_gpus: int | None
    expect_workers: int | None
    required_permissions: tuple[Permission, ...]
    memory_headroom: float
    resolv_conf: Path
    dns_search_lookups: int
    runtime_env: Mapping[str, Any] = field(default_factory=dict)
    client_pod_labels: Mapping[str, str] | None = None  # which pods of the client namespace are the agents

    @property
    def head_host(self) -> str:
        return self.address.host

    @property
    def client_port(self) -> int:
        return self.address.port

    @property
    def head_fqdn(self) -> str:
        """The head service's fully qualified name, as cluster DNS serves it."""
        return f"{self.head_service}.{self.ray_namespace}.svc.{self.cluster_domain}"

    @property
    def alias_fqdn(self) -> str | None:
        if not self.dashboard_alias:
            return None
        return f"{self.dashboard_alias}.{self.client_namespace}.svc.{self.cluster_domain}"

    @property
    def dashboard_url(self) -> str:
        host = f"[{self.head_host}]" if ":" in self.head_host else self.head_host
        return f"http://{host}:{self.dashboard_port}"

    def names(self) -> dict[str, str]:
        """The target's own names, as the remediation catalog's placeholders spell them."""
        return {
            "address": str(self.address),
            "head_host": self.head_host,
            "head_fqdn": self.head_fqdn,
            "head_service": self.head_service,
            "ray_namespace": self.ray_namespace,
            "cluster_name": self.cluster_name,
            "cluster_domain": self.cluster_domain,
            "client_namespace": self.client_namespace,
            "service_account": self.service_account,
            "dashboard_alias": self.dashboard_alias or "internal-ray-dashboard",
            "alias_fqdn": self.alias_fqdn
            or f"internal-ray-dashboard.{self.client_namespace}.svc.{self.cluster_domain}",
            "client_port": str(self.client_port),
            "dashboard_port": str(self.dashboard_port),
            "target_file": shlex.quote(self.source),  # (a shell word)
        }

    def summary(self) -> dict[str, Any]:
        """The target as the JSON report records it."""
        return {
            "file": self.source,
            "address": str(self.address),
            "ray_namespace": self.ray_namespace,
            "cluster_name": self.cluster_name,
            "head_service": self.head_service,
            "head_fqdn": self.head_fqdn,
            "client_namespace": self.client_namespace,
            "service_account": self.service_account,
            "dashboard_alias": self.dashboard_alias,
            "dashboard_url": self.dashboard_url,
        }


# ----------------------------------------------------------------------------- YAML with lines


def _compose(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Load YAML and remember the line of every mapping key, for error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{line}: not valid YAML: {problem}") from None
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node | None, path: tuple[str, ...]) -> Any:
        if n is None:
            return None
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                key = str(key_node.value)
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(item, path + (str(i),)) for i, item in enumerate(n.value)]
        return _scalar(n)

    return walk(node, ()), lines


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


class _Reader:
    """Typed access to the parsed file; every complaint names file, line and dotted key."""

    def __init__(self, data: Any, lines: dict[tuple[str, ...], int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def where(self, path: tuple[str, ...]) -> str:
        for cut in range(len(path), 0, -1):
            if path[:cut] in self.lines:
                return f"{self.source}:{self.lines[path[:cut]]}"
        return self.source

    def fail(self, path: tuple[str, ...], problem: str) -> ConfigError:
        key = ".".join(path) if path else "(top level)"
        return ConfigError(f"{self.where(path)}: {key}: {problem}")

    def mapping(self, path: tuple[str, ...], value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in known:
                raise self.fail(path + (key,), f"unknown key (known: {', '.join(known)})")
        return value

    def typed(self, path: tuple[str, ...], value: Any, kind: type | tuple[type, ...], what: str) -> Any:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(path, f"expected {what}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(path, f"expected {what}, got {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(value), type(value).__name__)


def _dns_name(reader: _Reader, path: tuple[str, ...], value: Any) -> str:
    text = reader.typed(path, value, str, "a DNS label")
    if not text or len(text) > 63 or not all(c.isalnum() or c == "-" for c in text) \
            or text.startswith("-") or text.endswith("-") or text.lower() != text:
        raise reader.fail(path, f"{text!r} is not a valid Kubernetes name (lower-case letters, digits, '-')")
    return text


# ----------------------------------------------------------------------------- loading


TOP_KEYS = ("ray", "raycheck")
RAY_KEYS = ("address", "namespace", "cluster_name", "runtime_env")
TARGET_KEYS = (
    "client_namespace", "service_account", "dashboard_alias", "ports", "expect",
    "required_permissions", "thresholds", "resolv_conf", "client_pod_labels",
)
RAYCHECK_KEYS = TARGET_KEYS + tuple(SETTING)  # the run settings may be written in the file too


def load_target_file(path: str | os.PathLike[str]) -> tuple[Target, dict[str, Any]]:
    """Read a target file; return the target and the run settings the file sets."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: target file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read target file: {exc}") from None
    data, lines = _compose(text, source)
    return parse_target(data, lines, source)


def parse_target(data: Any, lines: dict[tuple[str, ...], int], source: str) -> tuple[Target, dict[str, Any]]:
    r = _Reader(data, lines, source)
    if data is None:
        raise ConfigError(f"{source}: target file is empty; it needs at least ray.address")
    top = r.mapping((), data, TOP_KEYS)
    if "ray" not in top:
        raise ConfigError(f"{source}: ray: missing section (ray.address is required)")
    ray = r.mapping(("ray",), top["ray"], RAY_KEYS)
    rc = r.mapping(("raycheck",), top.get("raycheck"), RAYCHECK_KEYS)

    if "address" not in ray:
        raise r.fail(("ray", "address"), "missing; expected ray://<cluster>-head-svc.<ns>.svc.cluster.local:10001")
    try:
        address = parse_ray_address(r.typed(("ray", "address"), ray["address"], str, "a ray:// address"))
    except ValueError as exc:
        raise r.fail(("ray", "address"), str(exc)) from None

    svc = split_service_host(address.host) if not address.is_ip else ServiceName("", None, None)
    namespace = _dns_name(r, ("ray", "namespace"), ray["namespace"]) if "namespace" in ray else None
    if namespace and svc.namespace and namespace != svc.namespace:
        raise r.fail(("ray", "namespace"),
                     f"{namespace!r} contradicts the address, whose service lives in {svc.namespace!r}")
    namespace = namespace or svc.namespace
    if not namespace:
        raise r.fail(("ray", "namespace"),
                     f"missing; needed because {address.host!r} does not name it (<svc>.<ns>.svc.<zone>)")
    cluster_name = _dns_name(r, ("ray", "cluster_name"), ray["cluster_name"]) if "cluster_name" in ray else None
    if svc.service:
        head_service = svc.service
        cluster_name = cluster_name or head_service.removesuffix("-head-svc")
    elif cluster_name:
        head_service = f"{cluster_name}-head-svc"
    else:
        raise r.fail(("ray", "cluster_name"), f"missing; needed because the address is an IP ({address.host})")
    runtime_env = r.typed(("ray", "runtime_env"), ray.get("runtime_env") or {}, dict, "a mapping")

    client_namespace = (
        _dns_name(r, ("raycheck", "client_namespace"), rc["client_namespace"])
        if "client_namespace" in rc else _in_cluster_namespace() or "default"
    )
    service_account = (
        _dns_name(r, ("raycheck", "service_account"), rc["service_account"]) if "service_account" in rc else "default"
    )
    alias = _dns_name(r, ("raycheck", "dashboard_alias"), rc["dashboard_alias"]) if rc.get("dashboard_alias") else None

    # ports.gcs stays a valid key (the contract's target files carry it) and is checked as a port, but
    # raycheck never dials the GCS: its health comes from the dashboard, its port from the head Service.
    ports = r.mapping(("raycheck", "ports"), rc.get("ports"), ("dashboard", "gcs"))
    port_values = {name: _port(r, ("raycheck", "ports", name), ports.get(name, default))
                   for name, default in (("dashboard", 8265), ("gcs", 6379))}

    expect = r.mapping(("raycheck", "expect"), rc.get("expect"), ("gpus", "workers"))
    expected = {k: _count(r, ("raycheck", "expect", k), expect[k]) if k in expect else None for k in ("gpus", "workers")}

    thresholds = r.mapping(("raycheck", "thresholds"), rc.get("thresholds"), ("memory_headroom", "dns_search_lookups"))
    headroom = r.typed(("raycheck", "thresholds", "memory_headroom"), thresholds.get("memory_headroom", 0.10),
                       (int, float), "a fraction between 0 and 1")
    if not 0 <= headroom < 1:
        raise r.fail(("raycheck", "thresholds", "memory_headroom"), f"{headroom} is not a fraction in [0, 1)")
    lookups = _count(r, ("raycheck", "thresholds", "dns_search_lookups"), thresholds.get("dns_search_lookups", 3))

    permissions = _permissions(r, rc.get("required_permissions"))
    client_pod_labels = _labels(r, ("raycheck", "client_pod_labels"), rc["client_pod_labels"]) \
        if "client_pod_labels" in rc else None
    resolv_conf = Path(r.typed(("raycheck", "resolv_conf"), rc.get("resolv_conf", "/etc/resolv.conf"), str, "a path"))
    if not resolv_conf.is_absolute():
        resolv_conf = Path(source).parent / resolv_conf

    target = Target(
        source=source,
        address=address,
        ray_namespace=namespace,
        cluster_name=cluster_name,
        head_service=head_service,
        cluster_domain=svc.zone or "cluster.local",
        client_namespace=client_namespace,
        service_account=service_account,
        dashboard_alias=alias,
        dashboard_port=port_values["dashboard"],
        expect_gpus=expected["gpus"],
        expect_workers=expected["workers"],
        required_permissions=permissions,
        memory_headroom=float(headroom),
        resolv_conf=resolv_conf,
        dns_search_lookups=lookups,
        runtime_env=runtime_env,
        client_pod_labels=client_pod_labels,
    )
    # a relative path in the file is the file's, as resolv_conf above (kubeconfig, kustomize): the same
    # target file works from any directory; on the command line and in the environment it is the shell's
    file_settings = {key: (_beside(source, rc[key]) if SETTING[key].path else rc[key],
                           r.where(("raycheck", key)) + f": raycheck.{key}")
                     for key in SETTING if key in rc}
    return target, file_settings


def _beside(source: str, value: Any) -> Any:
    """``value``, a path written in the target file ``source``, relative to that file's folder."""
    if not isinstance(value, str) or not value:
        return value  # the setting's own parser says what is wrong with it
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(Path(source).parent / path)


def _in_cluster_namespace() -> str | None:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None


def _labels(r: _Reader, path: tuple[str, ...], value: Any) -> dict[str, str]:
    """A label set, as a pod's ``metadata.labels`` holds it: string keys and string values."""
    labels = r.typed(path, value, dict, "a mapping of label to value")
    for key, label in labels.items():
        if not isinstance(label, str):
            raise r.fail(path + (str(key),), f"expected a label value (a string; quote numbers), got {_kind(label)}")
    return dict(labels)


def _port(r: _Reader, path: tuple[str, ...], value: Any) -> int:
    r.typed(path, value, int, "a port number")
    if not 1 <= value <= 65535:
        raise r.fail(path, f"port {value} is outside 1-65535")
    return value


def _count(r: _Reader, path: tuple[str, ...], value: Any) -> int:
    r.typed(path, value, int, "a whole number")
    if value < 0:
        raise r.fail(path, f"{value} is negative")
    return value


VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*")


def _permissions(r: _Reader, value: Any) -> tuple[Permission, ...]:
    path = ("raycheck", "required_permissions")
    if value is None:
        value = [dict(p) for p in DEFAULT_PERMISSIONS]
    r.typed(path, value, list, "a list of {apiGroup, resource, verbs}")
    out = []
    for i, item in enumerate(value):
        ipath = path + (str(i),)
        entry = r.mapping(ipath, item, ("apiGroup", "resource", "verbs"))
        for key in ("resource", "verbs"):
            if key not in entry:
                raise r.fail(ipath + (key,), "missing")
        group = r.typed(ipath + ("apiGroup",), entry.get("apiGroup", ""), str, "an API group ('' for core)")
        resource = r.typed(ipath + ("resource",), entry["resource"], str, "a resource name")
        verbs = r.typed(ipath + ("verbs",), entry["verbs"], list, "a list of verbs")
        for j, verb in enumerate(verbs):
            if verb not in VERBS:
                raise r.fail(ipath + ("verbs", str(j)), f"{verb!r} is not a Kubernetes verb ({', '.join(VERBS)})")
        out.append(Permission(group, resource, tuple(verbs)))
    return tuple(out)
