"""Run the suite many times in one process and record what it holds after each run.

``python -m tests.soak RUNS -- PYTEST_ARGS...`` prints one JSON line per run: exit status, the checks
that did not pass (id, outcome, cause: from the run's ``raycheck.json``), open file descriptors,
threads, live child processes, handshake processes anywhere on the machine, and RSS.
A scheduled raycheck runs hundreds of times; whatever one run leaks, these lines show growing.
Imported modules are kept between runs (dropping them, as pytester does, makes every run import
the libraries again and grows the process by ~14 MiB a run that is not raycheck's).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

HANDSHAKE_CHILD = b"ray_handshake_child.py"


def processes() -> list[tuple[int, int, int, bytes]]:
    """(pid, parent pid, process group, command line) of every live process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        state, ppid, pgid = stat.rsplit(")", 1)[1].split()[:3]
        if state == "Z":
            continue  # a zombie holds nothing (and init may reap it late)
        found.append((int(entry.name), int(ppid), int(pgid), cmdline))
    return found


def problems(report_dir: Path) -> list[list[str | None]]:
    """[id, outcome, cause] of every check of the last run that neither passed nor was skipped."""
    try:
        checks = json.loads((report_dir / "raycheck.json").read_text())["checks"]
    except (OSError, ValueError, KeyError) as exc:
        return [["report", "unreadable", str(exc)]]
    return [[c["id"], c["outcome"], c.get("cause")] for c in checks if c["outcome"] not in ("passed", "skipped")]


def sample(status: int, wall_s: float, report_dir: Path) -> dict[str, Any]:
    found = problems(report_dir)
    gc.collect()
    procs = processes()
    me = os.getpid()
    rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return {
        "status": status,
        "problems": found,
        "wall_s": round(wall_s, 3),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "children": sum(1 for _, ppid, _, _ in procs if ppid == me),
        # a handshake child left behind: ours, or orphaned (re-parented to init)
        "handshake_processes": sum(1 for _, ppid, _, cmd in procs if HANDSHAKE_CHILD in cmd and ppid in (me, 1)),
        "rss_mib": round(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1),
    }


def main(runs: int, args: list[str]) -> None:
    report_dir = Path(next(a for a in args if a.startswith("--report-dir=")).split("=", 1)[1])
    for _ in range(runs):
        start = time.monotonic()
        status = pytest.main(["-q", "-p", "no:cacheprovider", *args])
        wall = time.monotonic() - start
        print(json.dumps(sample(int(status), wall, report_dir)), flush=True)


if __name__ == "__main__":
    separator = sys.argv.index("--")
    main(int(sys.argv[1]), sys.argv[separator + 1:])
