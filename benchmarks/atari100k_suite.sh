#!/usr/bin/env bash
# The Atari 100k suite on one accelerator host: the 26 games x 1 seed of DER, K runs per process (one vmapped
# update and policy call for the games of the same action set), in pieces that fit a 10-minute command:
#
#   benchmarks/atari100k_suite.sh [OUT [more `bench atari100k` flags, e.g. --seeds 2 --encoder alix]]
#
# Each call trains for at most PIECE_S seconds (default 540), then the runs checkpoint and the call exits 75;
# call it again with the same OUT to continue them exactly where they stopped (exit 0 once all 26 finished,
# with the reports in OUT). A call that stops writes OUT/pace.csv: each unfinished run's pace by phase, and
# one line says what the rest needs at that pace. RUNS_PER_PROCESS (default 2) and WORKERS (default: the host's
# cores less 3, at least 1: processes sharing the device) tune the packing; the host's work per run-step sets
# the pace, so the runs are spread over many processes (BUILD_NOTES.md, "Many runs, one process"). Refuses in
# one line where JAX sees no accelerator. Installs what is missing from .whl/ (benchmarks/device_setup.sh); PYTHON
# chooses the interpreter. Results: OUT (default benchmarks/results/atari100k_suite).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/atari100k_suite}
shift || true
SCRIPT=atari100k_suite
source benchmarks/device_setup.sh
if ! "$PYTHON" -c "import jax, sys; sys.exit(jax.devices()[0].platform == 'cpu')" 2>/dev/null; then
  echo "$SCRIPT: JAX sees no accelerator here; run it on a GPU or TPU host (on CPU: repertory bench atari100k --games atari100k)" >&2
  exit 2
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the device
# The next piece's processes load the updates and policies this piece compiled, instead of compiling them again.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/repertory/jax}
"$PYTHON" -m repertory.cli bench atari100k --games atari100k --seeds 1 --out "$OUT" --no-progress \
  --runs-per-process "${RUNS_PER_PROCESS:-2}" --workers "${WORKERS:-$(( $(nproc) > 4 ? $(nproc) - 3 : 1 ))}" \
  --stop-after "${PIECE_S:-540}" "$@"
code=$?
if [ "$code" = 75 ]; then
  echo "$SCRIPT: runs are left; call it again with the same OUT to continue them" >&2
fi
exit "$code"
