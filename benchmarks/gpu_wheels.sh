#!/usr/bin/env bash
# Builds the wheelhouse for a machine with no network (the GPU image: Python 3.12, torch,
# Triton, numpy, pytest, accelerate, einops, ... and no deepspeed, webdataset or submitit):
# DeepSpeed (a pure-Python wheel built here with DS_BUILD_OPS=0) and webdataset, submitit and
# the packages they need, at the versions this venv runs, for CPython X.Y on manylinux x86_64.
# Then proves the wheels install there: `pip install --dry-run --no-index --no-deps
# --only-binary=:all: --python-version X.Y ... --target` over every wheel.
#
#   bash benchmarks/gpu_wheels.sh [--python 3.12] [FOLDER]   # default .whl (about 10 MB)
#
# The wheelhouse must travel with the GPU check: it lives in .whl/, which .git/info/exclude
# ignores (see benchmarks/RESULTS.md for the call that carries it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=3.12
if [ "${1:-}" = --python ]; then PYV=$2; shift 2; fi
W=${1:-.whl}
PY=${PYTHON:-.venv/bin/python}
ABI=cp${PYV/./}
mkdir -p "$W"
# built afresh beside it, then swapped in: a rebuilt wheelhouse holds one version of each wheel
NEW=$(mktemp -d "${TMPDIR:-/tmp}/avvp-wheels.XXXXXX")
trap 'rm -rf "$NEW"' EXIT
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --wheel-dir "$NEW" "deepspeed==$(version deepspeed)"
pkgs=()
for p in webdataset braceexpand submitit cloudpickle hjson pydantic pydantic-core annotated-types \
         typing-inspection typing-extensions msgpack ninja py-cpuinfo psutil pytest-timeout tqdm pyyaml einops; do
  pkgs+=("$p==$(version "$p")")
done
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any)
"$PY" -m pip download -q --no-deps --only-binary=:all: --dest "$NEW" --python-version "$PYV" --implementation cp \
  --abi "$ABI" --abi abi3 --abi none "${platforms[@]}" "${pkgs[@]}"
# every wheel installs on CPython $PYV / manylinux x86_64, offline
dry=$(mktemp -d)
"$PY" -m pip install -q --dry-run --no-index --no-deps --only-binary=:all: --python-version "$PYV" \
  --implementation cp --abi "$ABI" --abi abi3 --abi none "${platforms[@]}" --target "$dry" "$NEW"/*.whl
rmdir "$dry" 2>/dev/null || true
rm -f "$W"/*.whl
mv "$NEW"/*.whl "$W"/
echo "[gpu_wheels] $(ls "$W"/*.whl | wc -l) wheels for CPython $PYV in $W ($(du -sh "$W" | cut -f1)); offline install checked"
