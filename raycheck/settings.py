"""How to run: the one table of run settings, and how they are merged.

Every setting is one :data:`SETTINGS` row: its key, what parses and checks its value, its
option's metavar and help. The plugin registers a pytest option for each row (``--probe-timeout``),
the environment is read from ``RAYCHECK_<KEY>``, and the target file's ``raycheck:`` section
accepts the key itself; command line beats environment beats the target file. A bad value is a
:class:`~raycheck.config.ConfigError` that names where it came from.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from raycheck.errors import ConfigError

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """How to run: where to resolve, where to write, what fails the run, how long to wait."""

    dns_server: DnsServer | None = None
    report_dir: Path = Path("reports")
    fail_on: str = "critical"
    probe_timeout: float = 1.0  # 15x the slowest live answer measured under load (docs/BENCHMARKS.md)
    # Kubernetes API requests: a list of a busy namespace through a loaded API server (API Priority and
    # Fairness queues it) takes seconds where a probe of the head takes milliseconds
    api_timeout: float = 5.0
    handshake_timeout: float = 15.0
    deep_timeout: float = 120.0
    budget: float | None = None
    pushgateway: str | None = None
    push_job: str = "raycheck"
    json_line: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    cluster_dump: Path | None = None
    with_manifests: Path | None = None
    verify_remediations: bool | None = None  # None: on for a dump or manifests, off for a live API
    ray_python: str | None = None
    auth_token_file: Path | None = None

    def source_flags(self) -> list[str]:
        """The options that say where cluster state and DNS answers come from, for a rerun command."""
        flags = []
        for key in ("cluster_dump", "kubeconfig", "context", "with_manifests", "dns_server"):
            value = getattr(self, key)
            if value is not None:
                flags.append(f"{SETTING[key].option}={value}")
        return flags


# ----------------------------------------------------------------------------- parsers


def _int_port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not in 1-65535")
    return int(text)


def _dns_server(value: Any) -> DnsServer:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not HOST[:PORT]")
    host, port = value, 53
    if value.startswith("["):
        host, _, tail = value[1:].partition("]")
        if tail:
            port = _int_port(tail.removeprefix(":"))
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = _int_port(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r}: the DNS server must be an IP address (HOST[:PORT])") from None
    return DnsServer(host, port)


def _positive_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected seconds, got a boolean")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"{value!r} must be more than 0 and at most 3600 seconds")
    return seconds


def _fail_on(value: Any) -> str:
    if value not in SEVERITIES:
        raise ValueError(f"{value!r} is not one of {', '.join(SEVERITIES)}")
    return str(value)


def _folder(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a folder path")
    return Path(value)


def _existing_path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a path")
    path = Path(value).expanduser()
    if not path.exists():
        raise ValueError(f"{value!r}: no such file or folder")
    return path


def _existing_file(value: Any) -> str:
    return str(_existing_path(value))


def _interpreter(value: Any) -> str:
    path = _existing_path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError(f"{value!r} is not an executable Python interpreter")
    return str(path)


def _file_path(value: Any) -> Path:
    """A file that may not exist yet (a Secret not mounted is a finding, not bad input)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a file path")
    return Path(value).expanduser()


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a context name")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _job_name(value: Any) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(f"{value!r} is not a job name (letters, digits, '-', '_', '.')")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    key: str
    parse: Callable[[Any], Any]
    metavar: str | None  # None: a flag (store_true; the environment takes 1/0)
    help: str
    path: bool = False  # a file or folder: relative to the target file when written there

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return "RAYCHECK_" + self.key.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("dns_server", _dns_server, "HOST[:PORT]", "resolve through this DNS server instead of the system resolver"),
    Setting("report_dir", _folder, "DIR", "where raycheck.json, raycheck.md and junit.xml go (default reports/)",
            path=True),
    Setting("fail_on", _fail_on, "LEVEL", "exit 1 when a check at or above LEVEL fails: critical (default), warning, info"),
    Setting("probe_timeout", _positive_seconds, "SECONDS", "deadline of each network probe of the Ray head (default 1)"),
    Setting("api_timeout", _positive_seconds, "SECONDS", "deadline of each Kubernetes API request (default 5)"),
    Setting("handshake_timeout", _positive_seconds, "SECONDS",
            "hard deadline of the Ray Client handshake subprocess (default 15)"),
    Setting("deep_timeout", _positive_seconds, "SECONDS",
            "hard deadline of the opt-in checks that run code on the cluster (default 120)"),
    Setting("budget", _positive_seconds, "SECONDS",
            "global budget of the run: checks not started when it is spent are reported skipped"),
    Setting("pushgateway", _url, "URL", "also push the metrics of raycheck.prom to this Prometheus Pushgateway"),
    Setting("push_job", _job_name, "NAME",
            "the Pushgateway job the metrics are pushed as (default raycheck; one per CronJob, for its own alert)"),
    Setting("json_line", _flag, None, "print the JSON report as one line at the end (for log pipelines)"),
    Setting("kubeconfig", _existing_file, "FILE",
            "read cluster state live through this kubeconfig (default: in-cluster, then $KUBECONFIG)", path=True),
    Setting("context", _name, "NAME", "kubeconfig context"),
    Setting("cluster_dump", _existing_path, "DIR",
            "read cluster state from files (kubectl get -o yaml/json, kubectl cluster-info dump) instead of the API", path=True),
    Setting("with_manifests", _existing_path, "PATH",
            "overlay these manifests on the cluster state as if applied (pre-deploy gate)", path=True),
    Setting("ray_python", _interpreter, "PATH",
            "run the Ray Client side (handshake, deep GPU tasks) in this interpreter: the cluster's Ray and Python "
            "(default: raycheck's own or a matching `raycheck client-env`)", path=True),
    Setting("auth_token_file", _file_path, "FILE",
            "the cluster's Ray auth token, in a file (a mounted Secret; default: RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)", path=True),
    Setting("verify_remediations", _flag, None,
            "apply each failed check's remediation to a copy of the cluster state and decide the check again "
            "(on by default from a dump or manifests; live, on a snapshot read once; =0 turns it off)"),
)
SETTING: dict[str, Setting] = {s.key: s for s in SETTINGS}


def resolve_settings(
    cli: Mapping[str, Any], env: Mapping[str, str], from_file: Mapping[str, tuple[Any, str]]
) -> Settings:
    """Merge settings: command line over ``RAYCHECK_*`` environment over the target file.

    ``from_file`` maps a key to its raw value and where it was written (``t.yaml:7: raycheck.fail_on``)."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        key = setting.key
        if cli.get(key) is not None:
            raw, where = cli[key], setting.option
        elif env.get(setting.env):
            raw, where = env[setting.env], setting.env
        elif key in from_file:
            raw, where = from_file[key]
        else:
            continue
        try:
            values[key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return Settings(**values)
