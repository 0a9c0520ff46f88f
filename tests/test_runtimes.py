"""Any Ray, any Python, with authentication: the suite against real heads that raycheck's own Ray
Client cannot speak to as it is.

* a Ray 2.49.2 head on another Python (3.12 here): ``ray.version-match`` names the one command
  that builds the runtime, and after ``raycheck client-env`` the same run passes the handshake;
* a Ray 2.60.0 head with token authentication: ``ray.auth`` fails without a token (and blocks
  the handshake), fails with a wrong one (its own cause), passes with the right one, and the token
  is in no output; a handshake refused for authentication is reported as that;
* a head with ``RAY_USE_TLS`` and a CA made here: cause ``tls`` without certificates, a name
  missing from the head's certificate, a CA that did not sign it, and a pass with them.

Each head is started once (class scope: one extra head at a time), and its environment is built
once per machine by ``raycheck client-env`` under ``.cache/`` (tests/runtimes_support.py).
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from raycheck.cluster.files import load_objects
from raycheck.harness.dnszone import zone_from_objects
from raycheck.harness.sandbox import SEED, HeadPorts, RayHead, pod_resolv_conf, scenario_for_head, seed_target
from raycheck.probes import ray_client, tcp
from tests.conftest import HEAD, SuiteRun
from tests.runtimes_support import BUILDS, CACHE, PIN, TOKEN_RAY
from tests.support import FakeDashboard
from tests.test_connectivity_suite import CONNECTIVITY, assert_problem, blocked_by

FQDN = "ray-gpu-head-svc.ray.svc.cluster.local"
# A clean clone builds the heads' environments first (a minute or two from the package index;
# in a full run they are built in the background by then): more than pytest-timeout's 300 s default.
pytestmark = pytest.mark.timeout(900)


@dataclass
class Head:
    """A started head, its target (the seed's, on its ports) and the cluster DNS that finds it."""

    head: RayHead
    target: dict[str, Any]
    objects: list[dict[str, Any]]


def _built(name: str) -> str:
    built = BUILDS.wait(name)
    if built.skip:
        pytest.skip(built.skip)
    assert built.python, built.error
    return built.python


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any) -> Iterator[Head]:
    workdir = tmp_path_factory.mktemp(name)
    head = RayHead(HeadPorts.pick(), workdir, num_gpus=1, num_cpus=1, **kwargs).start()
    ports = head.ports
    resolv = workdir / "resolv.conf"
    resolv.write_text(pod_resolv_conf("swe-ai-fleet", "127.0.0.1"))
    objects = scenario_for_head(load_objects(SEED), *HEAD,
                                {"client": ports.client, "dashboard": ports.dashboard, "gcs-server": ports.gcs})
    try:
        yield Head(head, seed_target(ports.client, ports.dashboard, ports.gcs, resolv), objects)
    finally:
        head.stop(grace=5)


def _outputs(run: SuiteRun) -> dict[str, str]:
    return {"terminal": run.output, **{p.name: p.read_text() for p in run.report_dir.iterdir()}}


# ----------------------------------------------------------------------------- another Python


@pytest.fixture(scope="class")
def other_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    yield from _start(tmp_path_factory, "other-python-head", python=_built("head-other"))


