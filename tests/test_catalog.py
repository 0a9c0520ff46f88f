"""The remediation catalog: one entry per check, every entry a check's, every placeholder filled."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from raycheck.remediation import (
    DANGER_MARK, GENERIC_ENTRIES, Catalog, CatalogError, load_catalog, placeholders, undeclared_dangers,
)
from raycheck.cluster.source import ClusterReadError, Query
from raycheck.remediation import kubectl, shell
from tests.kubectl_discovery import discovery_server  # noqa: F401 (a fixture)
from tests.test_config import SEED

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
CHECK_MARK = re.compile(r"""pytest\.mark\.check\(\s*["']([^"']+)["']""")
# names every rendering gets: the target's names, versions, and what the plugin adds
BASE = {"address", "head_host", "head_fqdn", "head_service", "ray_namespace", "cluster_name", "cluster_domain",
        "client_namespace", "service_account", "dashboard_alias", "alias_fqdn", "client_port", "dashboard_port",
        "target_file", "local_ray_version", "local_python_version", "cluster_ray_version",
        "cluster_python_version", "ray_image", "rerun", "capacity", "test_name", "head_pod"}


def suite_check_ids() -> set[str]:
    return {m for path in (ROOT / "suites").rglob("*.py") for m in CHECK_MARK.findall(path.read_text())}


def catalog_strings(entry: dict) -> list[str]:
    variants = [entry, *(entry.get("causes") or {}).values()]
    out = []
    for v in variants:
        out += [v.get("title", "")] + [s["text"] for s in v.get("steps") or []] + \
            [s.get("command") or "" for s in v.get("steps") or []]
    return [s for s in out if s]


def test_every_check_has_an_entry_and_every_entry_a_check():
    catalog = load_catalog()
    checks = suite_check_ids()
    assert len(checks) >= 8
    assert checks - catalog.check_ids == set(), "checks without a remediation entry"
    assert catalog.check_ids - checks == set(), "catalog entries without a check"


def test_every_figure_placeholder_is_produced_by_the_code():
    sources = "\n".join(p.read_text() for d in ("raycheck", "plugins") for p in (ROOT / d).rglob("*.py"))
    catalog = load_catalog()
    for check_id, entry in catalog.entries.items():
        for name in set().union(*(placeholders(s) for s in catalog_strings(entry))) - BASE:
            assert re.search(rf"""["']{name}["']|\b{name}=""", sources), f"{check_id}: nothing fills {{{name}}}"


@pytest.fixture
def context(tmp_path):
    from raycheck.config import load_target_file
    path = tmp_path / "t.yaml"
    path.write_text(SEED)
    target, _ = load_target_file(path)
    names = dict(target.names())
    names.update({k: f"<{k}>" for k in BASE - set(names)})
    return names


def test_every_entry_and_cause_renders_completely(context):
    catalog = load_catalog()
    for check_id, entry in catalog.entries.items():
        figures = {name: f"<{name}>" for s in catalog_strings(entry) for name in placeholders(s)}
        for cause in (None, *catalog.causes(check_id)):
            rendered = catalog.render(check_id, {**figures, **context}, cause)
            assert rendered.steps, f"{check_id}/{cause}: no steps"
            text = rendered.as_text()
            assert not re.search(r"\{(?!end\})[A-Za-z_]\w*\}", text), f"{check_id}/{cause}: {text}"
            if check_id not in GENERIC_ENTRIES:
                assert rendered.docs, f"{check_id}: no docs link"


def test_rendering_uses_the_targets_names(context):
    rendered = load_catalog().render("port.client", context, "timeout")
    commands = [s.command for s in rendered.steps]
    assert "kubectl get networkpolicy -n ray -o wide && kubectl get networkpolicy -n swe-ai-fleet -o wide" in commands
    assert any("nc -zv -w 3 ray-gpu-head-svc.ray.svc.cluster.local 10001" in c for c in commands)


def test_a_missing_value_is_an_error_not_output():
    with pytest.raises(CatalogError, match=r"placeholder \{head_fqdn\} has no value"):
        load_catalog().render("dns.head-service", {}, "nxdomain")


def test_the_seeds_wrong_scale_command_is_not_in_the_catalog():
    catalog = load_catalog()
    commands = [s for entry in catalog.entries.values() for s in catalog_strings(entry)]
    assert not [c for c in commands if "kubectl scale raycluster" in c]  # no scale subresource (FACTS.md)


# ----------------------------------------------------------------------------- danger lines, and commands kubectl takes

def test_every_step_that_changes_the_cluster_says_its_danger():
    assert undeclared_dangers(load_catalog()) == []


@pytest.mark.parametrize("step, error", [
    ({"text": "t", "danger": "d"}, "belongs to a step with a command"),
    ({"text": "t", "command": "kubectl delete pod x -n y", "danger": ""}, "a danger line is text"),
    ({"text": "t", "command": "c", "dangers": "d"}, "unknown step keys"),
])
def test_a_malformed_danger_line_is_a_catalog_error(step, error):
    with pytest.raises(CatalogError, match=error):
        Catalog({"x.y": {"title": "t", "steps": [step]}}, "catalog.yaml")


def test_a_step_that_mutates_without_danger_is_found():
    catalog = Catalog({"x.y": {"title": "t", "causes": {"c": {"steps": [
        {"text": "Restart", "command": "kubectl get pods -n a && kubectl delete pod -n a -l x=y"},
        {"text": "Look", "command": "kubectl get pods -n a | grep x"}]}}}}, "catalog.yaml")
    assert undeclared_dangers(catalog) == ["x.y (c): Restart"]


def test_danger_is_rendered_in_every_output(context):
    entry = load_catalog().entries["security.ray-exposure"]
    figures = {name: "x" for s in catalog_strings(entry) for name in placeholders(s)}
    rendered = load_catalog().render("security.ray-exposure", {**figures, **context}, "open")
    danger = next(s.danger for s in rendered.steps if s.command and "kubectl apply" in s.command)
    assert danger and "{" not in danger
    assert f"{DANGER_MARK} {danger}" in rendered.as_text()
    assert rendered.as_dict()["steps"][0]["danger"] == danger


FIGURE = "fig-{}"  # a figure's stand-in: a word kubectl takes as a name


@pytest.fixture
def commands_context(context):
    """The seed's names, and what the plugin adds as a run would (reruns, the head pod, versions)."""
    from raycheck.plugins.remediation import HEAD_POD

    return {**context, "rerun": "raycheck --target=t.yaml --cluster-dump=dump -m oom",
            "capacity": "raycheck capacity --target=t.yaml --cluster-dump=dump", "test_name": "test_x",
            "head_pod": HEAD_POD.format(ns="ray", name="ray-gpu"), "local_ray_version": "2.49.2",
            "cluster_ray_version": "2.49.2", "local_python_version": "3.11.9", "cluster_python_version": "3.11.9",
            "ray_image": "rayproject/ray:2.49.2-py311", "client_python_image": "rayproject/ray:2.49.2-py311",
            "debug_image": "nicolaka/netshoot:v0.16"}


def rendered_commands(context) -> list[tuple[str, str]]:
    """Every command of every entry and cause, rendered with the seed's names, figures as stand-ins;
    and ``_cluster-read``'s grants with the figures of real read errors (they choose the command)."""
    catalog = load_catalog()
    reads = [ClusterReadError(Query("RayCluster", "ray"), 403, "forbidden", "forbidden"),
             ClusterReadError(Query("Node"), 403, "forbidden", "forbidden")]
    out = [(f"_cluster-read ({e.query.kind})", step.command) for e in reads
           for step in catalog.render("_cluster-read", {**context, **e.figures()}, "forbidden").steps if step.command]
    for check_id, entry in catalog.entries.items():
        figures = {name: FIGURE.format(name.replace("_", "-")) for s in catalog_strings(entry)
                   for name in placeholders(s)}
        for cause in (None, *catalog.causes(check_id)):
            for step in catalog.render(check_id, {**figures, **context}, cause).steps:
                if step.command:
                    out.append((f"{check_id} ({cause})", step.command))
    return list(dict.fromkeys(out))


def kubectl_flags(verb: tuple[str, ...]) -> set[str]:
    """The flags ``kubectl VERB --help`` and ``kubectl options`` list (long names and short letters)."""
    text = subprocess.run([str(KUBECTL), *verb, "--help"], capture_output=True, text=True, timeout=60).stdout
    return _flags_in(text) | _flags_in(kubectl_options())


@functools.lru_cache(maxsize=1)
def kubectl_options() -> str:
    return subprocess.run([str(KUBECTL), "options"], capture_output=True, text=True, timeout=60).stdout


def _flags_in(text: str) -> set[str]:
    return {name for match in re.finditer(r"^\s+(?:-(\w), )?--([\w-]+)[=:]", text, re.M) for name in match.groups()
            if name}


def test_every_command_is_valid_shell_and_kubectl(commands_context):
    """Each command parses as the shell parses it (``bash -n``, and raycheck's reading of it); each
    kubectl command uses only flags the pinned kubectl knows; its -p is JSON or YAML (a JSON patch a
    list) and its here-documents are Kubernetes objects, wherever no figure stands in them."""
    helps: dict[tuple[str, ...], set[str]] = {}
    objects: list[tuple[str, dict]] = []  # here-document objects, each given to kubectl below
    for where, command in rendered_commands(commands_context):
        syntax = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, timeout=30)
        assert syntax.returncode == 0, f"{where}: {syntax.stderr}\n{command}"
        for pipeline in shell.parse(command):
            for cmd in pipeline.commands:
                if cmd.argv[0] != "kubectl":
                    continue
                call = kubectl.invocation(cmd)
                if "fig-" in call.verb or "fig-" in "".join(call.positionals[:1]) or \
                        any(w.startswith("--fig-") for w in cmd.argv):
                    continue  # a figure chooses the command itself: checked with real figures above
                verb = tuple(call.verb.split(" "))
                if verb[0] in ("top", "auth", "config", "rollout", "set") and call.positionals:
                    verb = (verb[0], call.positionals[0])  # a command group: its subcommand has the flags
                if verb not in helps:  # one `kubectl <verb> --help` per verb
                    helps[verb] = kubectl_flags(verb)
                known = helps[verb]
                argv = cmd.argv[:cmd.argv.index("--")] if "--" in cmd.argv else cmd.argv
                words = [w for w in argv if w.startswith("-") and w != "-"]
                for word in words:
                    name = word.lstrip("-").split("=", 1)[0]
                    names = list(name) if not word.startswith("--") and len(name) > 1 else [name]  # -it: -i -t
                    assert set(names) <= known, f"{where}: kubectl {call.verb} has no flag {word}\n{command}"
                patch = call.flag("patch")
                if patch is not None and "fig-" not in patch:
                    parsed = yaml.safe_load(patch)
                    assert isinstance(parsed, list if call.flag("type") == "json" else dict), f"{where}: {patch}"
                if cmd.heredoc is not None and "fig-" not in cmd.heredoc:
                    for doc in yaml.safe_load_all(cmd.heredoc):
                        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], f"{where}: {doc}"
                        objects.append((where, doc))

    def kubectl_takes(item: tuple[str, dict]) -> str | None:
        where, doc = item
        local = subprocess.run([str(KUBECTL), "label", "--local", "-f", "-", "raycheck-check=1", "-o", "json"],
                               input=yaml.safe_dump(doc), capture_output=True, text=True, timeout=60)
        return None if local.returncode == 0 else f"{where}: kubectl does not take it: {local.stderr}"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # a kubectl process each: mostly its start
        refused = [r for r in pool.map(kubectl_takes, objects) if r]
    assert not refused, refused


