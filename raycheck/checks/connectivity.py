"""The connectivity checks' logic: from probe answers to one observation per check.

Each function returns an :class:`Observation` whose message states what was seen, with the
figures, whether it passes or not; ``cause`` picks the remediation variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raycheck.cluster.view import ClusterView
from raycheck.checks.k8s import client_path, declare_client_port, head_service_state
from raycheck.cluster.coverage import NoEvidence
from raycheck.cluster.source import ClusterReadError
from raycheck.model.raycluster_patch import as_json
from raycheck.observation import Observation, ms
from raycheck.probes import AUTH_STATUSES, Probes
from raycheck.runtimes import Runtime, build_command
from raycheck.versions import default_python, python_minor
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


def client_srv(probes: Probes, view: ClusterView | None = None) -> Observation:
    """The SRV record of the client port exists (cluster DNS publishes named ports only); where it does
    not and the state holds the RayCluster, the patch that declares the port by name."""
    target = probes.target
    name = f"_client._tcp.{target.head_fqdn}"
    lookup = probes.dns.query(name, "SRV")
    if not lookup.ok:
        cause = probes.unresolvable_cause(lookup)
        figures = {}
        cluster = view.raycluster_if_known() if view is not None and cause == "nxdomain" else None
        if cluster is not None:
            ops = declare_client_port(cluster, target.client_port)
            cause, figures = ("nxdomain" if ops else "nxdomain-stale"), {"client_port_patch": as_json(ops)}
        elif cause == "nxdomain":
            cause = "nxdomain-by-hand"
        return Observation(False, describe_failure(lookup, probes.dns.via), cause=cause, figures=figures)
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


def client(probes: Probes, view: ClusterView | None = None) -> Observation:
    """The client port answers gRPC; when it drops connections and the cluster state shows a
    NetworkPolicy that keeps the agents from it, that policy is the cause (``netpol``)."""
    observed = _named(probes, probes.client_greeting)
    if observed.ok or observed.cause not in ("timeout", "silent") or view is None:
        return observed
    try:
        path = client_path(view)
    except (NoEvidence, ClusterReadError):  # the state cannot tell: the probe's own diagnosis stands
        return observed
    if path.ok or "client" not in path.figures.get("blocked_ports", "").split(","):
        return observed
    return Observation(False, f"{observed.message}; the cluster state shows why: {path.message}",
                       cause=f"netpol-{path.cause}", figures=path.figures, elapsed_s=observed.elapsed_s)


def dashboard(probes: Probes) -> Observation:
    obs, body = probes.dashboard_version
    if obs.ok and body is not None:
        return Observation(True, f"{obs.message}: Ray {body.get('ray_version', '?')} dashboard",
                           elapsed_s=obs.elapsed_s)
    if obs.figures.get("http_status") in AUTH_STATUSES:  # the dashboard answers; the token is ray.auth's question
        return Observation(True, f"{obs.message}: the dashboard answers and requires a token (see ray.auth)",
                           elapsed_s=obs.elapsed_s)
    return _named(probes, obs)


def auth(probes: Probes, view: ClusterView | None = None) -> Observation | None:
    """The cluster's token requirement and raycheck's token; None when the dashboard cannot tell
    (it did not answer /api/version: port.dashboard says why)."""
    probes.attach_cluster(view)
    obs = probes.auth
    if obs is None or obs.ok:
        return obs
    options = auth_options(view)
    message, cause = obs.message, obs.cause
    if options.get("enableK8sTokenAuth") is True:  # Ray >= 2.55: a ServiceAccount token, not the Secret's
        message += "; the RayCluster sets spec.authOptions.enableK8sTokenAuth: the credential is a ServiceAccount " \
                   "token whose account may ray:write the RayCluster"
        cause = "k8s-token"
    secret = str(options.get("secretName") or probes.target.cluster_name)
    return Observation(False, message, cause, {**obs.figures, "auth_secret": secret}, obs.data, obs.elapsed_s)


def auth_options(view: ClusterView | None) -> dict[str, Any]:
    """The RayCluster's ``spec.authOptions`` (KubeRay >= 1.5.1: mode, secretName, enableK8sTokenAuth),
    empty when there is none or no RayCluster was read. The token's Secret is ``secretName``, else
    the cluster's own name, key ``auth_token``."""
    raycluster = view.raycluster_if_known() if view is not None else None
    options = ((raycluster or {}).get("spec") or {}).get("authOptions")
    return options if isinstance(options, dict) else {}


def gcs_health(probes: Probes) -> Observation:
    return probes.gcs_health