class TestAnotherPython:
    def test_mismatch_names_the_command_and_client_env_makes_it_pass(self, other_head, run_suite, serve_dns):
        minor = BUILDS.other_minor
        command = f"raycheck client-env --ray {PIN} --python {minor}"
        dns = serve_dns(other_head.objects)
        before = run_suite(other_head.target, "-m", "connectivity", dns=dns)  # no cluster state, no runtime cached
        assert before.status == 1, repr(before)
        check = assert_problem(before, "ray.version-match", "failed", "critical", f"Cluster Python {minor}")
        assert check["cause"] == "python-mismatch"
        assert f"Python {minor} (the head, in the Ray Client handshake)" in check["message"], check
        assert f"run `{command}`" in check["message"]
        assert check["remediation"]["steps"][0]["command"].startswith(f"{command} && pytest --target=")
        assert blocked_by(before, "ray.client-handshake") == "ray.version-match"

        _built("client-env-other")  # the background build of this very command, if it has not finished
        made = subprocess.run([sys.executable, "-m", "raycheck", *command.split()[1:]], capture_output=True,
                              text=True, timeout=600, env={**_env(), "XDG_CACHE_HOME": str(CACHE)})
        assert made.returncode == 0, made.stdout + made.stderr
        runtime = made.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1]
        assert runtime == str(CACHE / "raycheck" / "runtimes" / f"ray-{PIN}-py{minor}" / "bin" / "python")

        # the same run, now that the runtime is in raycheck's cache
        after = run_suite(other_head.target, "-m", "connectivity", dns=dns, env={"XDG_CACHE_HOME": str(CACHE)})
        assert after.status == 0, repr(after)
        assert after.outcomes() == {check_id: "passed" for check_id in CONNECTIVITY}
        version = after.check("ray.version-match")["message"]
        assert f"Python {minor} (the head, in the Ray Client handshake)" in version, version
        assert f"client-env {CACHE}" in version, version
        assert f"Python {minor}." in after.check("ray.client-handshake")["message"]

    def test_ray_python_names_the_runtime_and_the_head_image_its_python(self, other_head, run_suite, serve_dns,
                                                                          write_dump):
        """With cluster state the head's Python comes from the RayCluster's image, before connecting."""
        python = _built("client-env-other")
        minor = BUILDS.other_minor or ""
        state = copy.deepcopy(other_head.objects)
        raycluster = next(o for o in state if o["kind"] == "RayCluster")
        image = f"rayproject/ray:{PIN}-py{minor.replace('.', '')}"
        raycluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image
        run = run_suite(other_head.target, "-m", "ray_client", f"--ray-python={python}",
                        f"--cluster-dump={write_dump(state)}", dns=serve_dns(other_head.objects))
        assert run.status == 0, repr(run)
        version = run.check("ray.version-match")["message"]
        assert f"Python {minor} (head image {image})" in version and "(--ray-python: Ray 2.49.2" in version, version

    def test_deep_tasks_run_in_the_runtime(self, other_head):
        python = _built("client-env-other")
        obs = ray_client.handshake(f"ray://127.0.0.1:{other_head.head.ports.client}", 60, gpu_tasks=1, python=python)
        assert obs.ok, obs.message
        assert len(obs.data["gpu_tasks"]) == 1 and obs.data["local_python"] == python


# ----------------------------------------------------------------------------- token authentication


TOKEN = f"rc-{secrets.token_hex(16)}"  # grepped for in every output


@pytest.fixture(scope="class")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    yield from _start(tmp_path_factory, "token-head", python=_built("head-token"),
                      env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN})


