"""The loopback DNS server answers as the Kubernetes DNS spec says; dnspython reads it."""

from __future__ import annotations

import copy

import pytest

from raycheck.settings import DnsServer
from raycheck.harness.dnszone import zone_from_objects
from raycheck.probes.dns import DnsProbe, ResolvConf, search_candidates, walk_search_path
from raycheck.cluster.files import load_objects
from raycheck.harness.scenarios import SCENARIOS


@pytest.fixture
def seed():
    return load_objects(SCENARIOS / "seed")


def probe_for(server) -> DnsProbe:
    return DnsProbe(DnsServer(server.host, server.port), timeout=1.0)


def test_headless_service_from_endpointslices(seed, serve_dns):
    dns = probe_for(serve_dns(zone_from_objects(seed)))
    head = dns.addresses("ray-gpu-head-svc.ray.svc.cluster.local")
    assert head.records == ("10.244.0.10",)
    srv = dns.query("_client._tcp.ray-gpu-head-svc.ray.svc.cluster.local", "SRV")
    assert srv.records == ("10001 10-244-0-10.ray-gpu-head-svc.ray.svc.cluster.local",)
    assert dns.query("10-244-0-10.ray-gpu-head-svc.ray.svc.cluster.local", "A").records == ("10.244.0.10",)


def test_clusterip_service_and_srv_for_named_ports_only(seed, serve_dns):
    dns = probe_for(serve_dns(zone_from_objects(seed)))
    assert dns.query("kube-dns.kube-system.svc.cluster.local", "A").records == ("10.96.0.10",)
    assert dns.query("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV").records == \
        ("53 kube-dns.kube-system.svc.cluster.local",)


def test_external_name_is_a_cname_followed_for_addresses(seed, serve_dns):
    dns = probe_for(serve_dns(zone_from_objects(seed)))
    alias = "internal-ray-dashboard.swe-ai-fleet.svc.cluster.local"
    assert dns.query(alias, "CNAME").records == ("ray-gpu-head-svc.ray.svc.cluster.local",)
    assert dns.addresses(alias).records == ("10.244.0.10",)


def test_not_ready_endpoints_follow_publish_not_ready_addresses(seed, serve_dns):
    objects = copy.deepcopy(seed)
    slc = next(o for o in objects if o["kind"] == "EndpointSlice")
    slc["endpoints"][0]["conditions"]["ready"] = False
    assert probe_for(serve_dns(zone_from_objects(objects))).addresses(
        "ray-gpu-head-svc.ray.svc.cluster.local").ok  # KubeRay publishes not-ready addresses
    svc = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "ray-gpu-head-svc")
    svc["spec"]["publishNotReadyAddresses"] = False
    lookup = probe_for(serve_dns(zone_from_objects(objects))).addresses("ray-gpu-head-svc.ray.svc.cluster.local")
    assert lookup.error == "nxdomain"  # headless with no ready endpoint: no name


def test_nodata_nxdomain_and_empty_non_terminals(seed, serve_dns):
    dns = probe_for(serve_dns(zone_from_objects(seed)))
    assert dns.query("ray-gpu-head-svc.ray.svc.cluster.local", "AAAA").error == "nodata"
    assert dns.query("ray.svc.cluster.local", "A").error == "nodata"
    assert dns.query("nope.ray.svc.cluster.local", "A").error == "nxdomain"


def test_faults_servfail_drop_and_truncation(seed, serve_dns):
    zone = zone_from_objects(seed)
    zone.faults["ray-gpu-head-svc.ray.svc.cluster.local"] = "servfail"
    zone.faults["kube-dns.kube-system.svc.cluster.local"] = "drop"
    zone.faults["internal-ray-dashboard.swe-ai-fleet.svc.cluster.local"] = "truncate"
    dns = probe_for(serve_dns(zone))
    assert dns.query("ray-gpu-head-svc.ray.svc.cluster.local", "A").error == "servfail"
    dropped = dns.query("kube-dns.kube-system.svc.cluster.local", "A")
    assert dropped.error == "timeout" and dropped.elapsed_s < 3
    # truncated over UDP: dnspython retries over TCP and gets the whole answer
    assert dns.query("internal-ray-dashboard.swe-ai-fleet.svc.cluster.local", "CNAME").ok


def test_resolv_conf_and_search_order(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("# kubelet\nsearch swe-ai-fleet.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 10.96.0.10\noptions ndots:5 timeout:1\n")
    conf = ResolvConf.read(path)
    assert conf.ndots == 5 and len(conf.search) == 3 and conf.nameservers == ("10.96.0.10",)
    name = "ray-gpu-head-svc.ray.svc.cluster.local"
    assert search_candidates(name, False, conf)[-1] == name and len(search_candidates(name, False, conf)) == 4
    assert search_candidates(name, True, conf) == [name]
    assert search_candidates(name, False, ResolvConf(conf.search, 2, ()))[0] == name


def test_search_walk_stops_at_the_first_answer(seed, serve_dns, tmp_path):
    zone = zone_from_objects(seed)
    dns = probe_for(serve_dns(zone))
    conf = ResolvConf(("swe-ai-fleet.svc.cluster.local", "svc.cluster.local", "cluster.local"), 5, ())
    walk = walk_search_path(dns, "ray-gpu-head-svc.ray", False, conf)
    assert walk.winner is not None and walk.winner.name == "ray-gpu-head-svc.ray.svc.cluster.local"
    assert walk.wasted == 1
