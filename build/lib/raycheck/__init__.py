"""raycheck: conformance and diagnostics for a KubeRay cluster used over Ray Client.

The library holds the logic (configuration, probes, remediation catalog, reports, sandbox) and
imports no pytest; ``plugins/`` and ``suites/`` wire it into pytest.
"""

__version__ = "0.1.0"
