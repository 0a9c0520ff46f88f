"""Hypothesis profiles for the capacity properties (``suites/capacity/test_properties.py``).

They test raycheck's model, not the cluster, so a run must never fail on the machine's speed or on
luck: every property carries ``deadline=None`` itself (whatever profile is chosen), and a run that
chooses no profile is derandomized (``raycheck``: Hypothesis' ``ci`` profile, derandomized, no
deadline, no example database, 25 examples: a user's run diagnoses a cluster and must stay fast),
so a CronJob or a gate gives the same verdict every time. Hypothesis loads ``ci`` (100 examples) by
itself when ``CI`` is set; ``--hypothesis-profile=fast`` (25, the same as ``raycheck``), ``=ci`` or
``=thorough`` (2,000, random) choose otherwise. ``make test`` runs them with ``ci``.

The profiles are registered here, before Hypothesis' own plugin loads the one ``--hypothesis-profile``
names (its ``pytest_configure``); Hypothesis is imported only when a profile is named or the
properties are collected (:func:`default`, from ``suites/capacity/conftest.py``).
"""

from __future__ import annotations

import pytest

USER_EXAMPLES = 25


def register() -> None:
    from hypothesis import settings

    settings.register_profile("raycheck", parent=settings.get_profile("ci"), max_examples=USER_EXAMPLES)
    settings.register_profile("fast", parent=settings.get_profile("ci"), max_examples=USER_EXAMPLES)
    settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False)


def default(config: pytest.Config) -> None:
    """Load ``raycheck`` where neither ``--hypothesis-profile`` nor ``CI`` chose a profile."""
    from hypothesis import settings

    register()
    if config.getoption("hypothesis_profile", None) is None and settings.get_current_profile_name() == "default":
        settings.load_profile("raycheck")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_profile", None) is not None:
        register()
