"""Hypothesis: examples per second of each capacity property, and the whole property suite's time.

``pytest suites/capacity/test_properties.py --hypothesis-show-statistics`` in each profile:
Hypothesis' own default (no ``--hypothesis-profile``; ``CI`` unset, so not its ``ci`` profile;
100 examples, the example database in ``.hypothesis/`` replayed first), and the project's
``fast`` (25 examples) and ``thorough`` (2,000 examples, not derandomised) from
``suites/capacity/conftest.py``, chosen with ``--hypothesis-profile=NAME``. The statistics
block gives, per test and phase, the seconds spent and the test cases run (passing, failing,
invalid); examples per second are all those test cases over those seconds. ``thorough`` takes
about a minute, so it runs ``ctx.slow_runs`` times.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from harness import Context, pytest_command, suite_env, summary, timed

SUITE = "suites/capacity/test_properties.py"
PROFILES = {"default": [], "fast": ["--hypothesis-profile=fast"], "thorough": ["--hypothesis-profile=thorough"]}
TEST_HEADER = re.compile(r"^(\S+::\S+):$", re.M)
PHASE = re.compile(r"during (\w+) phase \(([\d.]+) seconds\):\s*\n.*?\n\s*- (\d+) passing, (\d+) failing, "
                   r"and (\d+) invalid test cases")


def parse_statistics(output: str) -> dict[str, dict[str, float]]:
    """Per test: test cases run and seconds spent, summed over Hypothesis' phases."""
    stats: dict[str, dict[str, float]] = {}
    headers = list(TEST_HEADER.finditer(output))
    for header, following in zip(headers, headers[1:] + [None]):
        block = output[header.end():following.start() if following else len(output)]
        cases = seconds = 0.0
        for _phase, spent, passing, failing, invalid in PHASE.findall(block):
            cases += int(passing) + int(failing) + int(invalid)
            seconds += float(spent)
        stats[header.group(1).split("::", 1)[1]] = {"cases": cases, "seconds": seconds}
    return stats


def _profile(ctx: Context, name: str, runs: int) -> dict[str, Any]:
    walls: list[float] = []
    per_test: dict[str, list[float]] = defaultdict(list)
    totals: list[tuple[float, float]] = []
    for _ in range(runs):
        run = timed(pytest_command(SUITE, "--hypothesis-show-statistics", *PROFILES[name]),
                    suite_env(ctx.work / "home"), timeout=900)
        if run.status != 0:
            raise RuntimeError(f"the property suite failed in profile {name}: {run.stdout[-2000:]}")
        stats = parse_statistics(run.stdout)
        if not stats:
            raise RuntimeError(f"no Hypothesis statistics in the output of profile {name}")
        walls.append(run.wall_s)
        for test, figures in stats.items():
            per_test[test].append(figures["cases"] / figures["seconds"] if figures["seconds"] else 0.0)
        totals.append((sum(f["cases"] for f in stats.values()), sum(f["seconds"] for f in stats.values())))
    return {"runs": runs, "suite_wall_s": summary(walls), "test_cases": summary([c for c, _ in totals], 0),
            "hypothesis_s": summary([s for _, s in totals]),
            "examples_per_s": summary([c / s for c, s in totals], 0),
            "per_test_examples_per_s": {t: summary(v, 0)["median"] for t, v in per_test.items()}}


def measure(ctx: Context) -> dict[str, Any]:
    profiles = {}
    for name in PROFILES:
        runs = ctx.slow_runs if name == "thorough" else ctx.runs
        if runs == 0:
            continue
        profiles[name] = _profile(ctx, name, runs)
        print(f"  properties {name}: suite {profiles[name]['suite_wall_s']['median']} s, "
              f"{profiles[name]['examples_per_s']['median']:.0f} examples/s", flush=True)
    return {"profiles": profiles}