def _named(probes: Probes, obs: Observation) -> Observation:
    """Prefix an address-level observation with the name the user wrote."""
    if probes.target.address.is_ip:
        return obs
    return Observation(obs.ok, f"{probes.target.head_host}: {obs.message}", obs.cause, obs.figures, obs.data,
                       obs.elapsed_s)


@dataclass(frozen=True)
class Undecided:
    """A check that cannot conclude: blocked by a precondition found while running, or skipped
    for want of evidence (``blocked_by`` None)."""

    reason: str
    blocked_by: str | None = None


def version_match(probes: Probes, view: ClusterView | None = None) -> Observation | Undecided:
    """Is there a client runtime with the cluster's Ray and Python minor?

    The cluster's Ray comes from the dashboard's ``/api/version`` (else the RayCluster's
    ``spec.rayVersion``), its Python from the head image's tag; what they leave unknown, the head
    says itself in the Ray Client handshake (its versions when it connects, or its mismatch
    message when it refuses), asked when the client port passed its pre-check and no token is
    missing. The runtime is ``--ray-python``'s, else raycheck's own or a cached client-env.
    """
    probes.attach_cluster(view)
    known = probes.cluster_versions
    ray, ray_source, python, python_source = known.ray, known.ray_source, known.python, known.python_source
    # The head is asked when something is unknown, and before a failure: an image tag read from
    # cluster state (a dump, a RayCluster not yet rolled out) may not be what runs.
    ask_head = ray is None or python is None or probes.pick_runtime(ray, python) is None
    if ask_head and probes.client_greeting.ok and not probes.auth_refused():
        said = probes.handshake.figures
        head_python = python_minor(said.get("cluster_python_version"))
        if head_python:
            tag = f"; {python_source} says {python}" if python and python != head_python else ""
            python, python_source = head_python, f"the head, in the Ray Client handshake{tag}"
        if ray is None and said.get("cluster_ray_version"):
            ray, ray_source = said["cluster_ray_version"], "the head, in the Ray Client handshake"
    if ray is None:
        unknown = "the cluster's Ray version is unknown: neither the dashboard, the RayCluster nor the Ray Client " \
                  "handshake told it"
        if probes.auth_refused():
            return Undecided(f"{unknown} (the dashboard wants a token)", "ray.auth")
        if not probes.client_greeting.ok:
            return Undecided(unknown, "port.client")
        if probes.handshake.cause == "unauthenticated":  # no evidence about versions; the handshake check says why
            return Undecided(f"{unknown}: the head refused the handshake for authentication (see ray.client-handshake)")
        return Observation(False, unknown, cause="unknown")
    runtime = probes.pick_runtime(ray, python)
    figures = {**probes.known_versions(), "cluster_ray_version": ray,
               "cluster_python_version": python or "unknown"}
    where = f"cluster Ray {ray} ({ray_source}), " + (f"Python {python} ({python_source})" if python else
                                                    "Python unknown")
    if runtime is not None:
        figures.update(local_ray_version=str(runtime.ray_version), local_python_version=runtime.python_version)
        return Observation(True, f"{where}; client runtime {runtime.describe()}", figures=figures)
    return _no_runtime(probes, ray, python, where, figures)


def _no_runtime(probes: Probes, ray: str, python: str | None, where: str, figures: dict[str, str]) -> Observation:
    """No runtime has the cluster's versions: the one command that builds it, and why it is needed."""
    closest: Runtime = probes.pick_runtime(ray, None) or probes.runtimes[0]
    minor = python or (closest.minor if closest.ray_version else default_python(ray))
    command = build_command(ray, minor)
    figures.update(client_env_command=command, local_ray_version=str(closest.ray_version),
                   local_python_version=closest.python_version)
    have = "; ".join(f"Ray {r.ray_version} / Python {r.python_version} ({r.origin})" for r in probes.runtimes)
    how = f"run `{command}`" if probes.explicit_runtime is None else \
        f"run `{command} --into DIR` and point --ray-python at DIR/bin/python"
    # the same Ray on both sides: only Python differs, and "pip install ray" would not help the agents
    cause = "no-ray" if closest.ray_version is None else "python-mismatch" if closest.ray_version == ray \
        else "version-mismatch"
    guess = "" if python else f" (the cluster's Python is not known: {minor} assumed)"
    return Observation(False, f"{where}: no client runtime with Ray {ray} on Python {minor}{guess}; raycheck has "
                       f"{have}: {how}", cause=cause, figures=figures)


def client_handshake(probes: Probes, view: ClusterView | None = None) -> Observation:
    probes.attach_cluster(view)
    return probes.handshake
