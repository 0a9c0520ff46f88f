"""Remediations proven to fix: steps read as the shell and kubectl read them, applied to a copy of the
cluster state as kube-apiserver and KubeRay would take them, the check decided again.

Both ways: the seed's remediations verify (``oom.limits-overcommit``'s "fewer workers" names 7, which
fits); planted wrong ones are caught (a replicas count that still does not fit; a JSON patch adding
to ``volumes/-`` of a pod template without ``volumes``, refused as the API server refuses it). The
suites and the verifier decide checks with the same functions (the registry is read against every
suite's source); coverage stays the original's; live, nothing is ever written.
"""

from __future__ import annotations

import ast
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from raycheck.checks.registry import DECIDERS, deciders
from raycheck.cluster.changes import ChangedSource, Refused
from raycheck.cluster.files import load_objects, read_dump
from raycheck.cluster.reconcile import reconcile
from raycheck.cluster.source import MemorySource, Query
from raycheck.config import load_target_file
from raycheck.harness.scenarios import SCENARIOS
from raycheck.remediation import NOT_VERIFIABLE, NOT_VERIFIED, VERIFIED, Remediation, Step
from raycheck.remediation.kubectl import CHANGE, LOCAL, OPAQUE, READ, RESTART, TRANSIENT, Unparsable, effects
from raycheck.remediation.verify import Verifier
from tests.test_k8s_suite import OFFLINE, TARGET

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
PATCH = "kubectl patch raycluster ray-gpu -n ray --type=json -p '{}'"


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "target.yaml"
    path.write_text(TARGET)
    return load_target_file(path)[0]


def dump(objects: list[dict[str, Any]], without: str | None = None) -> MemorySource:
    """``objects`` as the seed's dump folder covers them (every kind it holds, in every namespace)."""
    coverage = read_dump(SCENARIOS / "seed").coverage
    coverage.spaces.pop(without, None)
    return MemorySource([o for o in objects if o["kind"] != without], coverage=coverage)


def verify(objects: list[dict[str, Any]], target, check_id: str, *steps: Step, function: str | None = None):
    rows = [d for d in deciders(check_id) if function is None or d.function.__name__ == function]
    return Verifier(dump(objects), target).verify(Remediation("t", steps, ()), rows[0])


def patch_step(text: str, ops: list[dict[str, Any]], danger: str = "d") -> Step:
    return Step(text, PATCH.format(json.dumps(ops)), danger)


def group_test(index: int = 0, name: str = "gpu-workers") -> dict[str, Any]:
    return {"op": "test", "path": f"/spec/workerGroupSpecs/{index}/groupName", "value": name}


# ----------------------------------------------------------------------------- reading the commands


@pytest.mark.parametrize("command, kinds", [
    ("kubectl get pods -n ray -o wide && kubectl get networkpolicy -n x", [READ, READ]),
    ("kubectl exec -n ray $(kubectl get pod -n ray -l a=b -o name | head -1) -- nvidia-smi -L", [READ]),
    ("kubectl run t -n x --rm -it --restart=Never --image=busybox:1.36 -- nslookup a", [TRANSIENT]),
    ("pip install 'ray[client]==2.49.2'", [LOCAL]),
    ("kubectl delete pod -n ray -l ray.io/cluster=ray-gpu", [RESTART]),
    ("kubectl get raycluster r -n ray -o json | jq '.a += [1]' | kubectl apply -f -", [READ, READ, OPAQUE]),
    ("kubectl patch raycluster r -n ray --type=json -p \"[{\\\"op\\\":\\\"remove\\\",\\\"path\\\":\\\"/$X\\\"}]\"", [OPAQUE]),
    ("kubectl patch raycluster r --type=merge -p '{}'", [OPAQUE]),  # no -n: the context's namespace
    ("helm install a b/c --version 1.0.0", [OPAQUE]),
    ("kubectl delete clusterrolebinding a; kubectl delete clusterrolebinding b", [CHANGE, CHANGE]),
    ("kubectl label ns ray a=b c- --overwrite", [CHANGE]),
    ("kubectl apply -f - <<'EOF'\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: b}\nEOF", [CHANGE]),
])
def test_commands_are_read_as_kubectl_reads_them(command, kinds):
    assert [e.kind for e in effects(command)] == kinds


