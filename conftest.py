"""The checkout's own pytest wiring; the plugin itself comes from the installed package.

raycheck's plugin, fixtures and options are registered by the ``pytest11`` entry point of the
package (``make venv`` installs this checkout editable), so they are known before pytest picks
its rootdir: ``pytest --target /any/path/t.yaml`` works. What is left for a checkout: the folders
that hold no tests, kept out of collection when someone runs ``pytest .``.
"""

collect_ignore = ["benchmarks", "deploy", "docs", "reports", "fixtures"]
