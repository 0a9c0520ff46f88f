"""Wires raycheck's pytest plugins and fixtures; nothing else lives here."""

pytest_plugins = ["plugins.remediation", "plugins.reports", "fixtures.target", "fixtures.cluster"]
