"""``raycheck client-env``: build the Ray Client runtime a cluster needs, or list the cached ones.

``raycheck client-env --ray 2.49.2 --python 3.9`` makes a venv on Python 3.9 (found on PATH,
through pyenv or uv; or ``--python /path/to/python3.9``) with ``ray[client]==2.49.2`` from the
package index, in raycheck's cache (see :mod:`raycheck.runtimes`), and prints the interpreter.
From then on raycheck picks it for a cluster that runs Ray 2.49.2 on Python 3.9. ``--into DIR``
builds it in a folder of one's choosing instead (an image names it with ``--ray-python``).
Exit status: 0 built or already there, 1 when it cannot be built, 4 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from raycheck.runtimes import (
    MINOR, VERSION, RuntimeUnavailable, build, cache_root, cached, describe_interpreter, env_name, find_python,
)

USAGE_ERROR = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raycheck client-env", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ray", metavar="VERSION", help="the cluster's Ray version, e.g. 2.49.2")
    parser.add_argument("--python", metavar="X.Y|PATH", help="the cluster's Python minor (3.9), or an interpreter")
    parser.add_argument("--into", metavar="DIR", help="build here instead of raycheck's cache")
    parser.add_argument("--extras", default="client", metavar="EXTRAS",
                        help="Ray's extras (default client; client,default also starts a head with its dashboard)")
    parser.add_argument("--list", action="store_true", help="list the cached client environments and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own usage error (status 2) is bad input here
        return USAGE_ERROR if exc.code else 0
    if args.list:
        runtimes = cached()
        print(f"client environments in {cache_root()}:" if runtimes else f"no client environment in {cache_root()}")
        for runtime in runtimes:
            print(f"  Ray {runtime.ray_version}, Python {runtime.python_version}: {runtime.python}")
        return 0
    problem = _bad_input(args)
    if problem:
        print(f"raycheck client-env: {problem}", file=sys.stderr, flush=True)
        return USAGE_ERROR
    progress = _Progress()
    try:
        if "/" in args.python:
            python = args.python
            minor = describe_interpreter(python, "--python").minor
        else:
            minor = args.python
            python, how = find_python(minor)
            progress(f"Python {minor}: {python} ({how})")
        folder = Path(args.into).expanduser().resolve() if args.into else cache_root() / env_name(args.ray, minor)
        runtime = build(args.ray, python, folder, extras=args.extras, progress=progress)
    except RuntimeUnavailable as exc:
        progress.done()
        print(f"raycheck client-env: {exc}", file=sys.stderr, flush=True)
        return 1
    progress.done()
    print(f"ready: Ray {runtime.ray_version} on Python {runtime.python_version}: {runtime.python}", flush=True)
    if args.into:
        print(f"use it with --ray-python={runtime.python} (or raycheck.ray_python in the target file)", flush=True)
    return 0


def _bad_input(args: argparse.Namespace) -> str | None:
    if not args.ray or not VERSION.match(args.ray):
        return f"--ray: {args.ray!r} is not a Ray version (e.g. --ray 2.49.2)"
    if not args.python:
        return "--python: missing (the cluster's Python minor, e.g. --python 3.9, or a path to an interpreter)"
    if "/" not in args.python and not MINOR.match(args.python):
        return f"--python: {args.python!r} is neither a Python minor version (3.9) nor a path to an interpreter"
    if "/" in args.python and not Path(args.python).exists():
        return f"--python: {args.python}: no such file"
    if not all(part.isidentifier() for part in args.extras.split(",")):
        return f"--extras: {args.extras!r} is not a comma-separated list of Ray's extras (client, default)"
    return None


class _Progress:
    """One line that says where the build is: rewritten in place on a terminal, else printed."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.width = 0

    def __call__(self, line: str) -> None:
        text = f"raycheck client-env: {line}"
        if self.tty:
            sys.stdout.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def done(self) -> None:
        if self.tty and self.width:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.width = 0
