"""Hypothesis profiles for the capacity properties.

They test raycheck's model, not the cluster, so a run must never fail on the machine's speed or
on luck: every property carries ``deadline=None`` itself (whatever profile is chosen), and a run
that chooses no profile is derandomized (``raycheck``: Hypothesis' ``ci`` profile, derandomized,
no deadline, no example database), so a CronJob or a gate gives the same verdict every time.
Hypothesis loads ``ci`` by itself when ``CI`` is set; ``--hypothesis-profile=fast`` (25 examples)
or ``=thorough`` (2,000, random) choose otherwise.
"""

from hypothesis import settings

settings.register_profile("raycheck", parent=settings.get_profile("ci"))
settings.register_profile("fast", parent=settings.get_profile("ci"), max_examples=25)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False)


def pytest_configure(config):
    if config.getoption("hypothesis_profile", None) is None and settings.get_current_profile_name() == "default":
        settings.load_profile("raycheck")
