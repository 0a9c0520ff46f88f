"""The checks' logic, one module per suite folder and one function per check, named after its id.

``oom.shm`` is :func:`raycheck.checks.oom.shm`; the ``dns.*``, ``port.*`` and ``ray.*`` checks of
``suites/connectivity/`` are in :mod:`raycheck.checks.connectivity`. Each function takes what the
fixtures give (probes, the cluster view, its footprint) and returns an
:class:`~raycheck.observation.Observation`; the suites only hand it to ``verdict``.
"""
