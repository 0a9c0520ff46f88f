"""Hypothesis profiles for the capacity properties, built on Hypothesis' own ``ci`` profile.

Hypothesis loads ``ci`` by itself when ``CI`` is set (derandomized, no deadline, no example
database); nothing here loads a profile unconditionally, which would override that. Choose one
with ``--hypothesis-profile=fast`` or ``--hypothesis-profile=thorough``.
"""

from hypothesis import settings

settings.register_profile("fast", parent=settings.get_profile("ci"), max_examples=25)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False)
