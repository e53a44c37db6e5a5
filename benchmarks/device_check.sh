#!/usr/bin/env bash
# The device check (`repertory bench device`) on a GPU host with Python 3.12 and current JAX that may have no
# package index:
#
#   benchmarks/device_check.sh [OUT [more bench flags, e.g. --quick]]
#
# When Haiku, rlax, distrax, dm-env, ale-py, gymnasium or tensorboardX is missing, installs the wheels in .whl/
# (`make device-wheels` downloads them where pip works; carry that folder) into /tmp/site, then runs the check
# under a 9-minute timeout. PYTHON chooses the interpreter (default python3). Results: OUT (default
# benchmarks/results/device_<date>) with device.csv, device.png and provenance.json naming the device.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${1:-benchmarks/results/device_$(date +%Y%m%d_%H%M%S)}
shift || true
NEEDED="import haiku, rlax, distrax, dm_env, ale_py, gymnasium, tensorboardX"
if ! "$PYTHON" -c "$NEEDED" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "device_check: Haiku, rlax, distrax, dm-env, ale-py, gymnasium or tensorboardX is missing and .whl/ holds no wheels; run 'make device-wheels' where pip works and bring .whl/ along" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  "$PYTHON" -c "$NEEDED" || { echo "device_check: the wheels in .whl/ did not make '$NEEDED' work" >&2; exit 2; }
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec timeout 540 "$PYTHON" -m repertory.cli bench device --out "$OUT" --no-progress "$@"
