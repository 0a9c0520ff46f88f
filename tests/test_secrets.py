"""No credential reaches a report, the terminal or the JSON line: planted secrets are grepped for."""

from __future__ import annotations

import copy
import secrets

import yaml

from tests.apiserver import Fault
from tests.support import FakeDashboard
from tests.test_k8s_suite import TARGET

TOKEN = "kube-tok-7f3b9c2e1d"
ENV_SECRET = "env-secret-5a8d2f"
ECHOED_PASSWORD = "pw-echoed-91c4"


def test_planted_secrets_never_reach_any_output(run_suite, seed_state, api_server, tmp_path):
    server = api_server(seed_state)
    server.token = TOKEN
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"].update({"client-key-data": "TFMwdExTMUNSVWRKVGlCU1UwRWdVRkpKVmtGVVJTQkxSVmt0TFMwdExRbz0=",
                                       "password": "kubeconfig-pass-33"})
    kubeconfig.write_text(yaml.safe_dump(config))
    # the API server echoes credentials in its error messages, as misbehaving proxies do
    server.faults["pods"] = Fault(status=500, message=f"upstream said: Authorization: Bearer {TOKEN}, "
                                                      f"password={ECHOED_PASSWORD}, env {ENV_SECRET}")
    # agents' credentials live in the runtime env of the seed's workers/config.yaml
    target = TARGET.replace("  cluster_name: ray-gpu\n",
                            f"  cluster_name: ray-gpu\n  runtime_env: {{env_vars: {{OPENAI_API_KEY: sk-{ENV_SECRET}}}}}\n")
    run = run_suite(target, "-m", "k8s or rbac", f"--kubeconfig={kubeconfig}", "--json-line",
                    env={"MY_SERVICE_TOKEN": ENV_SECRET, "RAY_AUTH_TOKEN": TOKEN})
    assert run.status == 1, repr(run)
    assert run.check("k8s.raycluster-ready")["outcome"] == "error"  # the echoing fault was hit
    outputs = {"terminal": run.output, **{p.name: p.read_text() for p in run.report_dir.iterdir()}}
    assert set(outputs) >= {"raycheck.json", "raycheck.md", "raycheck.html", "junit.xml", "raycheck.prom"}
    for name, text in outputs.items():
        for secret in (TOKEN, ENV_SECRET, ECHOED_PASSWORD, "kubeconfig-pass-33", "TFMwdExTMUNSVWRK"):
            assert secret not in text, f"{secret} leaked into {name}"
    assert "Bearer ***" in outputs["raycheck.json"]


def test_a_ray_token_from_a_file_is_masked_even_where_a_peer_echoes_it(run_suite, healthy_target, seed_objects,
                                                                       serve_dns, tmp_path):
    """The Ray auth token comes from raycheck.auth_token_file (a mounted Secret), in no variable, so
    only raycheck's registration of what it read masks it; the dashboard stand-in echoes it in its
    refusal, as a misbehaving proxy does, and the refusal's text is part of ray.auth's message."""
    token = f"rc-{secrets.token_hex(12)}"
    token_file = tmp_path / "mounted" / "auth_token"
    token_file.parent.mkdir()
    token_file.write_text(token)
    target = copy.deepcopy(healthy_target)
    target["raycheck"]["auth_token_file"] = str(token_file)
    with FakeDashboard(status=403, body=f"Forbidden: Invalid authentication token {token}".encode()) as echo:
        target["raycheck"]["ports"]["dashboard"] = echo.port
        run = run_suite(target, "-m", "connectivity", "--json-line", dns=serve_dns(seed_objects),
                        env={"RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": ""})
    check = run.check("ray.auth")
    assert check["cause"] == "invalid-token" and f"raycheck.auth_token_file ({token_file})" in check["message"], check
    assert "Invalid authentication token ***" in check["message"]
    outputs = {"terminal": run.output, **{p.name: p.read_text() for p in run.report_dir.iterdir()}}
    for name, text in outputs.items():
        assert token not in text, f"the Ray token leaked into {name}"
