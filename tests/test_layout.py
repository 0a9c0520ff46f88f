"""The layout shows the architecture: a check's logic is found from its id, the library imports no
pytest, and nothing names the top-level folders as packages of their own."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = re.compile(r"""pytest\.mark\.check\(\s*["']([^"']+)["']""")
# the harness (sandbox) and the commands are the library's, but only the suite's glue may import pytest
PYTEST_ALLOWED = {"raycheck/cli.py"}  # imports pytest inside main(), to run it


def suite_checks() -> list[tuple[str, str]]:
    """(suite folder, check id) for every check in suites/."""
    return [(path.parent.name, check_id) for path in sorted((ROOT / "suites").rglob("test_*.py"))
            for check_id in CHECK.findall(path.read_text())]


def test_every_check_id_names_its_function_in_the_suite_folders_module():
    checks = suite_checks()
    assert len(checks) >= 25
    for folder, check_id in checks:
        module = importlib.import_module(f"raycheck.checks.{folder}")
        name = check_id.split(".", 1)[1].replace("-", "_")
        assert callable(getattr(module, name, None)), f"{check_id}: no {name}() in raycheck/checks/{folder}.py"


def test_the_library_imports_no_pytest():
    for path in sorted((ROOT / "raycheck").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top_level if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in top_level if isinstance(n, ast.ImportFrom)}
        if relative not in PYTEST_ALLOWED:
            assert not names & {"pytest", "_pytest"}, f"{relative} imports pytest"
            assert "import pytest" not in path.read_text(), f"{relative} imports pytest"


def test_nothing_imports_the_folders_as_top_level_packages():
    """plugins/, fixtures/ and suites/ are raycheck.plugins, raycheck.fixtures, raycheck.suites."""
    pattern = re.compile(r"^\s*(from|import)\s+(plugins|fixtures|suites)\b", re.M)
    for folder in ("raycheck", "plugins", "fixtures", "suites", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), f"{path.relative_to(ROOT)} imports a top-level folder"
