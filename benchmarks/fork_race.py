"""How often a Ray head's client proxier loses a per-client server to its fork race, with and without
the workaround raycheck recommends (ray-project/ray#63202; cause ``server-init``).

``.venv/bin/python benchmarks/fork_race.py [--heads N] [--per-head M]`` starts N real heads
(``raycheck.harness.sandbox.RayHead``) per setting, runs M handshakes through raycheck's own probe against
each, and prints one JSON line per setting: handshakes, failures by cause, and how many times the
proxier's log says gRPC skipped its fork handlers (the race's precondition). Settings:
``GRPC_ENABLE_FORK_SUPPORT=1`` (what Python's grpcio does when the variable is unset) and ``=0``.

Not part of ``make bench``: a handshake takes about 2.5 s here and the race strikes a few times in a
hundred, so telling the settings apart takes hundreds of handshakes (11 minutes for the defaults
``--heads 4 --per-head 25`` here: 3 of 100 failed with ``=1``, none with ``=0``). Do not run it beside
the tests: two heads on one machine compete for the per-client server ports.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raycheck.probes import ray_client  # noqa: E402 (after the path is set)
from raycheck.harness.sandbox import HeadPorts, RayHead  # noqa: E402

SETTINGS = ("1", "0")
SKIPPED = "skipping fork() handlers"


def measure(fork_support: str, heads: int, per_head: int) -> dict[str, object]:
    causes: Counter[str] = Counter()
    skipped = handshakes = 0
    for _ in range(heads):
        head = RayHead(HeadPorts.pick(), Path(tempfile.mkdtemp(prefix="fork-race-")),
                       env={"GRPC_ENABLE_FORK_SUPPORT": fork_support}).start()
        try:
            for _ in range(per_head):
                observation = ray_client.handshake(f"ray://127.0.0.1:{head.ports.client}", 60.0)
                handshakes += 1
                if not observation.ok:
                    causes[observation.cause or "unknown"] += 1
            skipped += sum(log.read_text(errors="replace").count(SKIPPED)
                           for log in head.temp_dir.glob("session_latest/logs/ray_client_server.err"))
        finally:
            head.stop()
    return {"GRPC_ENABLE_FORK_SUPPORT": fork_support, "handshakes": handshakes, "failed": sum(causes.values()),
            "causes": dict(causes), "skipped_fork_handlers": skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=4, help="fresh heads per setting (default 4)")
    parser.add_argument("--per-head", type=int, default=25, help="handshakes against each head (default 25)")
    args = parser.parse_args()
    for setting in SETTINGS:
        print(json.dumps(measure(setting, args.heads, args.per_head)), flush=True)


if __name__ == "__main__":
    main()
