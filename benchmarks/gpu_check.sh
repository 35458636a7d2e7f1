#!/usr/bin/env bash
# The GPU check: install what the image lacks, then the stages of benchmarks/gpu_check.py
# (compiled kernel tests, EMA GB/s against copy GB/s, mask kernels, training samples/s at
# bf16 ZeRO 0 and 2, fp16, fp32 eager and compiled, the plain loop), each with its own limit,
# 290 s in all; every row lands in OUT/gpu_check.json as it is measured (`python
# benchmarks/gpu_check.py --table` lists the stages). A failed install writes a report too.
#
#   bash benchmarks/gpu_wheels.sh                              # where there is network: .whl/
#   bash benchmarks/gpu_check.sh [--profile gpu|rehearsal] [OUT]  # OUT default: $OUT or runs/gpu_check
#
# No venv and no network: the wheels the interpreter lacks (or has too old) are installed from
# the carried wheelhouse (AVVP_GPU_WHEELS, default .whl) into a target folder (AVVP_GPU_SITE,
# default /tmp/avvp-site) put first on PYTHONPATH, with the repository after it; the image's
# own torch, Triton, numpy and pytest are used as they are. `--profile rehearsal` runs the same
# on a CPU (tests/test_gpu_rehearsal.py does, in CI).
set -uo pipefail
cd "$(dirname "$0")/.."
PROFILE=gpu
if [ "${1:-}" = --profile ]; then PROFILE=$2; shift 2; fi
OUT=${1:-${OUT:-runs/gpu_check}}
W=${AVVP_GPU_WHEELS:-.whl}
T=${AVVP_GPU_SITE:-/tmp/avvp-site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "[gpu_check] no nvidia-smi"
"$PY" benchmarks/gpu_install.py "$W" "$T" 2> "$OUT/install.err"
installed=$?
cat "$OUT/install.err" >&2
if [ $installed != 0 ]; then
  # the report still says what happened: the install's own last line, as a JSON string
  why=$(tail -n 1 "$OUT/install.err" 2>/dev/null | sed 's/\\/\\\\/g; s/"/\\"/g')
  rm -f "$OUT/install.err"
  printf '{"profile": "%s", "ok": false, "stages": {"install": {"status": "failed", "why": "%s"}}}\n' \
    "$PROFILE" "$why" > "$OUT/gpu_check.json"
  echo "[gpu_check] install failed: nothing was checked"
  exit 3
fi
rm -f "$OUT/install.err"
export PYTHONPATH="$T:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/avvp-torch-extensions}
export PYTHONUNBUFFERED=1
"$PY" benchmarks/gpu_check.py --profile "$PROFILE" --out "$OUT"
