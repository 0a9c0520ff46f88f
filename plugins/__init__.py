"""pytest plugins of raycheck: ``remediation`` (checks, preconditions, exit status) and ``reports``."""
