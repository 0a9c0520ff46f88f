"""A dump taken the way raycheck tells a user to take one, and raycheck run on it offline.

:func:`take_dump` starts from the command raycheck gives for a missing Node list, runs raycheck
``-m 'not network'`` on the folder, then runs the commands its skipped checks give ("add them with:
...", :func:`raycheck.cluster.source.add_command`), until no check is skipped for missing evidence.
A command that ran and is asked for again is a defect (it does not add what it claims to), and so is
a walk that does not end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from raycheck.cluster.kinds import KINDS
from raycheck.cluster.source import add_command
from tests.e2e.verdicts import Report, add_commands, report_from_log

# the entrypoint's own choice (deploy/entrypoint.sh): the capacity model's properties test raycheck, not a cluster
SUITE_ARGS = ("-p", "no:hypothesispytest", "--ignore-glob=*/suites/capacity/test_properties.py")
MAX_ROUNDS = 2 * len(KINDS)  # every round adds a kind, in one namespace or in all of them


def raycheck_offline(target: Path, source: str, report_dir: Path) -> Report:
    """``raycheck -m 'not network'`` on ``source`` (``--cluster-dump=DIR`` or ``--kubeconfig=FILE``): the
    JSON report it prints with ``--json-line``, as the CronJob does (exit 0 or 1; 4, bad input, fails here)."""
    out = subprocess.run([sys.executable, "-m", "raycheck", *SUITE_ARGS, "-q", "--json-line", "-m", "not network",
                          f"--target={target}", source, f"--report-dir={report_dir}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), f"raycheck {source} exited {out.returncode}:\n{out.stdout[-3000:]}{out.stderr[-2000:]}"
    return report_from_log(out.stdout)


def shell(command: str, env: dict[str, str]) -> None:
    """One command as a user pastes it (``mkdir -p ... && kubectl get ... > file``)."""
    out = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{command}: exit {out.returncode}: {out.stderr[-2000:]}"


def take_dump(root: Path, target: Path, env: dict[str, str], report_dir: Path) -> tuple[Report, list[str]]:
    """Dump the cluster ``env``'s kubectl reaches into ``root`` by raycheck's own commands: the final
    offline report and the commands, in the order they ran."""
    root.mkdir(parents=True)
    ran: list[str] = []
    pending = [add_command("Node", None, root)]
    for _ in range(MAX_ROUNDS):
        for command in pending:
            shell(command, env)
            ran.append(command)
        report = raycheck_offline(target, f"--cluster-dump={root}", report_dir)
        pending = add_commands(report)
        again = [c for c in pending if c in ran]
        assert not again, f"raycheck still asks for what these commands added: {again}"
        if not pending:
            return report, ran
    raise AssertionError(f"still skipping for missing evidence after {MAX_ROUNDS} rounds; ran {ran}")
