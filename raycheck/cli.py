"""The ``raycheck`` command: the bundled suites from any directory, and raycheck's other tools.

``raycheck [pytest options]`` runs the suites installed with the package under raycheck's own
pytest configuration (``plugins/pytest.ini``: strict markers and options), whatever the current
directory holds: its ``pytest.ini`` or ``conftest.py`` are not read. Exit statuses are the
suite's: 0, 1 when a check at or above ``--fail-on`` failed, 4 for bad input.
``raycheck capacity ...``, ``raycheck sandbox ...`` and ``raycheck client-env ...`` are the capacity
table, the sandbox and the Ray Client runtime builder.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

TOOLS = {
    "capacity": "the capacity table of the cluster, now and with --with-manifests (raycheck capacity --help)",
    "sandbox": "a local Ray head, loopback DNS and the seed cluster; runs the suite (raycheck sandbox --help)",
    "client-env": "build the Ray Client runtime a cluster needs: --ray 2.49.2 --python 3.9 (raycheck client-env --help)",
}


def suites_dir() -> Path:
    return Path(str(files("raycheck.suites")))


def pytest_args(argv: list[str]) -> list[str]:
    """pytest's arguments for a suite run: raycheck's configuration and rootdir, the bundled suites."""
    ini = Path(str(files("raycheck.plugins") / "pytest.ini"))
    suites = suites_dir()
    # no cache: the rootdir may be a read-only site-packages (the image), and runs must not depend on
    # the last one (--lf would silently run a subset)
    # this command imported raycheck before pytest could mark the plugin's distribution for assertion
    # rewriting: nothing of it needs rewriting (the suites are rewritten), so that warning is noise
    quiet = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
    return ["-c", str(ini), f"--rootdir={suites.parent}", "-p", "no:cacheprovider", "-W", quiet, *argv, str(suites)]


def help_text() -> str:
    from raycheck.settings import SETTINGS

    lines = ["usage: raycheck [pytest options] | raycheck capacity ... | raycheck sandbox ... | raycheck client-env ...",
             "",
             "Runs raycheck's suites (all of them, or those -m selects) against the target.", "",
             "raycheck options (each also RAYCHECK_<NAME> and a key of the target file's raycheck: section):",
             f"  {'--target FILE':<32} the target file; env RAYCHECK_TARGET"]
    for s in SETTINGS:
        flag = s.option if s.metavar is None else f"{s.option} {s.metavar}"
        lines.append(f"  {flag:<32} {s.help}")
    lines += ["", "tools:"] + [f"  {name:<32} {text}" for name, text in TOOLS.items()]
    lines += ["", "markers: -m connectivity, dns, port, ray_client, k8s, rbac, gpu, oom, capacity, security, gate, "
              "deep, network (-m 'not network': offline)", "",
              "exit status: 0 ok, 1 a check at or above --fail-on failed, 4 bad input", "",
              "pytest's own options follow.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "capacity":
        from raycheck.capacity_report import main as capacity

        return capacity(args[1:])
    if args and args[0] == "sandbox":
        from raycheck.harness.sandbox import main as sandbox

        return sandbox(args[1:])
    if args and args[0] == "client-env":
        from raycheck.client_env import main as client_env

        return client_env(args[1:])
    import pytest

    if "-h" in args or "--help" in args:
        print(help_text(), flush=True)
    return int(pytest.main(pytest_args(args), plugins=[_CommandPlugin()]))


class _CommandPlugin:
    """Registered under this name so that remediations' rerun commands say ``raycheck``."""

    def __init__(self) -> None:
        self.__name__ = "raycheck-command"
