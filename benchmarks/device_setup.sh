# Sourced by the GPU-host scripts (device_check.sh, atari100k_suite.sh) with SCRIPT set to the caller's name:
# when Haiku, rlax, distrax, dm-env, ale-py, gymnasium or tensorboardX is missing, installs the wheels in .whl/
# (`make device-wheels` downloads them where pip works; carry that folder) into /tmp/site, and puts the
# repository on PYTHONPATH. PYTHON chooses the interpreter (default python3). Run from the repository root.
PYTHON=${PYTHON:-python3}
NEEDED="import haiku, rlax, distrax, dm_env, ale_py, gymnasium, tensorboardX"
if ! "$PYTHON" -c "$NEEDED" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "$SCRIPT: Haiku, rlax, distrax, dm-env, ale-py, gymnasium or tensorboardX is missing and .whl/ holds no wheels; run 'make device-wheels' where pip works and bring .whl/ along" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  "$PYTHON" -c "$NEEDED" || { echo "$SCRIPT: the wheels in .whl/ did not make '$NEEDED' work" >&2; exit 2; }
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
