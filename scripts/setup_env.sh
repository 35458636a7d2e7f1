#!/usr/bin/env bash
# Creates .venv (if missing) and installs avvp_dist into it.
# torch==2.13.0 (CPU wheel) is installed first only when no torch is present:
# an unpinned torch would pull a multi-GB CUDA build. Nothing system-wide is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AVVP_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    echo "[setup] installing torch==2.13.0"
    "$VPY" -m pip install -q torch==2.13.0
fi
stamp="$VENV/.avvp_installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[setup] installing avvp_dist and its dependencies"
    # DS_BUILD_OPS=0: DeepSpeed ops are JIT-built on first use, not at install.
    DS_BUILD_OPS=0 "$VPY" -m pip install -q -e ".[test]"
    touch "$stamp"
fi
