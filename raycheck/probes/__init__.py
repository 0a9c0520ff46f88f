"""Probes: how raycheck asks the target's network a question, each with an explicit deadline.

:class:`Probes` is the session's façade over the probe modules. It remembers every answer, so
the checks that share a fact (the head's addresses, the cluster's versions, the token's fate,
the handshake) ask the network once per run. It also holds what the client side brings: the Ray
auth token (:mod:`raycheck.ray_token`), Ray's TLS variables and the client runtime, chosen for
the cluster's Ray and Python (:mod:`raycheck.runtimes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from raycheck.config import Target
from raycheck.observation import Observation
from raycheck.probes import http, ray_client, tcp
from raycheck.probes.dns import DnsProbe, Lookup, describe_failure, in_cluster
from raycheck.ray_token import RayToken, find_token
from raycheck.runtimes import Runtime, RuntimeUnavailable, cached, choose, describe_interpreter, own
from raycheck.settings import Settings
from raycheck.versions import image_python, known_versions, python_minor

if TYPE_CHECKING:
    from raycheck.cluster.view import ClusterView

# Ray's dashboard answers these without a valid token when token authentication is on (FACTS.md).
AUTH_STATUSES = ("401", "403")


@dataclass(frozen=True)
class ClusterVersions:
    """The cluster's Ray and Python minor as known before connecting, and where each came from."""

    ray: str | None
    ray_source: str | None
    python: str | None  # major.minor
    python_source: str | None


