"""No credential reaches a report, the terminal or the JSON line: planted secrets are grepped for."""

from __future__ import annotations

import yaml

from tests.apiserver import Fault
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
