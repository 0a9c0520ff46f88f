"""The connectivity checks' logic: from probe answers to one observation per check.

Each function returns an :class:`Observation` whose message states what was seen, with the
figures, whether it passes or not; ``cause`` picks the remediation variant.
"""

from __future__ import annotations

from raycheck.cluster.view import ClusterView
from raycheck.checks.k8s import head_service_state
from raycheck.observation import Observation, ms
from raycheck.probes import Probes
from raycheck.versions import local_ray_version, python_minor
from raycheck.probes.dns import ResolvConf, describe_failure, walk_search_path


def head_service(probes: Probes, view: ClusterView | None = None) -> Observation:
    """The head name resolves; when it does not, cluster state (if any) says whether the Service is the cause."""
    lookup = probes.head_lookup
    assert lookup is not None, "head_service() needs a DNS name, not an IP address"
    if lookup.ok:
        return Observation(True, f"{lookup.name} -> {', '.join(lookup.records)} in {ms(lookup.elapsed_s)} "
                           f"via {probes.dns.via}", elapsed_s=lookup.elapsed_s)
    cause = probes.unresolvable_cause(lookup)
    message = describe_failure(lookup, probes.dns.via)
    if cause == "outside-cluster":
        message += " (this run is outside the cluster: no KUBERNETES_SERVICE_HOST and no --dns-server)"
    known = head_service_state(view)
    if known is not None and lookup.error == "nxdomain":
        cause, why = known
        message += f"; cluster state: {why}"
    return Observation(False, message, cause=cause, elapsed_s=lookup.elapsed_s)


def client_srv(probes: Probes) -> Observation:
    target = probes.target
    name = f"_client._tcp.{target.head_fqdn}"
    lookup = probes.dns.query(name, "SRV")
    if not lookup.ok:
        return Observation(False, describe_failure(lookup, probes.dns.via), cause=probes.unresolvable_cause(lookup))
    ports = sorted({int(record.split()[0]) for record in lookup.records})
    if target.client_port in ports:
        return Observation(True, f"{name} SRV names port {target.client_port} "
                           f"({len(lookup.records)} record{'s' if len(lookup.records) != 1 else ''})")
    shown = ", ".join(map(str, ports))
    return Observation(False, f"{name} SRV names port {shown}, not {target.client_port}", cause="wrong-port",
                       figures={"srv_port": shown})


def dashboard_alias(probes: Probes) -> Observation:
    target = probes.target
    alias = target.alias_fqdn
    assert alias is not None, "dashboard_alias() needs raycheck.dashboard_alias"
    chain, failed, loop = probes.dns.cname_chain(alias)
    path = " -> ".join(chain)
    if loop:
        return Observation(False, f"CNAME loop: {path}", cause="loop", figures={"alias_chain": path})
    if failed is not None:
        return Observation(False, describe_failure(failed, probes.dns.via),
                           cause=probes.unresolvable_cause(failed))
    if len(chain) == 1:
        return Observation(False, f"{alias} has no CNAME: it is not an ExternalName Service", cause="not-cname")
    if chain[1] != target.head_fqdn:
        return Observation(False, f"{alias} is a CNAME for {chain[1]}, not for {target.head_fqdn}",
                           cause="wrong-target", figures={"alias_target": chain[1]})
    final = probes.dns.addresses(chain[-1])
    if not final.ok:
        return Observation(False, f"{path}, which does not resolve: {final.detail}", cause="dangling")
    return Observation(True, f"{path} -> {', '.join(final.records)}")


