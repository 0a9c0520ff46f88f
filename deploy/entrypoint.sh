#!/bin/sh
# Runs the suite as the image's entrypoint: the target from the mounted ConfigMap
# ($RAYCHECK_TARGET), reports to the report volume ($RAYCHECK_REPORT_DIR), the terminal summary in
# the pod log, and the JSON report as one line at the end for log pipelines. Extra arguments go to
# pytest (e.g. -m connectivity, -m gate --with-manifests /manifests, --fail-on warning).
set -eu
cd "$(dirname "$0")/.."
exec python -m pytest -p no:cacheprovider \
  --target="${RAYCHECK_TARGET:-/etc/raycheck/target.yaml}" \
  --report-dir="${RAYCHECK_REPORT_DIR:-/reports}" \
  --json-line "$@"
