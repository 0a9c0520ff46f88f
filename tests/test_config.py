"""Target file, address and settings parsing: every error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from raycheck.config import load_target_file, parse_ray_address, split_service_host
from raycheck.errors import ConfigError
from raycheck.settings import DnsServer, resolve_settings

SEED = """\
ray:
  address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"
  namespace: ray
  cluster_name: ray-gpu
  runtime_env:
    pip: ["openai", "anthropic", "nats-py"]
raycheck:
  client_namespace: swe-ai-fleet
  service_account: workspace-runner-sa
  dashboard_alias: internal-ray-dashboard
  ports: {dashboard: 8265, gcs: 6379}
  expect: {gpus: 8, workers: 8}
  thresholds: {memory_headroom: 0.10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(text)
    return path


def test_seed_target_derives_every_name(tmp_path):
    target, _ = load_target_file(write(tmp_path, SEED))
    assert target.head_host == "ray-gpu-head-svc.ray.svc.cluster.local"
    assert target.client_port == 10001
    assert (target.head_service, target.ray_namespace, target.cluster_domain) == ("ray-gpu-head-svc", "ray", "cluster.local")
    assert target.cluster_name == "ray-gpu"
    assert target.alias_fqdn == "internal-ray-dashboard.swe-ai-fleet.svc.cluster.local"
    assert target.dashboard_url == "http://ray-gpu-head-svc.ray.svc.cluster.local:8265"
    assert [p.resource for p in target.required_permissions] == ["services", "rayclusters", "rayjobs"]
    assert target.expect_gpus == 8 and target.memory_headroom == 0.10


def test_only_an_address_is_required(tmp_path):
    target, _ = load_target_file(write(tmp_path, 'ray: {address: "ray://ray-gpu-head-svc.ray.svc.cluster.local:10001"}\n'))
    assert (target.cluster_name, target.ray_namespace, target.service_account) == ("ray-gpu", "ray", "default")
    assert target.dashboard_alias is None and target.dashboard_port == 8265


def test_trailing_dot_address_is_absolute(tmp_path):
    target, _ = load_target_file(write(tmp_path, 'ray: {address: "ray://ray-gpu-head-svc.ray.svc.cluster.local.:10001"}\n'))
    assert target.address.absolute and target.head_host == "ray-gpu-head-svc.ray.svc.cluster.local"
    assert str(target.address) == "ray://ray-gpu-head-svc.ray.svc.cluster.local.:10001"


@pytest.mark.parametrize("text, expected", [
    ("ray://head:10001", ("head", 10001)),
    ("ray://10.0.0.5:10001", ("10.0.0.5", 10001)),
    ("ray://[fd00::5]:10001", ("fd00::5", 10001)),
])
def test_parse_ray_address(text, expected):
    address = parse_ray_address(text)
    assert (address.host, address.port) == expected


@pytest.mark.parametrize("text, problem", [
    ("ray-gpu-head-svc:10001", "has no scheme"),
    ("http://head:10001", "scheme 'http'"),
    ("ray://head", "has no port"),
    ("ray://head:ten", "is not a number"),
    ("ray://head:70000", "outside 1-65535"),
    ("ray://head:0", "outside 1-65535"),
    ("ray://:10001", "has no host"),
    ("ray://head:10001/x", "has a path"),
    ("ray://[fd00::5]10001", "IPv6"),
    ("ray://a..b:10001", "empty label"),
])
def test_bad_addresses(text, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_ray_address(text)


def test_split_service_host():
    assert split_service_host("svc.ns.svc.cluster.local").zone == "cluster.local"
    assert split_service_host("svc.ns").namespace == "ns"
    assert split_service_host("svc").namespace is None


@pytest.mark.parametrize("text, where", [
    ("", "target file is empty"),
    ("raycheck: {}\n", "ray: missing section"),
    ("ray: {namespace: ray}\n", ":1: ray.address: missing"),
    ("ray:\n  address: ray-gpu-head-svc:10001\n", ":2: ray.address: 'ray-gpu-head-svc:10001' has no scheme"),
    ("ray:\n  address: 10001\n", ":2: ray.address: expected a ray:// address, got a number"),
    ("ray:\n  adress: ray://h.ns.svc.cluster.local:1\n", ":2: ray.adress: unknown key"),
    ("rays: {}\n", ":1: rays: unknown key (known: ray, raycheck)"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\n  namespace: other\n", ":3: ray.namespace: 'other' contradicts"),
    ("ray:\n  address: ray://10.0.0.1:10001\n", "ray.namespace: missing; needed because"),
    ("ray:\n  address: ray://10.0.0.1:10001\n  namespace: ray\n", "ray.cluster_name: missing; needed because the address is an IP"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\n  cluster_name: Ray_GPU\n", ":3: ray.cluster_name: 'Ray_GPU' is not a valid"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  ports: {dashboard: 99999}\n",
     ":4: raycheck.ports.dashboard: port 99999 is outside 1-65535"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  ports: {dashbord: 8265}\n",
     ":4: raycheck.ports.dashbord: unknown key (known: dashboard, gcs)"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  expect: {gpus: -1}\n",
     ":4: raycheck.expect.gpus: -1 is negative"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  expect: {gpus: true}\n",
     ":4: raycheck.expect.gpus: expected a whole number, got a boolean"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  thresholds: {memory_headroom: 1.5}\n",
     ":4: raycheck.thresholds.memory_headroom: 1.5 is not a fraction"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  required_permissions:\n    - {resource: pods, verbs: [gets]}\n",
     ":5: raycheck.required_permissions.0.verbs.0: 'gets' is not a Kubernetes verb"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  required_permissions:\n    - {verbs: [get]}\n",
     "raycheck.required_permissions.0.resource: missing"),
    ("ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  ports: [8265]\n",
     ":4: raycheck.ports: expected a mapping, got a list"),
    ("ray: [\n", ":2: not valid YAML"),
])
def test_bad_target_files_name_line_and_key(tmp_path, text, where):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_target_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert where in message, message
    assert "\n" not in message


def test_missing_target_file(tmp_path):
    with pytest.raises(ConfigError, match="target file not found"):
        load_target_file(tmp_path / "nope.yaml")


def test_settings_precedence_cli_env_file():
    from_file = {"probe_timeout": (5, "t.yaml:9: raycheck.probe_timeout"), "fail_on": ("warning", "t.yaml:8: x")}
    settings = resolve_settings({"probe_timeout": "2"}, {"RAYCHECK_FAIL_ON": "info"}, from_file)
    assert settings.probe_timeout == 2.0 and settings.fail_on == "info"
    assert resolve_settings({}, {}, from_file).probe_timeout == 5.0
    assert resolve_settings({"dns_server": "127.0.0.1:5353"}, {}, {}).dns_server == DnsServer("127.0.0.1", 5353)
    assert resolve_settings({"dns_server": "[::1]:53"}, {}, {}).dns_server == DnsServer("::1", 53)
    assert resolve_settings({}, {}, {}).fail_on == "critical"


@pytest.mark.parametrize("cli, env, where", [
    ({"fail_on": "fatal"}, {}, "--fail-on: 'fatal' is not one of critical, warning, info"),
    ({"probe_timeout": "-1"}, {}, "--probe-timeout: '-1' must be more than 0"),
    ({"probe_timeout": "soon"}, {}, "--probe-timeout: 'soon' is not a number of seconds"),
    ({"dns_server": "dns.local"}, {}, "--dns-server: 'dns.local': the DNS server must be an IP address"),
    ({"dns_server": "127.0.0.1:99999"}, {}, "port '99999' is not in 1-65535"),
    ({}, {"RAYCHECK_HANDSHAKE_TIMEOUT": "0"}, "RAYCHECK_HANDSHAKE_TIMEOUT: '0' must be more than 0"),
])
def test_bad_settings_name_the_option(cli, env, where):
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace(")", r"\)")):
        resolve_settings(cli, env, {})


def test_bad_setting_in_the_file_names_file_and_line(tmp_path):
    path = write(tmp_path, "ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  fail_on: sometimes\n")
    _, from_file = load_target_file(path)
    with pytest.raises(ConfigError, match=rf"{path}:4: raycheck.fail_on: 'sometimes' is not one of"):
        resolve_settings({}, {}, from_file)


def test_paths_in_the_target_file_are_the_files_own(tmp_path, monkeypatch):
    """A relative path in the target file is relative to the file's folder, wherever raycheck runs
    (as resolv_conf, a kubeconfig's certificate paths, kustomize); on the command line, the shell's."""
    folder = tmp_path / "team"
    (folder / "dump").mkdir(parents=True)
    (folder / "manifests.yaml").write_text("")
    path = write(folder, "ray:\n  address: ray://h.ns.svc.cluster.local:1\nraycheck:\n  cluster_dump: dump\n"
                         "  with_manifests: ./manifests.yaml\n  report_dir: out\n  auth_token_file: secret/token\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, from_file = load_target_file(path)
    settings = resolve_settings({}, {}, from_file)
    assert Path(settings.cluster_dump) == folder / "dump"
    assert Path(settings.with_manifests) == folder / "manifests.yaml"
    assert Path(settings.report_dir) == folder / "out"
    assert Path(settings.auth_token_file) == folder / "secret" / "token"
    (elsewhere / "dump").mkdir()
    assert Path(resolve_settings({"cluster_dump": "dump"}, {}, from_file).cluster_dump) == Path("dump")
    # not there, beside the file: the one line names the file, its line and the key
    (folder / "dump").rmdir()
    with pytest.raises(ConfigError, match=rf"{path}:4: raycheck.cluster_dump: '.*team/dump': no such file"):
        resolve_settings({}, {}, from_file)