class TestToken:
    def test_without_a_token_auth_fails_and_blocks_the_handshake(self, token_head, run_suite, serve_dns):
        run = run_suite(token_head.target, "-m", "connectivity", f"--ray-python={token_head.head.python}",
                        dns=serve_dns(token_head.objects), env=_no_token())
        assert run.status == 1, repr(run)
        check = assert_problem(run, "ray.auth", "failed", "critical", "raycheck holds no token")
        assert check["cause"] == "missing-token"
        assert "HTTP 401 (Unauthorized: Missing authentication token)" in check["message"], check
        assert "RAY_AUTH_TOKEN_PATH: not set" in check["message"]
        commands = [step["command"] for step in check["remediation"]["steps"]]
        copy_secret = ("kubectl get secret ray-gpu -n ray -o jsonpath='{.data.auth_token}' | base64 -d > "
                       "\"$d/auth_token\" && kubectl create secret generic ray-gpu-ray-auth -n swe-ai-fleet "
                       "--from-file=\"$d/auth_token\"")
        assert any(copy_secret in c for c in commands), "\n".join(commands)
        assert any("kubectl set env deployment/NAME -n swe-ai-fleet --from=secret/ray-gpu-ray-auth --prefix=RAY_ "
                   "RAY_AUTH_MODE=token" in c for c in commands), "\n".join(commands)
        assert all(step.get("danger") for step in check["remediation"]["steps"] if "kubectl create" in
                   (step["command"] or "") or "set env" in (step["command"] or ""))
        # a missing token blocks the handshake: not reported as an unreachable head
        assert blocked_by(run, "ray.client-handshake") == "ray.auth"
        assert blocked_by(run, "ray.version-match") == "ray.auth"
        assert run.check("port.client")["outcome"] == "passed"
        assert "requires a token (see ray.auth)" in run.check("port.dashboard")["message"]

    def test_a_wrong_token_is_its_own_cause(self, token_head, run_suite, serve_dns):
        run = run_suite(token_head.target, "-m", "connectivity", f"--ray-python={token_head.head.python}",
                        dns=serve_dns(token_head.objects), env={**_no_token(), "RAY_AUTH_TOKEN": "rc-wrong-token-0000"})
        check = assert_problem(run, "ray.auth", "failed", "critical", "refuses raycheck's token (from RAY_AUTH_TOKEN)")
        assert check["cause"] == "invalid-token" and "HTTP 403" in check["message"], check
        assert blocked_by(run, "ray.client-handshake") == "ray.auth"
        assert "rc-wrong-token-0000" not in json.dumps(run.report) + run.output

    def test_with_the_token_path_every_connectivity_check_passes(self, token_head, run_suite, serve_dns, tmp_path):
        token_file = tmp_path / "auth_token"
        token_file.write_text(TOKEN + "\n")
        run = run_suite(token_head.target, "-m", "connectivity", f"--ray-python={token_head.head.python}",
                        "--json-line", dns=serve_dns(token_head.objects),
                        env={**_no_token(), "RAY_AUTH_TOKEN_PATH": str(token_file)})
        assert run.status == 0, repr(run)
        assert run.outcomes() == {check_id: "passed" for check_id in CONNECTIVITY}
        assert f"accepts raycheck's, from RAY_AUTH_TOKEN_PATH ({token_file})" in run.check("ray.auth")["message"]
        assert f"Ray {TOKEN_RAY}" in run.check("ray.client-handshake")["message"]
        for name, text in _outputs(run).items():
            assert TOKEN not in text, f"the token leaked into {name}"

    def test_a_refused_handshake_is_reported_as_authentication(self, token_head):
        """The client port itself refuses (UNAUTHENTICATED): reported at the first refusal, not after
        Ray's ~30 s of retries as a connection timeout."""
        address = f"ray://127.0.0.1:{token_head.head.ports.client}"
        start = time.monotonic()
        missing = ray_client.handshake(address, 30, python=token_head.head.python, env={"RAY_AUTH_TOKEN": ""})
        wrong = ray_client.handshake(address, 30, python=token_head.head.python,
                                     env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "rc-wrong-token-0000"})
        assert (missing.cause, wrong.cause) == ("unauthenticated", "unauthenticated"), (missing, wrong)
        assert "Invalid or missing authentication token" in wrong.message
        assert time.monotonic() - start < 20

    def test_a_refused_handshake_is_its_own_cause_when_the_dashboard_cannot_tell(self, token_head, run_suite,
                                                                                 serve_dns):
        """With the dashboard out of reach ray.auth has no evidence: the handshake's refusal says it."""
        target = copy.deepcopy(token_head.target)
        with FakeDashboard(status=502) as broken:
            target["raycheck"]["ports"]["dashboard"] = broken.port
            run = run_suite(target, "-m", "connectivity", f"--ray-python={token_head.head.python}",
                            dns=serve_dns(token_head.objects), env=_no_token())
        assert run.check("ray.auth")["outcome"] == "skipped"
        assert run.check("ray.version-match")["outcome"] == "skipped"
        check = assert_problem(run, "ray.client-handshake", "failed", "critical", "refused the Ray Client handshake "
                               "for authentication")
        assert check["cause"] == "unauthenticated" and "Invalid or missing authentication token" in check["message"]


def _no_token() -> dict[str, str]:
    """A user's shell without Ray token variables (the developer's own must not decide the test)."""
    return {"RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": "", "RAY_AUTH_MODE": ""}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RAYCHECK_")}


# ----------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path

    def env(self, ca: Path | None = None) -> dict[str, str]:
        return {"RAY_USE_TLS": "1", "RAY_TLS_SERVER_CERT": str(self.cert), "RAY_TLS_SERVER_KEY": str(self.key),
                "RAY_TLS_CA_CERT": str(ca or self.ca)}


def _make_ca(folder: Path, names: list[str], addresses: list[str]) -> Tls:
    """A CA, and a head certificate it signs for these DNS names and IP addresses (Ray presents
    the same pair as a client); another CA that signs nothing of it. Made at test time."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    folder.mkdir(parents=True, exist_ok=True)

    def ca(name: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256()))
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    ca_cert, ca_key = ca("raycheck-test-ca")
    ca("unrelated-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ray-head")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), False).sign(ca_key, hashes.SHA256()))
    (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return Tls(folder / "raycheck-test-ca.crt", folder / "tls.crt", folder / "tls.key", folder / "unrelated-ca.crt")


def _node_addresses() -> list[str]:
    """The addresses Ray's own processes dial each other on here: loopback, and the one Ray picks
    as the node's (the GCS address it hands out), which its certificate must name too."""
    from ray._private.services import node_ip_address_from_perspective

    return sorted({"127.0.0.1", node_ip_address_from_perspective("8.8.8.8:53")})


