"""The connectivity suite end to end: a real Ray head, a real DNS server, the suite run as users run it.

Every check passes on the healthy scenario and fails, with its id, severity and a rendered
remediation, on a scenario broken the way clusters break. Infrastructure faults (dead ports, DNS
servers failing, dashboards erroring, version mismatches, a hung handshake) are rows of
``test_fault_matrix.py``; this file keeps the misconfigurations and the options.
"""

from __future__ import annotations

import copy
import re


from raycheck.harness.dnszone import zone_from_objects
from tests.conftest import HEAD, SuiteRun
from tests.support import BlackholeDns, refused_port

CONNECTIVITY = ["dns.head-service", "dns.client-srv", "dns.dashboard-alias", "dns.search-path",
                "port.client", "port.dashboard", "ray.version-match", "ray.auth", "ray.gcs-health",
                "ray.client-handshake"]
# an unrendered {placeholder}; kubectl's jsonpath {end} is meant literally
PLACEHOLDER = re.compile(r"\{(?!end\})[A-Za-z_][A-Za-z0-9_]*\}")


def assert_problem(run: SuiteRun, check_id: str, outcome: str, severity: str, title: str) -> dict:
    """The check has this outcome and severity, and a fully rendered remediation whose title says ``title``."""
    check = run.check(check_id)
    assert check["outcome"] == outcome, f"{check_id}: {check}\n{run.output[-3000:]}"
    assert check["severity"] == severity
    remediation = check["remediation"]
    assert remediation and remediation["steps"], check
    texts = [remediation["title"]] + [s["text"] for s in remediation["steps"]] + \
        [s["command"] or "" for s in remediation["steps"]]
    assert not [t for t in texts if PLACEHOLDER.search(t)], texts
    assert title in remediation["title"], remediation["title"]
    return check


def blocked_by(run: SuiteRun, check_id: str) -> str | None:
    check = run.check(check_id)
    assert check["outcome"] == "blocked", check
    assert check["remediation"]["steps"][0]["command"].startswith("pytest --target")
    return check["blocked_by"]


def without_service(objects, namespace, name):
    return [o for o in objects if not (o.get("kind") == "Service" and o["metadata"]["name"] == name
                                       and o["metadata"]["namespace"] == namespace)]


def service(objects, namespace, name):
    return next(o for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == name
                and o["metadata"]["namespace"] == namespace)


# ----------------------------------------------------------------------------- healthy


def test_healthy_seed_passes_every_connectivity_check(run_suite, healthy_target, seed_objects, serve_dns):
    run = run_suite(healthy_target, "-m", "connectivity", dns=serve_dns(seed_objects))
    assert run.status == 0, repr(run)
    assert run.outcomes() == {check_id: "passed" for check_id in CONNECTIVITY}
    assert run.report["schema"] == "raycheck/v1"
    assert run.report["summary"]["passed"] == len(CONNECTIVITY)
    assert "GPU 8" in run.check("ray.client-handshake")["message"]
    assert {"raycheck.json", "raycheck.md", "junit.xml"} <= {p.name for p in run.report_dir.iterdir()}
    assert f"raycheck: {len(CONNECTIVITY)} passed" in run.output


def test_ip_address_skips_dns_checks_with_the_reason(run_suite, healthy_target, ray_head):
    target = copy.deepcopy(healthy_target)
    target["ray"]["address"] = f"ray://127.0.0.1:{ray_head.ports.client}"
    run = run_suite(target, "-m", "connectivity")
    assert run.status == 0, run.output
    for check_id in CONNECTIVITY[:4]:
        check = run.check(check_id)
        assert check["outcome"] == "skipped" and "is an IP (127.0.0.1)" in check["message"], check
    assert all(run.check(c)["outcome"] == "passed" for c in CONNECTIVITY[4:])


# ----------------------------------------------------------------------------- DNS broken


def test_srv_without_client_port_name_fails_as_warning(run_suite, healthy_target, seed_objects, serve_dns):
    objects = copy.deepcopy(seed_objects)
    for port in service(objects, *HEAD)["spec"]["ports"]:
        if port["name"] == "client":
            port["name"] = "ray-client"
    run = run_suite(healthy_target, "-m", "connectivity", dns=serve_dns(objects))
    assert run.status == 0, run.output  # a warning does not fail a critical gate
    check = assert_problem(run, "dns.client-srv", "failed", "warning", "no port named 'client'")
    assert "_client._tcp.ray-gpu-head-svc.ray.svc.cluster.local" in check["message"]
    assert run.check("port.client")["outcome"] == "passed"
    assert check["cause"] == "nxdomain-by-hand"  # no cluster state: raycheck does not guess the container


