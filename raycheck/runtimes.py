"""Ray Client runtimes: interpreters that hold the cluster's Ray version on the cluster's Python.

Ray Client refuses a client whose Ray differs from the cluster's, or whose Python major.minor
does (FACTS.md), and clusters run any Ray from 2.9 to 2.60 on the Python their image was built
with. raycheck's own interpreter is one runtime; the others are

* the interpreter named by ``--ray-python`` (``raycheck.ray_python``, ``RAYCHECK_RAY_PYTHON``), and
* cached client environments that ``raycheck client-env --ray X --python Y`` builds: a venv on
  that Python (found on PATH, through pyenv or through uv) with ``ray[client]==X`` from the
  package index, under ``$XDG_CACHE_HOME/raycheck/runtimes`` (else ``~/.cache``), one folder per
  (Ray, Python minor).

A build writes its marker file (:data:`MARKER`) last, under a lock: a folder without one is a
half-built environment, never picked, and removed by the next build. The handshake child and the
deep GPU tasks run in the runtime :func:`choose` picks for the cluster's versions.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from raycheck.versions import default_python, local_ray_version, python_minor

MARKER = "raycheck-runtime.json"
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([.\-+]?\w+)*$")
MINOR = re.compile(r"^3\.\d{1,2}$")
# How an interpreter says what it is; runs on any Python 3 (no f-strings with =, no walrus).
_DESCRIBE = ("import json, platform\n"
             "try:\n    from importlib.metadata import version\n    ray = version('ray')\n"
             "except Exception:\n    ray = None\n"
             "print(json.dumps({'python': platform.python_version(), 'ray': ray}))")
_ASK_TIMEOUT = 20.0  # starting a cold interpreter from a slow disk takes seconds, not minutes


class RuntimeUnavailable(Exception):
    """An interpreter cannot be described, found or built into a runtime; the message is one line,
    ``output`` the failed step's last lines."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Runtime:
    """An interpreter and the Ray and Python it runs."""

    python: str
    ray_version: str | None
    python_version: str
    origin: str  # where raycheck found it, in words ("raycheck's own", "--ray-python", "client-env ...")

    @property
    def minor(self) -> str:
        return python_minor(self.python_version) or self.python_version

    def matches(self, ray: str | None, minor: str | None) -> bool:
        return (ray is None or self.ray_version == ray) and (minor is None or self.minor == minor)

    def describe(self) -> str:
        return f"{self.python} ({self.origin}: Ray {self.ray_version or 'not installed'}, Python {self.python_version})"


def own() -> Runtime:
    """The interpreter raycheck runs in, with the Ray installed beside it (if any)."""
    return Runtime(sys.executable, local_ray_version(), platform.python_version(), "raycheck's own")


def describe_interpreter(python: str, origin: str, timeout: float = _ASK_TIMEOUT) -> Runtime:
    """Ask an interpreter for its Python and Ray versions (it runs, with a deadline)."""
    try:
        proc = subprocess.run([python, "-I", "-c", _DESCRIBE], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"{python}: cannot run it: {exc}") from None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeUnavailable(f"{python}: not a working Python interpreter ({tail[:200]})") from None
    return Runtime(python, answer.get("ray"), str(answer["python"]), origin)


# ----------------------------------------------------------------------------- the cache


