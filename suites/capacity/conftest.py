"""The capacity properties run under raycheck's Hypothesis profile unless one is chosen
(see :mod:`raycheck.plugins.properties`)."""

from raycheck.plugins.properties import default


def pytest_configure(config):
    default(config)