def test_srv_missing_names_the_ray_container_to_patch(run_suite, healthy_target, seed_objects, serve_dns, write_dump):
    """The head container declares the client port as 'ray-client', behind the autoscaler sidecar: the
    patch renames that port of the Ray container (index 1), not containers/0."""
    objects = copy.deepcopy(seed_objects)
    for port in service(objects, *HEAD)["spec"]["ports"]:
        if port["name"] == "client":
            port["name"] = "ray-client"
    head = next(o for o in objects if o["kind"] == "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    head["containers"].insert(0, {"name": "autoscaler", "image": "rayproject/ray:2.49.2"})
    client_port = int(healthy_target["ray"]["address"].rsplit(":", 1)[1])
    for port in head["containers"][1]["ports"]:
        if port["name"] == "client":  # declared unnamed-as-client on the port the agents dial
            port.update(name="ray-client", containerPort=client_port)
            index = head["containers"][1]["ports"].index(port)
    run = run_suite(healthy_target, "-m", "dns", f"--cluster-dump={write_dump(objects)}", dns=serve_dns(objects))
    check = run.check("dns.client-srv")
    assert check["cause"] == "nxdomain", check
    patch = check["remediation"]["steps"][1]["command"]
    assert f'"path":"/spec/headGroupSpec/template/spec/containers/1/ports/{index}/name","value":"client"' in patch


def test_warning_gate_fails_on_a_warning(run_suite, healthy_target, seed_objects, serve_dns):
    objects = copy.deepcopy(seed_objects)
    for port in service(objects, *HEAD)["spec"]["ports"]:
        if port["name"] == "client":
            port["port"] = 10099
    run = run_suite(healthy_target, "-m", "dns", "--fail-on", "warning", dns=serve_dns(objects))
    assert run.status == 1, run.output
    check = assert_problem(run, "dns.client-srv", "failed", "warning", "is 10099, not")
    assert "names port 10099" in check["message"]


def test_missing_dashboard_alias(run_suite, healthy_target, seed_objects, serve_dns):
    dns = serve_dns(without_service(seed_objects, "swe-ai-fleet", "internal-ray-dashboard"))
    run = run_suite(healthy_target, "-m", "dns", dns=dns)
    check = assert_problem(run, "dns.dashboard-alias", "failed", "warning", "does not exist in swe-ai-fleet")
    assert "kubectl create service externalname internal-ray-dashboard -n swe-ai-fleet " \
           "--external-name=ray-gpu-head-svc.ray.svc.cluster.local --tcp=8265:8265" in \
           check["remediation"]["steps"][0]["command"].replace(f"{healthy_target['raycheck']['ports']['dashboard']}", "8265")


def test_dashboard_alias_pointing_at_another_cluster(run_suite, healthy_target, seed_objects, serve_dns):
    """(The alias pointing at itself, a CNAME loop, is a row of the fault matrix.)"""
    objects = copy.deepcopy(seed_objects)
    service(objects, "swe-ai-fleet", "internal-ray-dashboard")["spec"]["externalName"] = \
        "ray-cpu-head-svc.ray.svc.cluster.local"
    run = run_suite(healthy_target, "-m", "dns", dns=serve_dns(objects))
    assert_problem(run, "dns.dashboard-alias", "failed", "warning", "points at ray-cpu-head-svc.ray.svc.cluster.local")


def test_search_domain_that_answers_first_is_caught(run_suite, healthy_target, seed_objects, serve_dns):
    zone = zone_from_objects(seed_objects, endpoint_override={HEAD: ["127.0.0.1"]})
    # a wildcard-like record in the first search domain: the short walk ends at the wrong place
    zone.add("ray-gpu-head-svc.ray.svc.cluster.local.swe-ai-fleet.svc.cluster.local", "A", "10.9.9.9")
    run = run_suite(healthy_target, "-m", "dns", dns=serve_dns(zone))
    check = assert_problem(run, "dns.search-path", "failed", "info", "answers before the real name")
    assert "10.9.9.9" in check["message"]
    assert run.status == 0  # info never fails a critical gate


def test_too_many_search_domains(run_suite, healthy_target, seed_objects, serve_dns, tmp_path):
    resolv = tmp_path / "node-resolv.conf"
    resolv.write_text("search swe-ai-fleet.svc.cluster.local svc.cluster.local cluster.local corp.example.com "
                      "lab.example.com\nnameserver 127.0.0.1\noptions ndots:5\n")
    target = copy.deepcopy(healthy_target)
    target["raycheck"]["resolv_conf"] = str(resolv)
    run = run_suite(target, "-m", "dns", dns=serve_dns(seed_objects))
    check = assert_problem(run, "dns.search-path", "failed", "info", "5 search-domain lookups")
    assert "sed -i 's#ray://ray-gpu-head-svc.ray.svc.cluster.local:#ray://ray-gpu-head-svc.ray.svc.cluster.local.:#'" \
        in check["remediation"]["steps"][0]["command"]


def test_outside_the_cluster_says_how_to_run_in_cluster(run_suite, healthy_target):
    run = run_suite(healthy_target, "-m", "dns", "--probe-timeout", "1")
    check = assert_problem(run, "dns.head-service", "failed", "critical", "this run is outside the cluster")
    commands = [s["command"] for s in check["remediation"]["steps"]]
    assert any(c.startswith("kubectl run dnstest -n swe-ai-fleet") for c in commands)
    assert any(c.startswith("kubectl port-forward -n ray svc/ray-gpu-head-svc") for c in commands)


# ----------------------------------------------------------------------------- ports and Ray broken


def test_refused_dashboard_port_is_a_warning(run_suite, healthy_target, seed_objects, serve_dns):
    target = copy.deepcopy(healthy_target)
    target["raycheck"]["ports"]["dashboard"] = refused_port()
    run = run_suite(target, "-m", "port", "--fail-on", "warning", dns=serve_dns(seed_objects))
    assert run.status == 1
    assert_problem(run, "port.dashboard", "failed", "warning", "Connection refused")


def test_budget_skips_what_is_left_when_spent(run_suite, healthy_target):
    with BlackholeDns() as blackhole:
        run = run_suite(healthy_target, "-m", "connectivity", "--probe-timeout=3", "--budget=2",
                        dns=blackhole.address)
    assert run.check("dns.head-service")["outcome"] == "failed"
    rest = [c for c in run.report["checks"] if c["id"] != "dns.head-service"]
    assert rest and all(c["outcome"] == "skipped" and "budget of 2 s was spent" in c["message"] for c in rest)
    assert run.status == 1