def cache_root(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/raycheck/runtimes``, else ``~/.cache/raycheck/runtimes``."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or str(Path.home()), ".cache")
    return Path(base) / "raycheck" / "runtimes"


def env_name(ray: str, minor: str) -> str:
    return f"ray-{ray}-py{minor}"


def interpreter_of(folder: Path) -> Path:
    return folder / "bin" / "python"


def cached(root: Path | None = None) -> list[Runtime]:
    """The complete client environments under ``root`` (those whose marker was written)."""
    root = cache_root() if root is None else root
    found = []
    try:
        folders = sorted(root.iterdir())
    except OSError:
        return []
    for folder in folders:
        marker = folder / MARKER
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # half-built, or not ours
        python = interpreter_of(folder)
        if python.exists():
            found.append(Runtime(str(python), info.get("ray"), str(info.get("python")), f"client-env {folder}"))
    return found


def choose(ray: str | None, minor: str | None, candidates: list[Runtime]) -> Runtime | None:
    """The first candidate with the cluster's Ray and Python minor (None: unknown, any).

    With the Python minor unknown, a runtime on the release's default Python comes first among
    those with the right Ray: the image without ``-pyXY`` is the commonest."""
    matching = [r for r in candidates if r.matches(ray, minor)]
    if minor is None and ray is not None:
        default = default_python(ray)
        matching.sort(key=lambda r: r.minor != default)
    return matching[0] if matching else None


def build_command(ray: str, minor: str) -> str:
    """The one command that builds the runtime a cluster needs."""
    return f"raycheck client-env --ray {ray} --python {minor}"


# ----------------------------------------------------------------------------- finding Python


def find_python(minor: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """An interpreter of Python ``minor``: (path, how it was found). Tried in order: ``python3.X``
    on PATH (a pyenv shim that is not active fails when asked and is skipped), pyenv's versions,
    uv's managed Pythons. Raises RuntimeUnavailable naming what was tried."""
    env = dict(os.environ) if env is None else env
    tried = []
    for how, path in _candidates(minor, env):
        tried.append(how)
        try:
            if describe_interpreter(path, how, timeout=10).minor == minor:
                return path, how
        except RuntimeUnavailable:
            continue
    raise RuntimeUnavailable(f"no Python {minor} found (tried {', '.join(tried) or 'nothing'}): install it, e.g. "
                             f"`pyenv install {minor}` or `uv python install {minor}`, or pass "
                             f"--python /path/to/python{minor}")


def _candidates(minor: str, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    on_path = shutil.which(f"python{minor}", path=env.get("PATH"))
    if on_path:
        yield f"python{minor} on PATH", on_path
    root = _pyenv_root(env)
    if root is not None:
        patch = re.compile(rf"{re.escape(minor)}\.\d+")  # CPython 3.X.Y, not pypy or a named env
        versions = sorted((v for v in (root / "versions").glob(f"{minor}.*") if patch.fullmatch(v.name)),
                          key=lambda v: int(v.name.rsplit(".", 1)[1]), reverse=True)
        for version in versions:
            python = version / "bin" / f"python{minor}"
            if python.exists():
                yield f"pyenv {version.name}", str(python)
    uv = shutil.which("uv", path=env.get("PATH"))
    if uv:
        try:
            proc = subprocess.run([uv, "python", "find", minor], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return
        if proc.returncode == 0 and proc.stdout.strip():
            yield f"uv python find {minor}", proc.stdout.strip()


def _pyenv_root(env: dict[str, str]) -> Path | None:
    if env.get("PYENV_ROOT"):
        return Path(env["PYENV_ROOT"])
    pyenv = shutil.which("pyenv", path=env.get("PATH"))
    if pyenv:
        try:
            proc = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is not None and proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    default = Path(env.get("HOME") or str(Path.home())) / ".pyenv"
    return default if (default / "versions").is_dir() else None


# ----------------------------------------------------------------------------- building


def build(ray: str, python: str, folder: Path, extras: str = "client",
          progress: Callable[[str], None] = lambda line: None) -> Runtime:
    """Build (or reuse) the environment at ``folder``: a venv on ``python`` with ``ray[extras]==ray``.

    Under a lock beside the folder; the marker is written last, so an interrupted build leaves a
    folder that is never picked and is wiped by the next build."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = folder / MARKER
        if marker.exists() and interpreter_of(folder).exists():
            info = json.loads(marker.read_text())
            return Runtime(str(interpreter_of(folder)), info.get("ray"), str(info.get("python")),
                           f"client-env {folder}")
        shutil.rmtree(folder, ignore_errors=True)
        base = describe_interpreter(python, python)
        uv = shutil.which("uv")
        started = time.monotonic()
        requirement = f"ray[{extras}]=={ray}" if extras else f"ray=={ray}"
        progress(f"creating a venv on Python {base.python_version} ({python}) at {folder}")
        if uv:
            _run([uv, "venv", "--quiet", "--python", python, str(folder)], progress, started)
            install = [uv, "pip", "install", "--compile-bytecode", "--python", str(interpreter_of(folder)),
                       requirement]
        else:
            install = [str(interpreter_of(folder)), "-m", "pip", "install", "--disable-pip-version-check",
                       "--progress-bar", "off", requirement]
            try:
                _run([python, "-m", "venv", str(folder)], progress, started)
            except RuntimeUnavailable as exc:  # Debian's Pythons without python3.X-venv: no ensurepip
                if "ensurepip" not in exc.output:
                    raise
                shutil.rmtree(folder, ignore_errors=True)
                _run([python, "-m", "venv", "--without-pip", str(folder)], progress, started)
                install[:3] = [sys.executable, "-m", "pip", "--python", str(interpreter_of(folder))]
        progress(f"installing {requirement} (from the package index)")
        _run(install, progress, started)
        runtime = describe_interpreter(str(interpreter_of(folder)), f"client-env {folder}")
        if runtime.ray_version != ray:
            raise RuntimeUnavailable(f"{folder}: installed Ray {runtime.ray_version}, not {ray}")
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ray": ray, "python": runtime.python_version, "extras": extras,
                                   "built_from": python, "seconds": round(time.monotonic() - started, 1)}))
        os.replace(tmp, marker)
        return runtime


def _run(command: list[str], progress: Callable[[str], None], started: float) -> None:
    """Run a build step, feeding its output lines to ``progress``; one line of error if it fails."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    last: list[str] = []
    reader = threading.Thread(target=_pump, args=(proc.stdout, progress, started, last), daemon=True)
    reader.start()
    status = proc.wait()
    reader.join(timeout=5)
    if status != 0:
        raise RuntimeUnavailable(f"`{' '.join(command[:4])} ...` exited with status {status}: "
                                 f"{' / '.join(last[-3:]) or 'no output'}"[:600], "\n".join(last))


def _pump(stream: IO[str], progress: Callable[[str], None], started: float, last: list[str]) -> None:
    for line in stream:
        line = line.strip()
        if not line or "is ignored: it is neither a file nor a directory" in line:
            continue
        last[:] = [*last[-19:], line]
        if line.startswith(("Collecting", "Downloading", "Installing", "Successfully", "Resolved", "Prepared",
                            "Installed", "ERROR", "error")):
            progress(f"[{time.monotonic() - started:5.1f} s] {line[:120]}")
