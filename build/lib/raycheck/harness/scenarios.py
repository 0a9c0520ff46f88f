"""Where the bundled scenarios are: ``fixtures/scenarios/`` in a checkout, ``raycheck/fixtures/scenarios/``
in an installed package (the same folder: the wheel installs ``fixtures/`` as ``raycheck.fixtures``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SCENARIOS = Path(str(files("raycheck.fixtures") / "scenarios"))