@pytest.mark.parametrize("command, error", [
    ("kubectl patch raycluster r -n ray --type=json -p '{\"op\": 1}'", "must be a JSON array"),
    ("kubectl patch raycluster r -n ray --type=foo -p '[]'", "--type must be one of"),
    ("kubectl apply -f - <<'EOF'\nkind: Role\nmetadata: {name: a}\nEOF", "apiVersion not set"),
    ("kubectl patch raycluster r -n 'ray", "unterminated single quote"),
    ("kubectl create rolebinding a -n ray --role=r --serviceaccount=sa", "<namespace>:<name>"),
    ("kubectl patch widgets w -n ray -p '{}'", "doesn't have a resource type"),
])
def test_commands_kubectl_would_refuse_are_unparsable(command, error):
    with pytest.raises(Unparsable, match=error):
        effects(command)


# ----------------------------------------------------------------------------- suites and verifier agree


def suite_calls() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Check id -> the (module.function, argument expressions) each of its suite tests calls."""
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for path in (ROOT / "suites").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and n.module == "raycheck.checks" for a in n.names}
        marked = " ".join(ast.unparse(n) for n in tree.body if isinstance(n, ast.Assign)
                          and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets))
        if "pytest.mark.network" in marked:
            continue
        for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            marks = [d for d in function.decorator_list if isinstance(d, ast.Call)
                     and ast.unparse(d.func) == "pytest.mark.check"]
            if not marks or any(ast.unparse(d) == "pytest.mark.network" for d in function.decorator_list):
                continue
            check_id = marks[0].args[0].value
            calls = [c for c in ast.walk(function) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                     and isinstance(c.func.value, ast.Name) and c.func.value.id in modules]
            assert len(calls) == 1, f"{path.name}::{function.name} decides {check_id} with {len(calls)} calls"
            call = calls[0]
            out.setdefault(check_id, []).append((ast.unparse(call.func), tuple(ast.unparse(a) for a in call.args)))
    return out


def test_every_offline_check_is_decided_as_its_suite_decides_it():
    suites = suite_calls()
    rows = {(d.check_id, d.name, d.arguments) for d in DECIDERS}
    from_suites = {(check_id, name, args) for check_id, calls in suites.items() for name, args in calls}
    assert from_suites == rows


# ----------------------------------------------------------------------------- the API server's answers


@pytest.fixture
def seed() -> list[dict[str, Any]]:
    return load_objects(SCENARIOS / "seed")


def write(state: ChangedSource, command: str):
    (effect,) = effects(command)
    return state.write(effect.operation)


def test_writes_are_answered_as_the_api_server_answers_them(seed):
    state = ChangedSource(MemorySource(seed))
    with pytest.raises(Refused, match=r'NotFound\): rayclusters.ray.io "nope" not found'):
        write(state, "kubectl patch raycluster nope -n ray --type=merge -p '{\"spec\":{}}'")
    with pytest.raises(Refused, match="UnsupportedMediaType"):
        write(state, "kubectl patch raycluster ray-gpu -n ray -p '{\"spec\":{}}'")
    with pytest.raises(Refused, match=r'AlreadyExists\): serviceaccounts "workspace-runner-sa" already exists'):
        write(state, "kubectl create serviceaccount workspace-runner-sa -n swe-ai-fleet")
    with pytest.raises(Refused, match="pod updates may not change fields"):
        write(state, "kubectl patch pod ray-gpu-head-7zc7c -n ray -p '{\"spec\":{\"nodeName\":\"other\"}}'")
    with pytest.raises(Refused, match=r"limits.memory: Invalid value: \"lots\""):
        write(state, PATCH.format(json.dumps([{"op": "replace", "value": "lots", "path":
                                                "/spec/workerGroupSpecs/0/template/spec/containers/0/resources/limits/memory"}])))
    with pytest.raises(Refused, match="already has a value"):
        write(state, "kubectl label svc ray-gpu-head-svc -n ray ray.io/cluster=other")
    assert state.changed == {}  # a refused write changes nothing
    write(state, "kubectl patch pod ray-gpu-head-7zc7c -n ray -p '{\"spec\":{\"containers\":[{\"name\":\"ray-head\","
                 "\"image\":\"rayproject/ray:2.49.2-py312\"}]}}'")  # images may change
    assert seed == load_objects(SCENARIOS / "seed")  # the shared objects were copied, never changed


def test_kuberay_reconciles_a_changed_raycluster(seed):
    state = ChangedSource(MemorySource(seed))
    notes = reconcile(state, write(state, PATCH.format(json.dumps(
        [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 5}]))))
    pods = state.list(Query("Pod", "ray", {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "worker"}))
    assert len(pods) == 5 and "KubeRay deletes 3 of the 8 workers of group gpu-workers" in notes[0]
    # a template change: the pods as recreated from it, where they ran; the head Service is never updated
    notes = reconcile(state, write(state, PATCH.format(json.dumps(
        [{"op": "add", "path": "/spec/headGroupSpec/template/spec/containers/0/ports/-",
          "value": {"name": "extra", "containerPort": 9999}}]))))
    head = state.list(Query("Pod", "ray", {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "head"}))[0]
    assert head["spec"]["nodeName"] == "wrx80-node1" and any(p["name"] == "extra" for p in head["spec"]["containers"][0]["ports"])
    service = state.get("Service", "ray", "ray-gpu-head-svc")
    assert not any(p["name"] == "extra" for p in service["spec"]["ports"])
    assert any("does not recreate running pods" in n for n in notes)
    # a deleted head Service is made again from the spec, with its EndpointSlices gone
    notes = reconcile(state, write(state, "kubectl delete svc ray-gpu-head-svc -n ray"))
    assert any(p["name"] == "extra" for p in state.get("Service", "ray", "ray-gpu-head-svc")["spec"]["ports"])
    assert not state.list(Query("EndpointSlice", "ray", {"kubernetes.io/service-name": "ray-gpu-head-svc"}))


def test_with_the_autoscaler_on_kuberay_leaves_removing_workers_to_it(seed):
    next(o for o in seed if o["kind"] == "RayCluster")["spec"]["enableInTreeAutoscaling"] = True
    state = ChangedSource(MemorySource(seed))
    notes = reconcile(state, write(state, PATCH.format(json.dumps(
        [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 2}]))))
    assert len(state.list(Query("Pod", "ray", {"ray.io/node-type": "worker"}))) == 8
    assert "to the Ray autoscaler" in notes[0]
    # below maxReplicas the autoscaler decides; above it, it terminates the workers over the cap
    notes = reconcile(state, write(state, PATCH.format(json.dumps(
        [{"op": "replace", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 6}]))))
    assert len(state.list(Query("Pod", "ray", {"ray.io/node-type": "worker"}))) == 6
    assert "above maxReplicas (6 pods), the Ray autoscaler terminates 2 of the 8 workers" in notes[0]


# ----------------------------------------------------------------------------- verification, both ways


def test_the_seeds_fewer_workers_step_names_a_count_that_fits(seed, target):
    """7 workers of 64Gi limits and the head's 32Gi fit in 516Gi; 8 do not (the seed's own advice)."""
    right = verify(seed, target, "oom.limits-overcommit",
                   patch_step("Or run fewer workers", [group_test(), {"op": "replace",
                              "path": "/spec/workerGroupSpecs/0/replicas", "value": 7}]))
    assert (right.status, right.step) == (VERIFIED, 1), right
    assert "memory limits 480Gi of 516Gi" in right.message
    wrong = verify(seed, target, "oom.limits-overcommit",
                   patch_step("Or run fewer workers", [group_test(), {"op": "replace",
                              "path": "/spec/workerGroupSpecs/0/replicas", "value": 8}]))
    assert (wrong.status, wrong.step) == (NOT_VERIFIED, 1), wrong
    assert "still fails" in wrong.message and "544Gi of 516Gi" in wrong.message


def test_a_wrong_alternative_makes_the_remediation_not_verified(seed, target):
    good = patch_step("Lower the limit", [group_test(), {"op": "replace", "value": "60Gi",
                      "path": "/spec/workerGroupSpecs/0/template/spec/containers/0/resources/limits/memory"}])
    bad = patch_step("Or run fewer workers", [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas",
                                               "value": 8}])
    result = verify(seed, target, "oom.limits-overcommit", good, bad)
    assert (result.status, result.step) == (NOT_VERIFIED, 2), result
    assert "the alternative, step 1: verified" in result.message


def test_an_add_to_a_list_that_does_not_exist_is_refused_as_the_api_server_refuses_it(seed, target, tmp_path):
    group = next(o for o in seed if o["kind"] == "RayCluster")["spec"]["workerGroupSpecs"][0]
    del group["template"]["spec"]["volumes"]  # a template without volumes, as many are
    for pod in (o for o in seed if o["kind"] == "Pod" and "worker" in o["metadata"]["name"]):
        pod["spec"].pop("volumes")
        pod["spec"]["containers"][0].pop("volumeMounts")
    ops = [{"op": "add", "path": "/spec/workerGroupSpecs/0/template/spec/volumes/-",
            "value": {"name": "shared-mem", "emptyDir": {"medium": "Memory"}}}]
    result = verify(seed, target, "oom.shm", patch_step("Mount /dev/shm", ops))
    assert (result.status, result.step) == (NOT_VERIFIED, 1), result
    refusal = 'add operation does not apply: doc is missing path: "/spec/workerGroupSpecs/0/template/spec/volumes/-"'
    assert refusal in result.message
    # kube's own json-patch library (kubectl --local applies it as the API server does) refuses it alike
    cluster = tmp_path / "raycluster.json"
    cluster.write_text(json.dumps(next(o for o in seed if o["kind"] == "RayCluster")))
    proc = subprocess.run([str(KUBECTL), "patch", "--local", "-f", str(cluster), "--type=json", "-p", json.dumps(ops),
                           "-o", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and refusal in proc.stderr
    # the patch that adds the list itself applies, and KubeRay's pods then mount it
    fixed = [{"op": "add", "path": "/spec/workerGroupSpecs/0/template/spec/volumes", "value": [ops[0]["value"]]},
             {"op": "add", "path": "/spec/workerGroupSpecs/0/template/spec/containers/0/volumeMounts",
              "value": [{"name": "shared-mem", "mountPath": "/dev/shm"}]}]
    assert verify(seed, target, "oom.shm", patch_step("Mount /dev/shm", fixed)).status == VERIFIED


def test_a_failed_test_op_refuses_the_whole_patch(seed, target):
    ops = [group_test(0, "cpu-workers"), {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 7}]
    result = verify(seed, target, "oom.limits-overcommit", patch_step("Run fewer", ops))
    assert result.status == NOT_VERIFIED and "testing value /spec/workerGroupSpecs/0/groupName failed" in result.message


@pytest.mark.parametrize("steps, why", [
    ([Step("Look", "kubectl get pods -n ray")], "no step changes Kubernetes objects: step 1 kubectl get"),
    ([Step("Restart", "kubectl delete pod -n ray -l ray.io/cluster=ray-gpu", "d")], "restarts what runs"),
    ([Step("Helm", "helm install kuberay-operator kuberay/kuberay-operator --version 1.4.2", "d")],
     "is a change raycheck cannot apply exactly (helm install"),
    ([Step("Jq", "kubectl get raycluster ray-gpu -n ray -o json | jq '.spec' | kubectl apply -f -", "d")],
     "of what the commands before the pipe print"),
])
def test_what_cannot_be_verified_says_why(seed, target, steps, why):
    result = verify(seed, target, "oom.limits-overcommit", *steps)
    assert result.status == NOT_VERIFIABLE and why in result.message, result


def test_a_check_that_reads_history_is_not_verifiable(seed, target):
    result = verify(seed, target, "oom.recent-kills", patch_step("Halve", [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 4}]))
    assert result.status == NOT_VERIFIABLE and "what already happened" in result.message


def test_verification_never_makes_evidence_of_what_the_dump_does_not_hold(seed, target):
    """The policy applied makes security.ray-exposure read Namespaces; a dump without them stays silent."""
    policy = ("kubectl apply -f - <<'EOF'\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
              "{name: p, namespace: ray}\nspec:\n  podSelector: {matchLabels: {ray.io/node-type: head}}\n"
              "  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "
              "swe-ai-fleet}}\nEOF")
    verifier = Verifier(dump(seed, without="Namespace"), target)
    result = verifier.verify(Remediation("t", (Step("Admit", policy, "d"),), ()), deciders("security.ray-exposure")[0])
    assert result.status == NOT_VERIFIABLE and "holds no namespaces" in result.message, result


# ----------------------------------------------------------------------------- the suite, every output


def test_the_seeds_remediations_are_verified_or_say_why_not(run_suite, seed_state, write_dump):
    run = run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(seed_state)}")
    failed = [c for c in run.report["checks"] if c["outcome"] == "failed"]
    assert len(failed) >= 4
    for check in failed:
        verification = check["remediation"]["verification"]
        assert set(verification) == {"status", "step", "message"}
        assert verification["status"] in (VERIFIED, NOT_VERIFIABLE), (check["id"], verification)
        assert verification["message"]
    overcommit = run.check("oom.limits-overcommit")
    steps = overcommit["remediation"]["steps"]
    fewer = next(s for s in steps if s["text"].startswith("Or run fewer workers"))
    assert '"value":7' in fewer["command"].replace(" ", "") and fewer["danger"]
    number = steps.index(fewer) + 1
    assert f"the alternative, step {number}: verified" in overcommit["remediation"]["verification"]["message"]
    assert run.check("rbac.least-privilege")["remediation"]["verification"]["status"] == VERIFIED
    assert run.check("security.ray-exposure")["remediation"]["verification"]["status"] == VERIFIED
    # every output says it: Markdown, HTML, JUnit, the terminal
    markdown = (run.report_dir / "raycheck.md").read_text()
    assert "**Verification:** verified: after step" in markdown and "\u26a0 " in markdown
    html = (run.report_dir / "raycheck.html").read_text()
    assert 'class="verify v-verified"' in html and "class=danger" in html
    junit = (run.report_dir / "junit.xml").read_text()
    assert 'name="verification" value="verified: after step' in junit and "verification: verified" in junit
    assert "\u2713 verified: after step" in run.output and "? not verifiable: no step changes" in run.output


def test_off_by_default_live_and_on_with_the_flag_on_a_snapshot(run_suite, seed_state, write_dump, api_server, tmp_path):
    server = api_server(seed_state)
    config = f"--kubeconfig={server.kubeconfig(tmp_path / 'kubeconfig')}"
    plain = run_suite(TARGET, *OFFLINE, config)
    assert all(c["remediation"]["verification"] is None for c in plain.report["checks"] if c["outcome"] == "failed")
    verified = run_suite(TARGET, *OFFLINE, config, "--verify-remediations")
    for check in (c for c in verified.report["checks"] if c["outcome"] == "failed"):
        assert check["remediation"]["verification"]["status"] in (VERIFIED, NOT_VERIFIABLE), check
    assert verified.check("oom.limits-overcommit")["remediation"]["verification"]["status"] == VERIFIED
    assert {r.method for r in server.log} == {"GET", "POST"}  # reads, and access reviews: nothing written
    assert all(r.path.endswith("accessreviews") for r in server.log if r.method == "POST")
    # and off from a dump when the setting says so
    off = run_suite(TARGET, *OFFLINE, f"--cluster-dump={write_dump(seed_state)}",
                    env={"RAYCHECK_VERIFY_REMEDIATIONS": "0"})
    assert off.check("oom.limits-overcommit")["remediation"]["verification"] is None


def test_a_gate_run_verifies_against_the_running_cluster_with_the_manifests_put_back(run_suite, seed_state, write_dump):
    from tests.test_capacity_suite import workers  # noqa: F401 (the seed's shapes)
    option2 = ROOT / "fixtures" / "scenarios" / "option2"
    run = run_suite(TARGET, "-m", "gate", f"--cluster-dump={write_dump(seed_state)}", f"--with-manifests={option2}")
    check = run.check("capacity.manifests-fit")
    assert check["outcome"] == "failed", check
    verification = check["remediation"]["verification"]
    assert verification["status"] in (VERIFIED, NOT_VERIFIABLE), verification
    assert verification["message"]


def test_a_verifier_crash_does_not_hide_the_finding(seed, target):
    row = copy.copy(deciders("oom.shm")[0])
    object.__setattr__(row, "function", lambda fp: 1 / 0)
    result = Verifier(dump(seed), target).verify(
        Remediation("t", (patch_step("x", [{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas",
                                            "value": 2}]),), ()), row)
    assert result.status == NOT_VERIFIABLE and "ZeroDivisionError" in result.message
