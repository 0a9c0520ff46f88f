"""Client runtimes, image tags, the token's sources, certificate names, and the ``client-env`` command's input.

The builds themselves run for real in tests/test_runtimes.py (``raycheck client-env`` against the
package index); here, what decides which runtime is picked and what the command refuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raycheck.probes.tcp import TlsSettings, name_in_sans
from raycheck.ray_token import find_token
from raycheck.redact import redact_text
from raycheck.runtimes import (
    MARKER, Runtime, RuntimeUnavailable, build_command, cache_root, cached, choose, describe_interpreter,
    find_python, own,
)
from raycheck.versions import default_python, image_python

ROOT = Path(__file__).resolve().parents[1]


def _runtime(ray: str, python: str, origin: str = "client-env") -> Runtime:
    return Runtime(f"/envs/{ray}-{python}/bin/python", ray, python, origin)


def test_the_cache_follows_xdg_then_home(tmp_path):
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "raycheck" / "runtimes"
    assert cache_root({"HOME": "/home/u"}) == Path("/home/u/.cache/raycheck/runtimes")


def test_a_half_built_environment_is_never_picked(tmp_path):
    """Only a folder whose marker was written (last, by the build) is a runtime."""
    for name, marked in (("ray-2.49.2-py3.9", True), ("ray-2.60.0-py3.10", False)):
        python = tmp_path / name / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.symlink_to(sys.executable)
        if marked:
            (tmp_path / name / MARKER).write_text(json.dumps({"ray": "2.49.2", "python": "3.9.18"}))
    found = cached(tmp_path)
    assert [(r.ray_version, r.python_version) for r in found] == [("2.49.2", "3.9.18")]
    assert found[0].origin == f"client-env {tmp_path / 'ray-2.49.2-py3.9'}"


def test_choose_matches_ray_and_python_minor():
    own_ = _runtime("2.49.2", "3.11.7", "raycheck's own")
    py39, py310 = _runtime("2.49.2", "3.9.18"), _runtime("2.49.2", "3.10.13")
    candidates = [own_, py310, py39]
    assert choose("2.49.2", "3.9", candidates) is py39
    assert choose("2.49.2", "3.12", candidates) is None
    assert choose("2.60.0", None, candidates) is None
    # Python unknown: the release's default Python first (the image without -pyXY), then the rest
    assert choose("2.49.2", None, candidates) is py39
    assert choose("2.49.2", None, [own_, py310]) is own_


def test_the_default_python_of_a_release_and_the_image_tag():
    assert (default_python("2.49.2"), default_python("2.51.1"), default_python("2.52.0")) == ("3.9", "3.9", "3.10")
    assert image_python("rayproject/ray:2.49.2-py311-gpu") == ("3.11", "head image rayproject/ray:2.49.2-py311-gpu")
    assert image_python("docker.io/rayproject/ray:2.60.0-py312-cu128")[0] == "3.12"
    minor, how = image_python("rayproject/ray:2.49.2")  # type: ignore[misc]
    assert minor == "3.9" and "no -pyXY tag" in how
    assert image_python("rayproject/ray-ml:2.9.3-gpu")[0] == "3.9"  # type: ignore[index]
    assert image_python("registry.example/agents/ray-runtime:1.4") is None  # a custom image says nothing
    assert image_python("rayproject/ray:2.44.1-extra-py312-cu125")[0] == "3.12"  # type: ignore[index]
    assert image_python("rayproject/ray:2.49.2-py311@sha256:" + "0" * 64)[0] == "3.11"  # type: ignore[index]
    assert image_python("rayproject/ray:nightly-py311") is None  # no release: which Ray is unknown
    assert build_command("2.49.2", "3.9") == "raycheck client-env --ray 2.49.2 --python 3.9"


def test_an_interpreter_is_asked_for_its_versions():
    runtime = describe_interpreter(sys.executable, "--ray-python")
    assert (runtime.ray_version, runtime.python_version) == (own().ray_version, own().python_version)


def test_the_token_is_looked_for_in_order_and_masked_once_found(tmp_path):
    secret_file = tmp_path / "mounted" / "auth_token"
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("tok-from-home-7f2a\n")
    # nothing set: ~/.ray/auth_token, after saying where else it looked
    found = find_token(None, {}, home)
    assert (found.value, found.source) == ("tok-from-home-7f2a", f"~/.ray/auth_token ({home / '.ray' / 'auth_token'})")
    assert "RAY_AUTH_TOKEN: not set" in found.where_looked()
    # raycheck's own setting first; a file that is not there is said so, not an error
    missing = find_token(secret_file, {}, tmp_path / "nobody")
    assert missing.value is None and f"raycheck.auth_token_file ({secret_file}): no such file" in missing.where_looked()
    secret_file.parent.mkdir()
    secret_file.write_text("tok-mounted-91bd\n")
    env = {"RAY_AUTH_TOKEN": "tok-env-33c1"}
    assert find_token(secret_file, env, home).source == f"raycheck.auth_token_file ({secret_file})"
    assert find_token(None, env, home).source == "RAY_AUTH_TOKEN"
    assert find_token(None, {"RAY_AUTH_TOKEN_PATH": str(secret_file)}, home).value == "tok-mounted-91bd"
    assert redact_text("refused tok-mounted-91bd and tok-from-home-7f2a") == "refused *** and ***"
    assert found.child_env() == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "tok-from-home-7f2a"}


def test_certificate_names_match_as_tls_clients_match_them():
    sans = ["ray-gpu-head-svc.ray.svc.cluster.local", "*.ray.svc", "127.0.0.1", "fd00::2"]
    assert name_in_sans("ray-gpu-head-svc.ray.svc.cluster.local", sans)
    assert name_in_sans("RAY-GPU-HEAD-SVC.ray.svc.cluster.local.", sans)
    assert name_in_sans("ray-gpu-head-svc.ray.svc", sans)  # the wildcard covers one label
    assert not name_in_sans("a.b.ray.svc", sans)
    assert name_in_sans("127.0.0.1", sans) and name_in_sans("fd00:0:0:0:0:0:0:2", sans)
    assert not name_in_sans("ray-gpu-head-svc.ray", sans) and not name_in_sans("10.0.0.1", sans)


def test_tls_settings_come_from_rays_variables(tmp_path):
    assert TlsSettings.from_env({}) is None and TlsSettings.from_env({"RAY_USE_TLS": "0"}) is None
    settings = TlsSettings.from_env({"RAY_USE_TLS": "1", "RAY_TLS_CA_CERT": str(tmp_path / "ca.crt")})
    assert settings is not None
    with pytest.raises(ValueError, match="RAY_USE_TLS=1 but RAY_TLS_SERVER_CERT is not set"):
        settings.context()


@pytest.mark.parametrize("args, words", [
    (["--ray", "latest", "--python", "3.9"], "--ray: 'latest' is not a Ray version"),
    (["--ray", "2.49.2"], "--python: missing"),
    (["--ray", "2.49.2", "--python", "39"], "--python: '39' is neither a Python minor version"),
    (["--ray", "2.49.2", "--python", "/no/such/python3.9"], "--python: /no/such/python3.9: no such file"),
    (["--ray", "2.49.2", "--python", "3.9", "--extras", "client;rm"], "--extras: 'client;rm' is not"),
])
def test_client_env_refuses_bad_input_with_one_line(args, words, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "raycheck", "client-env", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not (tmp_path / "raycheck").exists()  # nothing written


def test_client_env_lists_what_is_cached(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    empty = subprocess.run([sys.executable, "-m", "raycheck", "client-env", "--list"], capture_output=True, text=True,
                           timeout=60, env=env)
    assert empty.returncode == 0 and "no client environment in" in empty.stdout
    folder = tmp_path / "raycheck" / "runtimes" / "ray-2.49.2-py3.9"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(sys.executable)
    (folder / MARKER).write_text(json.dumps({"ray": "2.49.2", "python": "3.9.18"}))
    listed = subprocess.run([sys.executable, "-m", "raycheck", "client-env", "--list"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert f"Ray 2.49.2, Python 3.9.18: {folder / 'bin' / 'python'}" in listed.stdout


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.12", "3.13"])
def test_the_handshake_child_runs_on_every_python_a_runtime_may_have(minor):
    """The child runs in the cluster's Python (3.9 and up), not raycheck's: it must compile there,
    and answer without Ray with the JSON line its parent reads."""
    try:
        python, _ = find_python(minor)
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    child = ROOT / "raycheck" / "probes" / "ray_handshake_child.py"
    proc = subprocess.run([python, "-I", str(child), "ray://127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["local_python_version"].startswith(minor + "."), answer
    assert answer["ok"] is False and answer["error_type"] in ("ImportError", "ConnectionError"), answer


def test_the_token_overlay_mounts_the_secret_and_names_it():
    from tests.test_deploy import of, render

    objects = render("deploy/cronjob-ray-auth")
    pod = of(objects, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "ray-auth")
    # KubeRay's key, optional: without the Secret the run goes on and ray.auth says how to make it
    assert volume["secret"] == {"secretName": "ray-gpu-ray-auth", "optional": True, "defaultMode": 0o440,
                                "items": [{"key": "auth_token", "path": "auth_token"}]}
    container = pod["containers"][0]
    assert {"name": "ray-auth", "mountPath": "/var/run/secrets/ray-auth", "readOnly": True} in container["volumeMounts"]
    assert {"name": "RAYCHECK_AUTH_TOKEN_FILE", "value": "/var/run/secrets/ray-auth/auth_token"} in container["env"]
    for role in of(objects, "Role") + of(objects, "ClusterRole"):  # the kubelet mounts it: raycheck reads no Secret
        assert all("secrets" not in rule.get("resources", []) for rule in role["rules"])


def test_the_image_carries_the_runtime_the_cronjobs_target_names():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for arg in ("ARG RAY_VERSION=2.49.2", "ARG CLUSTER_PYTHON=3.11", "ARG PYTHON_VERSION=3.11",
                "ARG UV_VERSION=0.13.9"):
        assert arg in dockerfile
    assert 'raycheck client-env --ray "$RAY_VERSION" --python "$CLUSTER_PYTHON" --into /opt/ray-client' in dockerfile
    assert "COPY --from=build /opt/ray-client /opt/ray-client" in dockerfile
    import yaml

    target = yaml.safe_load((ROOT / "deploy" / "cronjob" / "target.yaml").read_text())
    assert target["raycheck"]["ray_python"] == "/opt/ray-client/bin/python"
