#!/usr/bin/env bash
# The device check (`repertory bench device`) on a GPU host with Python 3.12 and current JAX that may have no
# package index:
#
#   benchmarks/device_check.sh [OUT [more bench flags, e.g. --quick]]
#
# Installs what is missing from .whl/ (benchmarks/device_setup.sh), then runs the check under a 9-minute
# timeout. PYTHON chooses the interpreter (default python3). Results: OUT (default
# benchmarks/results/device_<date>) with device.csv, device.png and provenance.json naming the device.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/device_$(date +%Y%m%d_%H%M%S)}
shift || true
SCRIPT=device_check
source benchmarks/device_setup.sh
exec timeout 540 "$PYTHON" -m repertory.cli bench device --out "$OUT" --no-progress "$@"
