"""Probes: how raycheck asks the target's network a question, each with an explicit deadline.

:class:`Probes` is the session's façade over the probe modules. It remembers every answer, so
the checks that share a fact (the head's addresses, the cluster's Ray version, the handshake)
ask the network once per run.
"""

from __future__ import annotations

from functools import cached_property

from raycheck.config import Target
from raycheck.settings import Settings
from raycheck.observation import Observation
from raycheck.probes import http, ray_client, tcp
from raycheck.probes.dns import DnsProbe, Lookup, describe_failure, in_cluster
from raycheck.versions import known_versions


class Probes:
    def __init__(self, target: Target, settings: Settings) -> None:
        self.target = target
        self.settings = settings
        self.timeout = settings.probe_timeout
        self.dns = DnsProbe(settings.dns_server, settings.probe_timeout)

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

    # -- ports

    @cached_property
    def client_greeting(self) -> Observation:
        """TCP connect plus the gRPC greeting on the client port: the handshake's pre-check."""
        return self._first_answer(tcp.grpc_greeting, self.target.client_port)

    @cached_property
    def dashboard_version(self) -> tuple[Observation, dict | None]:
        """``GET /api/version`` on the dashboard (which also proves the port answers HTTP)."""
        ips, failure = self.head_ips()
        if failure is not None:
            return failure, None
        reachable = self._first_answer(tcp.tcp_connect, self.target.dashboard_port)
        if not reachable.ok:
            return reachable, None
        host = f"[{ips[0]}]" if ":" in ips[0] else ips[0]
        return http.get_json(f"http://{host}:{self.target.dashboard_port}/api/version", self.timeout)

    @cached_property
    def gcs_health(self) -> Observation:
        """``GET /api/gcs_healthz``: the dashboard's view of the head's GCS."""
        ips, failure = self.head_ips()
        if failure is not None:
            return failure
        host = f"[{ips[0]}]" if ":" in ips[0] else ips[0]
        obs, body = http.get(f"http://{host}:{self.target.dashboard_port}/api/gcs_healthz", self.timeout)
        if obs.ok:
            return Observation(True, f"{obs.message}: {body[:40].decode(errors='replace').strip() or 'empty body'}",
                               elapsed_s=obs.elapsed_s)
        return obs

    # -- Ray

    @cached_property
    def handshake(self) -> Observation:
        """``ray.init`` against the first address that passed the pre-check, under a hard deadline."""
        pre = self.client_greeting
        if not pre.ok:
            return Observation(False, f"pre-check failed, handshake not attempted: {pre.message}", cause=pre.cause)
        ips, _ = self.head_ips()
        host = f"[{ips[0]}]" if ":" in ips[0] else ips[0]
        return ray_client.handshake(f"ray://{host}:{self.target.client_port}", self.settings.handshake_timeout)

    def gpu_tasks(self, count: int, deadline: float) -> Observation:
        """The deep GPU probe: ``count`` num_gpus=1 tasks through Ray Client, under a hard deadline.

        The pre-check is asked again, not reused: the head may have gone since the handshake, and
        ``ray.init`` against a dead port would spend the whole deadline retrying."""
        pre = self._first_answer(tcp.grpc_greeting, self.target.client_port)
        if not pre.ok:
            return Observation(False, f"the client port stopped answering after the handshake: {pre.message}",
                               cause="head-gone")
        ips, _ = self.head_ips()
        host = f"[{ips[0]}]" if ":" in ips[0] else ips[0]
        return ray_client.handshake(f"ray://{host}:{self.target.client_port}", deadline, gpu_tasks=count)

    def known_versions(self) -> dict[str, str]:
        """Local and (as far as already observed) cluster versions, for messages and remediation."""
        body = self.dashboard_version[1] if "dashboard_version" in self.__dict__ else None
        figures = self.handshake.figures if "handshake" in self.__dict__ else {}
        return known_versions(body, figures)