def test_kubectl_create_commands_make_what_raycheck_applies(commands_context, discovery_server, tmp_path):
    """The objects the catalog's ``kubectl create`` commands make, per the pinned kubectl (``--dry-run=client``,
    against a discovery-only server for the resource names), are the objects the verifier applies."""
    config = discovery_server.kubeconfig(tmp_path / "kubeconfig")
    compared = 0
    for where, command in rendered_commands(commands_context):
        if "fig-" in command:
            continue
        for pipeline in shell.parse(command):
            for cmd in pipeline.commands:
                if cmd.argv[:2] != ["kubectl", "create"]:
                    continue
                effect = kubectl.effects(str(cmd))[0] if not cmd.computed else None
                if effect is None or effect.operation is None:
                    continue
                proc = subprocess.run([*map(str, [KUBECTL, f"--kubeconfig={config}"]), *cmd.argv[1:],
                                       "--dry-run=client", "-o", "json"], capture_output=True, text=True,
                                      timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
                assert proc.returncode == 0, f"{where}: {proc.stderr}"
                theirs = json.loads(proc.stdout)
                theirs.pop("status", None)
                theirs["metadata"].pop("creationTimestamp", None)
                assert effect.operation.objects[0] == theirs, where
                compared += 1
    assert compared >= 6


def test_every_image_in_a_command_is_pinned(commands_context):
    """A pasted command runs the image it names today and next year: a tag, never none or latest."""
    for where, command in rendered_commands(commands_context):
        for image in re.findall(r"--image[= ](\S+)", command):
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", f"{where}: unpinned image {image}"
