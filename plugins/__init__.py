"""raycheck's pytest plugin, registered through the ``pytest11`` entry point ``raycheck``.

Loaded in every pytest run of the environment, before pytest chooses its rootdir and inifile, so
``pytest --target /any/path/t.yaml`` works. It stays inert unless the run names a target
(``--target`` or ``RAYCHECK_TARGET``) or collects raycheck checks (then a target is required):

* :mod:`.rootdir`: pytest's rootdir and inifile decided again once ``--target`` is known to take a value,
* :mod:`.runner`: options and markers (one table each), the ``check`` marker, preconditions,
  verdicts, the budget and the exit status; the run's state and its accessor :func:`.runner.run_state`,
* :mod:`.remediation`: a finding's remediation, rendered from the catalog with the target's names,
* :mod:`.summary`: the terminal summary grouped by severity,
* :mod:`.reports`: the report files (JSON, Markdown, HTML, JUnit, Prometheus),
* :mod:`.properties`: the Hypothesis profiles of the capacity properties,
* the fixtures of ``fixtures/`` (target, probes, cluster state).
"""

pytest_plugins = [
    "raycheck.plugins.rootdir",
    "raycheck.plugins.runner",
    "raycheck.plugins.remediation",
    "raycheck.plugins.summary",
    "raycheck.plugins.reports",
    "raycheck.plugins.properties",
    "raycheck.fixtures.target",
    "raycheck.fixtures.cluster",
]
