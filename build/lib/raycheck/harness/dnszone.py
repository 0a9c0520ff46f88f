"""A real DNS server on loopback that answers as cluster DNS would for a scenario's Services.

The records follow the Kubernetes DNS specification (kubernetes/dns, docs/specification.md):
ClusterIP Services get an A record and SRV records for named ports; headless Services get one A
record per ready endpoint (not-ready ones too with ``publishNotReadyAddresses``), per-endpoint
names, SRV records pointing at those names, and no name at all without endpoints (NXDOMAIN);
ExternalName Services get a CNAME. A name that exists without the asked type answers NODATA.

Faults can be set per name for tests and drills: ``servfail``, ``drop`` (never answer) and
``truncate`` (TC bit over UDP, the full answer over TCP).
"""

from __future__ import annotations

import ipaddress
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SRV, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

TTL = 5
MAX_CHASE = 8


@dataclass
class Zone:
    """Names (lower case, no trailing dot) to record type to record data."""

    records: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    faults: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, rtype: str, data: Any) -> None:
        name = name.rstrip(".").lower()
        if data not in self.records[name][rtype]:
            self.records[name][rtype].append(data)

    def remove(self, name: str, rtype: str | None = None) -> None:
        name = name.rstrip(".").lower()
        if rtype is None:
            self.records.pop(name, None)
        elif name in self.records:
            self.records[name].pop(rtype, None)

    def exists(self, name: str) -> bool:
        """A name exists if it has records or is an ancestor of a name that has (empty non-terminal)."""
        return name in self.records or any(other.endswith("." + name) for other in self.records)


def _ready_addresses(service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    publish_not_ready = bool(service.get("spec", {}).get("publishNotReadyAddresses"))
    found: list[tuple[str, str | None]] = []
    for slc in slices:
        for endpoint in slc.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready", True)
            if not ready and not publish_not_ready:
                continue
            for address in endpoint.get("addresses") or []:
                found.append((address, endpoint.get("hostname")))
    return found


def zone_from_objects(objects: Iterable[Mapping[str, Any]], cluster_domain: str = "cluster.local",
                      endpoint_override: Mapping[tuple[str, str], list[str]] | None = None) -> Zone:
    """Derive cluster DNS records from Service and EndpointSlice objects.

    ``endpoint_override`` maps (namespace, service) to addresses that replace the endpoints'
    (the sandbox points the head service at its local Ray head this way).
    """
    objects = list(objects)
    zone = Zone()
    slices: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for obj in objects:
        if obj.get("kind") == "EndpointSlice":
            meta = obj.get("metadata", {})
            owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                slices[(meta.get("namespace", "default"), owner)].append(obj)
    for svc in (o for o in objects if o.get("kind") == "Service"):
        meta, spec = svc.get("metadata", {}), svc.get("spec", {})
        ns, name = meta.get("namespace", "default"), meta["name"]
        fqdn = f"{name}.{ns}.svc.{cluster_domain}"
        named_ports = [p for p in spec.get("ports") or [] if p.get("name")]
        if spec.get("type") == "ExternalName":
            zone.add(fqdn, "CNAME", spec["externalName"].rstrip("."))
            continue
        if spec.get("clusterIP") not in (None, "None", ""):
            for ip in spec.get("clusterIPs") or [spec["clusterIP"]]:
                zone.add(fqdn, "AAAA" if ipaddress.ip_address(ip).version == 6 else "A", ip)
            for port in named_ports:
                proto = port.get("protocol", "TCP").lower()
                zone.add(f"_{port['name']}._{proto}.{fqdn}", "SRV", (port["port"], fqdn))
            continue
        # headless: records per ready endpoint
        if endpoint_override and (ns, name) in endpoint_override:
            endpoints = [(ip, None) for ip in endpoint_override[(ns, name)]]
        else:
            endpoints = _ready_addresses(svc, slices.get((ns, name), []))
        for ip, hostname in endpoints:
            family = "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"
            host = f"{hostname or ip.replace('.', '-').replace(':', '-')}.{fqdn}"
            zone.add(fqdn, family, ip)
            zone.add(host, family, ip)
            for port in named_ports:
                proto = port.get("protocol", "TCP").lower()
                zone.add(f"_{port['name']}._{proto}.{fqdn}", "SRV", (port["port"], host))
    return zone


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    """Answers from a :class:`Zone`, with NODATA, CNAME chasing and per-name faults."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord | None:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        fault = self.zone.faults.get(qname)
        if fault == "drop":
            return None
        if fault == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if fault == "truncate" and getattr(handler, "protocol", "udp") == "udp":
            reply.header.tc = 1
            return reply
        name = qname
        for _ in range(MAX_CHASE):
            entry = self.zone.records.get(name)
            if entry is None:
                if name == qname and not self.zone.exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if "CNAME" in entry and qtype != "CNAME":
                target = entry["CNAME"][0]
                reply.add_answer(RR(name, QTYPE.CNAME, ttl=TTL, rdata=CNAME(target + ".")))
                name = target
                continue
            for data in entry.get(qtype, []):
                reply.add_answer(_rr(name, qtype, data))
            return reply
        return reply


def _rr(name: str, qtype: str, data: Any) -> RR:
    if qtype == "A":
        return RR(name, QTYPE.A, ttl=TTL, rdata=A(data))
    if qtype == "AAAA":
        return RR(name, QTYPE.AAAA, ttl=TTL, rdata=AAAA(data))
    if qtype == "SRV":
        port, target = data
        return RR(name, QTYPE.SRV, ttl=TTL, rdata=SRV(priority=0, weight=100, port=port, target=target + "."))
    if qtype == "CNAME":
        return RR(name, QTYPE.CNAME, ttl=TTL, rdata=CNAME(data + "."))
    raise ValueError(f"unsupported record type {qtype}")


class _QuietLogger:
    def log_recv(self, *a: Any) -> None: ...
    def log_send(self, *a: Any) -> None: ...
    def log_request(self, *a: Any) -> None: ...
    def log_reply(self, *a: Any) -> None: ...
    def log_truncated(self, *a: Any) -> None: ...
    def log_error(self, *a: Any) -> None: ...
    def log_data(self, *a: Any) -> None: ...


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


class DnsZoneServer:
    """dnslib's DNSServer on loopback, UDP and TCP, in background threads."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.zone = zone
        self.host = host
        self.port = port or free_udp_tcp_port(host)
        resolver = ZoneResolver(zone)
        self._servers = [DNSServer(resolver, address=host, port=self.port, tcp=tcp, logger=_QuietLogger())
                         for tcp in (False, True)]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "DnsZoneServer":
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()

    def __enter__(self) -> "DnsZoneServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