@pytest.fixture(scope="class")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return _make_ca(tmp_path_factory.mktemp("tls"), [FQDN], _node_addresses())


@pytest.fixture(scope="class")
def tls_head(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[Head]:
    yield from _start(tmp_path_factory, "tls-head", env=tls.env())


class TestTls:
    def test_a_tls_port_without_settings_is_cause_tls(self, tls_head, run_suite, serve_dns):
        run = run_suite(tls_head.target, "-m", "connectivity", dns=serve_dns(tls_head.objects))
        assert run.status == 1, repr(run)
        check = assert_problem(run, "port.client", "failed", "critical", "speaks TLS (TLSv1.3, ALPN h2)")
        assert check["cause"] == "tls" and "RAY_TLS_CA_CERT" in check["message"], check
        texts = " ".join(step["text"] + (step["command"] or "") for step in check["remediation"]["steps"])
        assert all(name in texts for name in ("RAY_USE_TLS=1", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY",
                                              "RAY_TLS_CA_CERT", "openssl x509 -req"))
        assert blocked_by(run, "ray.client-handshake") == "port.client"

    def test_with_the_certificates_every_connectivity_check_passes(self, tls_head, tls, run_suite, serve_dns):
        run = run_suite(tls_head.target, "-m", "connectivity", dns=serve_dns(tls_head.objects), env=tls.env())
        assert run.status == 0, repr(run)
        assert run.outcomes() == {check_id: "passed" for check_id in CONNECTIVITY}
        assert "greeting inside TLS" in run.check("port.client")["message"]

    def test_a_name_the_certificate_lacks_is_said(self, tls_head, tls, run_suite, serve_dns):
        target = copy.deepcopy(tls_head.target)
        other = "ray-tls-head-svc.ray.svc.cluster.local"
        target["ray"]["address"] = f"ray://{other}:{tls_head.head.ports.client}"
        target["ray"]["cluster_name"] = "ray-tls"
        zone = zone_from_objects(tls_head.objects, endpoint_override={HEAD: ["127.0.0.1"]})
        zone.add(other, "A", "127.0.0.1")
        run = run_suite(target, "-m", "port", dns=serve_dns(zone), env=tls.env())
        check = assert_problem(run, "port.client", "failed", "critical", f"not {other}")
        assert check["cause"] == "tls-name" and f"names {FQDN}, " in check["message"], check

    def test_a_ca_that_did_not_sign_the_head(self, tls_head, tls):
        obs = tcp.grpc_greeting("127.0.0.1", tls_head.head.ports.client, 3,
                                tls=tcp.TlsSettings(str(tls.cert), str(tls.key), str(tls.other_ca)), server_name=FQDN)
        assert (obs.ok, obs.cause) == (False, "tls-handshake"), obs.message
        assert "does not verify against RAY_TLS_CA_CERT" in obs.message


def test_kubernetes_token_mode_is_named_from_the_raycluster(run_suite, healthy_target, seed_state, seed_objects,
                                                            serve_dns, write_dump):
    """KubeRay's ``authOptions.enableK8sTokenAuth`` (Ray >= 2.55): the credential is a ServiceAccount
    token, not the Secret's; the dashboard stand-in answers as such a head does to no token. (A real
    head in this mode needs an API server that answers its TokenReview: not made here.)"""
    state = copy.deepcopy(seed_state)
    raycluster = next(o for o in state if o["kind"] == "RayCluster")
    raycluster["spec"]["authOptions"] = {"mode": "token", "enableK8sTokenAuth": True}
    target = copy.deepcopy(healthy_target)
    with FakeDashboard(status=401, body=b"Unauthorized: Missing authentication token") as dashboard:
        target["raycheck"]["ports"]["dashboard"] = dashboard.port
        run = run_suite(target, "-m", "ray_client", f"--cluster-dump={write_dump(state)}", dns=serve_dns(seed_objects),
                        env=_no_token())
    check = assert_problem(run, "ray.auth", "failed", "critical", "validates Kubernetes ServiceAccount tokens")
    assert check["cause"] == "k8s-token" and "enableK8sTokenAuth" in check["message"], check
    commands = " ".join(step["command"] for step in check["remediation"]["steps"])
    assert "kubectl auth can-i ray:write rayclusters.ray.io/ray-gpu -n ray " \
           "--as=system:serviceaccount:swe-ai-fleet:workspace-runner-sa" in commands