def search_path(probes: Probes) -> Observation | None:
    """The pod resolver's walk through the search list; None when there is no resolv.conf."""
    target = probes.target
    try:
        conf = ResolvConf.read(target.resolv_conf)
    except OSError:
        return None
    walk = walk_search_path(probes.dns, target.head_host, target.address.absolute, conf)
    dots = target.head_host.count(".")
    setting = f"{dots} dots vs ndots:{conf.ndots}, {len(conf.search)} search domains"
    if walk.winner is None:
        return Observation(False, f"no search-list candidate for {target.head_host} resolves ({setting})",
                           cause="too-many-lookups",
                           figures={"wasted": str(walk.wasted), "threshold": str(target.dns_search_lookups)})
    slow = next((lookup for lookup in walk.lookups if lookup.error == "timeout"), None)
    if walk.winner.name != target.head_host:
        return Observation(False, f"{walk.winner.name} answers ({', '.join(walk.winner.records)}) before "
                           f"{target.head_host} is tried ({setting})", cause="hijacked",
                           figures={"winner": walk.winner.name, "winner_addresses": ", ".join(walk.winner.records)})
    if slow is not None:
        return Observation(False, f"search candidate {slow.name} timed out after {ms(slow.elapsed_s)} before "
                           f"{target.head_host} was tried ({setting})", cause="slow-candidate",
                           figures={"slow_candidate": slow.name})
    cost = f"{walk.wasted} search-domain lookups (x2 with AAAA) before the name, {ms(walk.elapsed_s)} ({setting})"
    if walk.wasted > target.dns_search_lookups:
        return Observation(False, f"{cost}; threshold {target.dns_search_lookups}", cause="too-many-lookups",
                           figures={"wasted": str(walk.wasted), "threshold": str(target.dns_search_lookups)})
    if target.address.absolute:
        return Observation(True, f"absolute name {target.head_host}.: no search-list lookups")
    return Observation(True, f"{cost}; within the threshold of {target.dns_search_lookups}")


def client(probes: Probes) -> Observation:
    return _named(probes, probes.client_greeting)


def dashboard(probes: Probes) -> Observation:
    obs, body = probes.dashboard_version
    if obs.ok and body is not None:
        return Observation(True, f"{obs.message}: Ray {body.get('ray_version', '?')} dashboard",
                           elapsed_s=obs.elapsed_s)
    return _named(probes, obs)


def gcs_health(probes: Probes) -> Observation:
    return probes.gcs_health


def _named(probes: Probes, obs: Observation) -> Observation:
    """Prefix an address-level observation with the name the user wrote."""
    if probes.target.address.is_ip:
        return obs
    return Observation(obs.ok, f"{probes.target.head_host}: {obs.message}", obs.cause, obs.figures, obs.data,
                       obs.elapsed_s)


def version_match(probes: Probes) -> tuple[Observation, str | None]:
    """Compare local Ray/Python with the cluster's: (observation, blocking check id or None).

    The cluster's Ray version comes from the dashboard's ``/api/version`` when it answers; the
    Python version only from the Ray Client handshake, which is asked when the client port passed
    its pre-check.
    """
    local_ray = local_ray_version()
    if local_ray is None:
        return Observation(False, "Ray is not installed where raycheck runs", cause="no-ray"), None
    _, body = probes.dashboard_version
    cluster_ray = (body or {}).get("ray_version")
    source = "dashboard /api/version"
    cluster_python = None
    if cluster_ray in (None, local_ray) and probes.client_greeting.ok:
        handshake = probes.handshake
        cluster_python = handshake.figures.get("cluster_python_version")
        if cluster_ray is None and handshake.figures.get("cluster_ray_version"):
            cluster_ray, source = handshake.figures["cluster_ray_version"], "Ray Client handshake"
    if cluster_ray is None:
        blocker = None if probes.client_greeting.ok else "port.client"
        return Observation(False, "the cluster's Ray version is unknown: neither the dashboard nor the "
                           "Ray Client handshake told it", cause="unknown"), blocker
    versions = probes.known_versions()
    local_python = versions["local_python_version"]
    figures = {**versions, "cluster_ray_version": cluster_ray,
               "cluster_python_version": cluster_python or versions["cluster_python_version"]}
    python_part = f", Python {python_minor(cluster_python)} vs {python_minor(local_python)}" if cluster_python else \
        f", cluster Python unknown (local {python_minor(local_python)})"
    mismatched = cluster_ray != local_ray or (cluster_python and python_minor(cluster_python) != python_minor(local_python))
    message = f"cluster Ray {cluster_ray} ({source}) vs local Ray {local_ray}{python_part}"
    if mismatched:
        # the same Ray on both sides: only Python differs, and "pip install ray" would not help
        cause = "python-mismatch" if cluster_ray == local_ray else "version-mismatch"
        return Observation(False, message, cause=cause, figures=figures), None
    return Observation(True, message, figures=figures), None


def client_handshake(probes: Probes) -> Observation:
    return probes.handshake
