"""Reading raycheck's JSON reports for the e2e: verdicts per check, against the table and against each other.

A result is keyed by its check id and its test (the nodeid's last part, with its case in brackets:
``rbac.client-sa`` has several tests, one of them one case per required permission); the rest of a
nodeid differs between the image (installed package) and a checkout.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.expected import EXPECTED, Verdict, row_key

Report = dict[str, Any]
Key = tuple[str, str]  # (check id, "test_client_sa_may[core/services/get]")
ADD_PREFIX = "add them with: "  # how a skip for missing evidence names the command that adds it
JSON_LINE = '{"schema":"raycheck/v1"'  # how --json-line's report starts (deploy/entrypoint.sh passes it)


def report_from_log(log: str) -> Report:
    """The JSON report a ``--json-line`` run printed last (the CronJob's pod log, or a run's stdout)."""
    lines = [line for line in log.splitlines() if line.startswith(JSON_LINE)]
    assert lines, f"no raycheck/v1 JSON line in the output; its end:\n{log[-3000:]}"
    report: Report = json.loads(lines[-1])
    return report


def verdicts(report: Report, offline: bool = False) -> dict[Key, Verdict]:
    """(outcome, cause) of every result; ``offline``: only the checks that work from cluster state (no ``network``)."""
    return {(c["id"], c["nodeid"].rsplit("::", 1)[-1]): Verdict(c["outcome"], c["cause"]) for c in report["checks"]
            if not (offline and "network" in c["markers"])}


def _name(key: Key) -> str:
    return f"{key[0]} {key[1]}"


def unexpected(report: Report, scenario: str) -> list[str]:
    """Where the report departs from the table's column ``scenario`` (see tests/e2e/expected.py)."""
    out, used = [], set()
    for key, got in sorted(verdicts(report).items()):
        row = row_key(*key)
        if row is None:
            out.append(f"{_name(key)}: no row in tests/e2e/expected.py")
            continue
        used.add(row)
        want: Verdict = getattr(EXPECTED[row], scenario)
        if not want.admits(got):
            out.append(f"{_name(key)}: {got.outcome} ({got.cause}), expected {want.outcome} ({want.cause or 'any cause'})")
    out += [f"{row}: expected {getattr(EXPECTED[row], scenario).outcome}, not in the report"
            for row in sorted(set(EXPECTED) - used)]
    return out


def disagreements(live: Report, dump: Report) -> list[str]:
    """Offline checks whose outcome or cause differ between a live run and a run on a dump of the same cluster."""
    a, b = verdicts(live, offline=True), verdicts(dump, offline=True)
    out = []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            show = [f"{v.outcome} ({v.cause})" if v else "absent" for v in (a.get(key), b.get(key))]
            out.append(f"{_name(key)}: live {show[0]}, dump {show[1]}")
    return out


def add_commands(report: Report) -> list[str]:
    """The commands the skipped checks give to add what a dump lacks, each once, in report order (not
    advice such as "set raycheck.client_pod_labels in the target file, or ...", which no shell runs)."""
    found = [c["message"].split(ADD_PREFIX, 1)[1] for c in report["checks"]
             if c["outcome"] == "skipped" and ADD_PREFIX in c["message"]]
    return list(dict.fromkeys(f for f in found if f.startswith(("kubectl get ", "mkdir -p "))))


def unfixed_forbidden(report: Report, service_account: str) -> list[str]:
    """Checks failed on raycheck's own 403 whose message or remediation does not say so: the message
    must quote the API server's HTTP 403, a step must grant to ``service_account`` (``namespace:name``)."""
    out = []
    for c in report["checks"]:
        if c["cause"] != "forbidden":
            continue
        commands = [s.get("command") or "" for s in (c["remediation"] or {}).get("steps", [])]
        if "HTTP 403" not in c["message"] or not any(f"--serviceaccount={service_account}" in x for x in commands):
            out.append(f"{c['nodeid']}: {c['message']} / {commands}")
    return out
