"""The other Rays and Pythons the tests need, built once and cached under ``.cache/`` (git-ignored).

A clean clone (CI) builds them once; later runs of ``make test`` reuse them. They are built by
``raycheck client-env`` itself, one after the other at low priority in a background thread that
starts when the tests that need them are collected (:func:`start_if_needed`), so the builds
overlap the rest of the suite instead of adding to it:

* the head of another Python: Ray 2.49.2 (the project's pin) with its dashboard, on a Python
  that is not raycheck's own (3.12, else 3.10, 3.13 or 3.9: whichever this machine has);
* the client runtime for it, in raycheck's cache (``XDG_CACHE_HOME=.cache``), exactly as a user
  makes it: ``raycheck client-env --ray 2.49.2 --python 3.12``;
* a Ray 2.60.0 head (token authentication), on raycheck's own Python.
"""

from __future__ import annotations

import fcntl
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from raycheck.runtimes import RuntimeUnavailable, find_python

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"  # the XDG_CACHE_HOME of runs that should find the client-env runtimes
HEADS = CACHE / "raycheck-test-heads"
PIN = "2.49.2"
TOKEN_RAY = "2.60.0"
OTHER_PYTHONS = ("3.12", "3.10", "3.13", "3.9")
BUILD_TIMEOUT = 900.0


@dataclass
class Built:
    python: str | None = None  # the interpreter, once built
    error: str | None = None
    skip: str | None = None  # a reason the test cannot run on this machine (not a failure)
    seconds: float = 0.0


class Builds:
    """Builds run one after the other in one background thread; tests wait for the one they need."""

    def __init__(self) -> None:
        self.results: dict[str, Built] = {}
        self.done: dict[str, threading.Event] = {}
        self.thread: threading.Thread | None = None
        self.other_minor: str | None = None

    def start(self) -> None:
        if self.thread is not None:
            return
        for name in ("head-other", "client-env-other", "head-token"):
            self.done[name] = threading.Event()
        self.thread = threading.Thread(target=self._run, name="runtime-builds", daemon=True)
        self.thread.start()

    def wait(self, name: str, timeout: float = BUILD_TIMEOUT) -> Built:
        self.start()
        if not self.done[name].wait(timeout):
            return Built(error=f"{name}: not built within {timeout:g} s")
        return self.results[name]

    def _run(self) -> None:
        other = None
        for minor in OTHER_PYTHONS:
            try:
                other = find_python(minor)[0]
            except RuntimeUnavailable:
                continue
            self.other_minor = minor
            break
        if other is None:
            for name in ("head-other", "client-env-other"):
                self._set(name, Built(skip=f"no Python {', '.join(OTHER_PYTHONS)} on this machine: a head on a Python "
                                           "other than raycheck's own cannot be made here"))
        else:
            self._build("head-other", [PIN, other, "--extras", "client,default", "--into",
                                       str(HEADS / f"ray-{PIN}-py{self.other_minor}")])
            self._build("client-env-other", [PIN, self.other_minor or ""])
        self._build("head-token", [TOKEN_RAY, sys.executable, "--extras", "client,default", "--into",
                                   str(HEADS / f"ray-{TOKEN_RAY}-py{python_minor()}")])

    def _build(self, name: str, args: list[str]) -> None:
        """``raycheck client-env --ray A --python B ...`` at low priority (the suite runs meanwhile)."""
        ray, python, *rest = args
        command = ["nice", "-n", "10", sys.executable, "-m", "raycheck", "client-env", "--ray", ray,
                   "--python", python, *rest]
        start = time.monotonic()
        CACHE.mkdir(exist_ok=True)
        with open(CACHE / "build.lock", "a") as lock:  # parallel test workers build each one once
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=ROOT,
                                  env={**os.environ, "XDG_CACHE_HOME": str(CACHE)})
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            self._set(name, Built(error=f"{' '.join(command)}: status {proc.returncode}\n{proc.stdout}\n{proc.stderr}",
                                  seconds=seconds))
            return
        ready = [line for line in proc.stdout.splitlines() if line.startswith("ready: ")]
        self._set(name, Built(python=ready[-1].rsplit(": ", 1)[1], seconds=seconds))

    def _set(self, name: str, built: Built) -> None:
        self.results[name] = built
        self.done[name].set()


def python_minor() -> str:
    return ".".join(platform.python_version().split(".")[:2])


BUILDS = Builds()


def start_if_needed(nodeids: list[str]) -> None:
    """Start the builds when a collected test needs them (``tests/test_runtimes.py``)."""
    if any(nodeid.startswith("tests/test_runtimes.py") for nodeid in nodeids):
        BUILDS.start()
