"""The remediation catalog: one entry per check, every entry a check's, every placeholder filled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from raycheck.remediation import GENERIC_ENTRIES, CatalogError, load_catalog, placeholders
from tests.test_config import SEED

ROOT = Path(__file__).resolve().parents[1]
CHECK_MARK = re.compile(r"""pytest\.mark\.check\(\s*["']([^"']+)["']""")
# names every rendering gets: the target's names, versions, and what the plugin adds
BASE = {"address", "head_host", "head_fqdn", "head_service", "ray_namespace", "cluster_name", "cluster_domain",
        "client_namespace", "service_account", "dashboard_alias", "alias_fqdn", "client_port", "dashboard_port",
        "target_file", "local_ray_version", "local_python_version", "cluster_ray_version",
        "cluster_python_version", "ray_image", "rerun", "test_name", "head_pod"}


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
