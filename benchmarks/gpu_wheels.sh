#!/usr/bin/env bash
# Builds the wheels the GPU machine's image lacks (it has Python 3.12, torch, Triton,
# accelerate, einops, numpy, pytest, matplotlib, and no network): DeepSpeed (a pure-Python
# wheel built here with DS_BUILD_OPS=0) and webdataset, submitit and their dependencies,
# downloaded for CPython 3.12 / manylinux x86_64 at the versions this venv runs.
#
#   bash benchmarks/gpu_wheels.sh [FOLDER]      # default .cache/gpu_wheels (about 10 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-.cache/gpu_wheels}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$W"
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --wheel-dir "$W" "deepspeed==$(version deepspeed)"
pkgs=()
for p in webdataset braceexpand submitit cloudpickle hjson pydantic pydantic-core annotated-types \
         typing-inspection typing-extensions msgpack ninja py-cpuinfo psutil pytest-timeout tqdm pyyaml; do
  pkgs+=("$p==$(version "$p")")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --dest "$W" --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any "${pkgs[@]}"
ls -1 "$W"
du -sh "$W"