class Probes:
    def __init__(self, target: Target, settings: Settings) -> None:
        self.target = target
        self.settings = settings
        self.timeout = settings.probe_timeout
        self.dns = DnsProbe(settings.dns_server, settings.probe_timeout)
        self.view: ClusterView | None = None
        self.used_runtime: Runtime | None = None  # the runtime the handshake ran in

    def attach_cluster(self, view: ClusterView | None) -> None:
        """The cluster state, when the run reads one: the RayCluster tells Ray and Python versions."""
        if view is not None and self.view is None:
            self.view = view

    # -- names

    def unresolvable_cause(self, lookup: Lookup) -> str | None:
        """The cause to report for a failed lookup; cluster names from outside get their own."""
        if lookup.ok:
            return None
        internal = lookup.name.endswith(f".svc.{self.target.cluster_domain}")
        if internal and self.settings.dns_server is None and not in_cluster() \
                and lookup.error in ("nxdomain", "servfail", "timeout", "no-resolver"):
            return "outside-cluster"
        return lookup.error

    @cached_property
    def head_lookup(self) -> Lookup | None:
        """The head's addresses (None when the address is already an IP)."""
        if self.target.address.is_ip:
            return None
        return self.dns.addresses(self.target.head_host)

    def head_ips(self) -> tuple[list[str], Observation | None]:
        """Addresses to connect to, or the observation that explains why there are none."""
        lookup = self.head_lookup
        if lookup is None:
            return [self.target.head_host], None
        if lookup.ok:
            return [r for r in lookup.records], None
        return [], Observation(False, f"cannot resolve {lookup.name}: {describe_failure(lookup, self.dns.via)}",
                               cause="unresolved")

    def _first_answer(self, probe, port: int) -> Observation:  # type: ignore[no-untyped-def]
        ips, failure = self.head_ips()
        if failure is not None:
            return failure
        obs = None
        for ip in ips:
            obs = probe(ip, port, self.timeout)
            if obs.ok:
                break
        assert obs is not None
        return obs

    def _host(self) -> str:
        ips, _ = self.head_ips()
        return f"[{ips[0]}]" if ":" in ips[0] else ips[0]

    # -- what the client brings

    @cached_property
    def token(self) -> RayToken:
        return find_token(self.settings.auth_token_file)

    @cached_property
    def tls(self) -> tcp.TlsSettings | None:
        return tcp.TlsSettings.from_env()

    @cached_property
    def explicit_runtime(self) -> Runtime | None:
        """The interpreter ``--ray-python`` names, described by running it once."""
        if self.settings.ray_python is None:
            return None
        try:
            return describe_interpreter(self.settings.ray_python, "--ray-python")
        except RuntimeUnavailable as exc:
            return Runtime(self.settings.ray_python, None, "unknown", f"--ray-python, which fails: {exc}")

    @cached_property
    def runtimes(self) -> list[Runtime]:
        """The runtimes to choose from: the one ``--ray-python`` names, else raycheck's own and the cached ones."""
        if self.explicit_runtime is not None:
            return [self.explicit_runtime]
        return [own(), *cached()]

    def pick_runtime(self, ray: str | None, minor: str | None) -> Runtime | None:
        return choose(ray, minor, self.runtimes)

    # -- ports

    @cached_property
    def client_greeting(self) -> Observation:
        """TCP connect plus the gRPC greeting on the client port (inside TLS when Ray's TLS variables
        are set): the handshake's pre-check. A plaintext greeting the port drops, on a port that
        completes a TLS handshake, is cause ``tls``."""
        greeting = partial(tcp.grpc_greeting, tls=self.tls, server_name=self.target.head_host)
        obs = self._first_answer(greeting, self.target.client_port)
        if obs.ok or self.tls is not None or obs.cause not in ("closed", "not-grpc"):
            return obs
        ip = self.head_ips()[0][0]
        tls = tcp.speaks_tls(ip, self.target.client_port, self.timeout)
        if tls is None:
            return obs
        return Observation(False, f"{tcp.endpoint(ip, self.target.client_port)} answers a TLS handshake ({tls}), not "
                           "plaintext gRPC: the head runs with RAY_USE_TLS=1 and raycheck has no TLS settings "
                           "(RAY_USE_TLS, RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY, RAY_TLS_CA_CERT)",
                           cause="tls", figures={"tls_seen": tls}, elapsed_s=obs.elapsed_s)

    @cached_property
    def dashboard_version(self) -> tuple[Observation, dict[str, Any] | None]:
        """``GET /api/version`` on the dashboard (which also proves the port answers HTTP), with
        raycheck's token when it holds one."""
        ips, failure = self.head_ips()
        if failure is not None:
            return failure, None
        reachable = self._first_answer(tcp.tcp_connect, self.target.dashboard_port)
        if not reachable.ok:
            return reachable, None
        return http.get_json(f"http://{self._host()}:{self.target.dashboard_port}/api/version", self.timeout,
                             self.token.header())

    @cached_property
    def auth(self) -> Observation | None:
        """Whether the cluster requires a token and whether raycheck's is accepted, from the
        dashboard's answers with and without it; None when the dashboard cannot tell."""
        obs, _ = self.dashboard_version
        token = self.token
        status = obs.figures.get("http_status")
        said = f" ({obs.figures['http_body']})" if obs.figures.get("http_body") else ""
        figures = {"token_source": token.source or "none", "token_required": "yes"}
        off = {**figures, "token_required": "no"}
        if obs.ok and token.value is None:
            return Observation(True, "the dashboard answers /api/version without a token: the cluster does not "
                               "require token authentication", figures=off)
        if obs.ok:
            bare, _ = http.get(f"http://{self._host()}:{self.target.dashboard_port}/api/version", self.timeout)
            without = bare.figures.get("http_status")
            if without in AUTH_STATUSES:
                return Observation(True, f"the cluster requires token authentication (HTTP {without} without a "
                                   f"token) and accepts raycheck's, from {token.source}", figures=figures)
            return Observation(True, f"the cluster does not require token authentication (raycheck's token, from "
                               f"{token.source}, is not needed)", figures=off)
        if status not in AUTH_STATUSES:
            return None
        if token.value is None:
            return Observation(False, f"the dashboard answered HTTP {status}{said} without a token: the cluster "
                               "requires token authentication (RAY_AUTH_MODE=token), and raycheck found no token "
                               f"({token.where_looked()})", cause="missing-token",
                               figures={**figures, "http_status": status})
        return Observation(False, f"the dashboard answered HTTP {status}{said} to raycheck's token from "
                           f"{token.source}: the cluster requires token authentication and refuses this token "
                           "(another cluster's, or the Secret was regenerated)", cause="invalid-token",
                           figures={**figures, "http_status": status})

    def auth_refused(self) -> bool:
        """The dashboard showed that a handshake would be refused for want of a (valid) token."""
        return self.auth is not None and not self.auth.ok

    @cached_property
    def gcs_health(self) -> Observation:
        """``GET /api/gcs_healthz``: the dashboard's view of the head's GCS."""
        ips, failure = self.head_ips()
        if failure is not None:
            return failure
        obs, body = http.get(f"http://{self._host()}:{self.target.dashboard_port}/api/gcs_healthz", self.timeout,
                             self.token.header())
        if obs.ok:
            return Observation(True, f"{obs.message}: {body[:40].decode(errors='replace').strip() or 'empty body'}",
                               elapsed_s=obs.elapsed_s)
        return obs

    # -- Ray

    @cached_property
    def cluster_versions(self) -> ClusterVersions:
        """The cluster's Ray (dashboard, else the RayCluster's spec.rayVersion) and Python minor
        (the head image's tag), as known before any handshake."""
        _, body = self.dashboard_version
        ray, ray_source = (body or {}).get("ray_version"), "dashboard /api/version"
        raycluster = self.view.raycluster_if_known() if self.view is not None else None
        spec = (raycluster or {}).get("spec") or {}
        if ray is None and spec.get("rayVersion"):
            ray, ray_source = str(spec["rayVersion"]), f"RayCluster {self.target.cluster_name} spec.rayVersion"
        python, python_source = None, None
        containers = (((spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}).get("containers")
        if containers and isinstance(containers[0], dict) and containers[0].get("image"):
            found = image_python(str(containers[0]["image"]))
            if found is not None:
                python, python_source = found
        return ClusterVersions(ray, ray_source if ray else None, python, python_source)

    @cached_property
    def handshake(self) -> Observation:
        """``ray.init`` against the first address that passed the pre-check, under a hard deadline,
        in the runtime that matches the cluster's versions as known. When the head answers with a
        version mismatch (it says its own versions), once more in the runtime that matches those."""
        pre = self.client_greeting
        if not pre.ok:
            return Observation(False, f"pre-check failed, handshake not attempted: {pre.message}", cause=pre.cause)
        known = self.cluster_versions
        runtime = self.pick_runtime(known.ray, known.python) or self.runtimes[0]
        obs = self._handshake_in(runtime)
        if obs.cause == "version-mismatch":
            better = self.pick_runtime(obs.figures.get("cluster_ray_version"),
                                       python_minor(obs.figures.get("cluster_python_version")))
            if better is not None and better.python != runtime.python:
                runtime, obs = better, self._handshake_in(better)
        self.used_runtime = runtime
        return obs

    def _handshake_in(self, runtime: Runtime, gpu_tasks: int = 0, deadline: float | None = None) -> Observation:
        # the token goes where Ray's client reads it, unless the dashboard showed it is not needed
        needed = self.auth is None or self.auth.figures.get("token_required") != "no"
        tls_name = self.target.head_host if self.tls is not None and not self.target.address.is_ip else ""
        return ray_client.handshake(f"ray://{self._host()}:{self.target.client_port}",
                                    deadline or self.settings.handshake_timeout, gpu_tasks=gpu_tasks,
                                    python=runtime.python, env=self.token.child_env() if needed else {},
                                    tls_name=tls_name)

    def gpu_tasks(self, count: int, deadline: float) -> Observation:
        """The deep GPU probe: ``count`` num_gpus=1 tasks through Ray Client, under a hard deadline,
        in the handshake's runtime.

        The pre-check is asked again, not reused: the head may have gone since the handshake, and
        ``ray.init`` against a dead port would spend the whole deadline retrying."""
        greeting = partial(tcp.grpc_greeting, tls=self.tls, server_name=self.target.head_host)
        pre = self._first_answer(greeting, self.target.client_port)
        if not pre.ok:
            return Observation(False, f"the client port stopped answering after the handshake: {pre.message}",
                               cause="head-gone")
        runtime = self.used_runtime or self.pick_runtime(self.cluster_versions.ray, self.cluster_versions.python) \
            or self.runtimes[0]
        return self._handshake_in(runtime, gpu_tasks=count, deadline=deadline)

    def known_versions(self) -> dict[str, str]:
        """The cluster's versions as far as observed, and the client runtime's, for messages and remediation."""
        body = self.dashboard_version[1] if "dashboard_version" in self.__dict__ else None
        figures = self.handshake.figures if "handshake" in self.__dict__ else {}
        known = self.cluster_versions if "cluster_versions" in self.__dict__ else None
        runtime = self.used_runtime or (self.runtimes[0] if "runtimes" in self.__dict__ else None)
        return known_versions(body, figures, cluster_python=known.python if known else None,
                              runtime=(runtime.ray_version, runtime.python_version) if runtime else None)
