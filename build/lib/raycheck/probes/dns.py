"""DNS probes through dnspython, each bounded by the probe timeout.

Names are always queried as absolute names, except by :func:`search_path`, which replays what
the pod's resolver does with its search list and ``ndots``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from raycheck.settings import DnsServer
from raycheck.observation import ms

MAX_CNAME_HOPS = 8


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the kubelet sets this for every container)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


@dataclass(frozen=True)
class Lookup:
    """The outcome of one query: records, or the reason there are none."""

    name: str
    rdtype: str
    records: tuple[str, ...]
    error: str | None  # nxdomain, nodata, servfail, timeout, no-resolver
    detail: str
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return bool(self.records)


class DnsProbe:
    """Queries one resolver: the given server, or the system's when none is given."""

    def __init__(self, server: DnsServer | None, timeout: float) -> None:
        self.server = server
        self.timeout = timeout
        self._resolver: dns.resolver.Resolver | None = None
        self._resolver_error: str | None = None
        if server is not None:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [server.host]
            resolver.port = server.port
            self._resolver = resolver
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                self._resolver_error = f"no system resolver configured ({exc})"
        if self._resolver is not None:
            self._resolver.timeout = timeout
            self._resolver.lifetime = timeout
            self._resolver.cache = None

    @property
    def via(self) -> str:
        if self.server is not None:
            return str(self.server)
        if self._resolver is not None and self._resolver.nameservers:
            return f"system resolver {self._resolver.nameservers[0]}"
        return "system resolver"

    def query(self, name: str, rdtype: str) -> Lookup:
        """One query for an absolute name, never following the search list."""
        start = time.monotonic()
        if self._resolver is None:
            return Lookup(name, rdtype, (), "no-resolver", self._resolver_error or "no resolver", 0.0)
        try:
            answer = self._resolver.resolve(dns.name.from_text(name), rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(name, rdtype, (), "nxdomain", "NXDOMAIN", time.monotonic() - start)
        except dns.resolver.NoAnswer:
            return Lookup(name, rdtype, (), "nodata", f"no {rdtype} record (NOERROR, empty answer)",
                          time.monotonic() - start)
        except dns.resolver.NoNameservers as exc:
            return Lookup(name, rdtype, (), "servfail", _servfail_detail(exc), time.monotonic() - start)
        except dns.exception.Timeout:
            return Lookup(name, rdtype, (), "timeout", f"no answer within {self.timeout:g} s",
                          time.monotonic() - start)
        except dns.exception.DNSException as exc:
            return Lookup(name, rdtype, (), "servfail", f"{type(exc).__name__}: {exc}", time.monotonic() - start)
        records = tuple(sorted(_rdata_text(r) for r in answer))
        return Lookup(name, rdtype, records, None, "", time.monotonic() - start)

    def addresses(self, name: str) -> Lookup:
        """A and AAAA together: addresses, or the more telling of the two errors."""
        a = self.query(name, "A")
        if a.error in ("timeout", "no-resolver", "nxdomain"):
            return a
        aaaa = self.query(name, "AAAA")
        records = a.records + aaaa.records
        elapsed = a.elapsed_s + aaaa.elapsed_s
        if records:
            return Lookup(name, "A/AAAA", records, None, "", elapsed)
        worst = a if a.error != "nodata" else aaaa
        return Lookup(name, "A/AAAA", (), worst.error, worst.detail, elapsed)

    def cname_chain(self, name: str) -> tuple[list[str], Lookup | None, str | None]:
        """Follow CNAMEs hop by hop: (chain of names, the failed lookup if any, 'loop' if looping)."""
        chain = [name]
        for _ in range(MAX_CNAME_HOPS):
            lookup = self.query(chain[-1], "CNAME")
            if not lookup.ok:  # the chain ends here; only a failure on the first name is the chain's own
                return chain, (lookup if len(chain) == 1 and lookup.error != "nodata" else None), None
            nxt = lookup.records[0].rstrip(".")
            if nxt in chain:
                chain.append(nxt)
                return chain, None, "loop"
            chain.append(nxt)
        return chain, None, "loop"


def _rdata_text(rdata: object) -> str:
    if getattr(rdata, "rdtype", None) == dns.rdatatype.SRV:
        return f"{rdata.port} {str(rdata.target).rstrip('.')}"  # type: ignore[attr-defined]
    if getattr(rdata, "rdtype", None) == dns.rdatatype.CNAME:
        return str(rdata.target).rstrip(".")  # type: ignore[attr-defined]
    return str(rdata)


def _servfail_detail(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for _server, _tcp, _port, _err, response in errors:
        if response is not None and hasattr(response, "rcode"):
            return f"{dns.rcode.to_text(response.rcode())} from the server"
    return "SERVFAIL (no server could answer)"


# ----------------------------------------------------------------------------- search path


@dataclass(frozen=True)
class ResolvConf:
    search: tuple[str, ...]
    ndots: int
    nameservers: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> "ResolvConf":
        search: tuple[str, ...] = ()
        ndots = 1
        nameservers: list[str] = []
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = raw.split("#", 1)[0].split(";", 1)[0].split()
            if not words:
                continue
            if words[0] in ("search", "domain"):
                search = tuple(w.rstrip(".") for w in words[1:])
            elif words[0] == "nameserver" and len(words) > 1:
                nameservers.append(words[1])
            elif words[0] == "options":
                for opt in words[1:]:
                    if opt.startswith("ndots:") and opt[6:].isdigit():
                        ndots = min(int(opt[6:]), 15)
        return cls(search, ndots, tuple(nameservers))


def search_candidates(name: str, absolute: bool, conf: ResolvConf) -> list[str]:
    """The names a glibc/musl resolver tries, in order, for ``name``."""
    if absolute:
        return [name]
    expanded = [f"{name}.{domain}" for domain in conf.search]
    if name.count(".") >= conf.ndots:
        return [name, *expanded]
    return [*expanded, name]


@dataclass(frozen=True)
class SearchWalk:
    """What the pod's resolver does for the Ray address: each candidate and its lookup."""

    conf: ResolvConf
    lookups: tuple[Lookup, ...]
    winner: Lookup | None

    @property
    def wasted(self) -> int:
        """Queries (per address family) spent before the name that answered."""
        if self.winner is None:
            return len(self.lookups)
        return self.lookups.index(self.winner)

    @property
    def elapsed_s(self) -> float:
        return sum(lookup.elapsed_s for lookup in self.lookups)


def walk_search_path(probe: DnsProbe, name: str, absolute: bool, conf: ResolvConf) -> SearchWalk:
    """Query the candidates in resolver order until one answers, as the pod's libc would."""
    lookups: list[Lookup] = []
    for candidate in search_candidates(name, absolute, conf):
        lookup = probe.query(candidate, "A")
        lookups.append(lookup)
        if lookup.ok:
            return SearchWalk(conf, tuple(lookups), lookup)
    return SearchWalk(conf, tuple(lookups), None)


def describe_failure(lookup: Lookup, via: str) -> str:
    return f"{lookup.name} {lookup.rdtype}: {lookup.detail} via {via} after {ms(lookup.elapsed_s)}"
