#!/usr/bin/env bash
# The GPU check, one script, at most about 8 minutes on one NVIDIA GPU:
#   1. the compiled CUDA/Triton kernel tests (tests/test_kernels.py, with the Triton
#      interpreter tests beside them),
#   2. device copy bandwidth, EMA update bandwidth (fused Triton vs loop / foreach / flat
#      lerp, on the HAN model and a 50M-parameter model), mask kernel time
#      (benchmarks/kernels.py --device cuda),
#   3. end-to-end training samples/s, weak baseline and full method, with the per-step
#      breakdown (benchmarks/throughput.py on 1 GPU rank, bf16),
# and writes OUT/gpu_check.json (plus each part's JSON and the log).
#
#   bash benchmarks/gpu_wheels.sh            # first, on a machine with network: .cache/gpu_wheels
#   bash benchmarks/gpu_check.sh [OUT]       # on the GPU machine (default OUT: $OUT or runs/gpu_check)
#
# It uses the machine's own torch and Triton and installs only what the image lacks,
# from the wheels (no network), into a venv that sees the system packages.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
W=${AVVP_GPU_WHEELS:-.cache/gpu_wheels}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
t0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - t0 ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || say "nvidia-smi failed"
V=${AVVP_GPU_VENV:-/tmp/avvp-gpu-venv}
if [ ! -x "$V/bin/python" ]; then
  python3 -m venv --system-site-packages "$V"
  missing=$("$V/bin/python" - <<'PY'
import importlib.util
need = {"deepspeed": "deepspeed", "webdataset": "webdataset", "braceexpand": "braceexpand", "submitit": "submitit",
        "cloudpickle": "cloudpickle", "hjson": "hjson", "pydantic": "pydantic", "pydantic_core": "pydantic_core",
        "annotated_types": "annotated_types", "typing_inspection": "typing_inspection", "msgpack": "msgpack",
        "ninja": "ninja", "cpuinfo": "py_cpuinfo", "psutil": "psutil", "pytest_timeout": "pytest_timeout",
        "tqdm": "tqdm", "yaml": "PyYAML"}
print(" ".join(w for m, w in need.items() if importlib.util.find_spec(m) is None))
PY
)
  say "installing from $W: ${missing:-nothing}"
  wheels=()
  for m in $missing; do
    f=$(ls "$W"/*.whl | grep -i "/${m//_/[-_]}-[0-9]" | head -n 1)
    [ -n "$f" ] && wheels+=("$f") || say "no wheel for $m in $W"
  done
  # pydantic and pydantic_core must match: take both from the wheels when either is missing
  if [[ " $missing " == *" pydantic "* || " $missing " == *" pydantic_core "* ]]; then
    wheels+=("$W"/pydantic-[0-9]*.whl "$W"/pydantic_core-*.whl)
  fi
  [ ${#wheels[@]} -eq 0 ] || "$V/bin/python" -m pip install -q --no-index --no-deps "${wheels[@]}"
fi
PY="$V/bin/python"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/avvp-torch-extensions}
"$PY" -c "import torch, triton, deepspeed; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, 'deepspeed', deepspeed.__version__, torch.cuda.get_device_name())"

say "1/3 kernel tests (compiled Triton on the GPU, Triton interpreter, torch back ends)"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_kernels.py --junitxml="$OUT/kernel_tests.xml"
tests_rc=$?

say "2/3 bandwidth and kernels"
timeout 180 "$PY" benchmarks/kernels.py --device cuda --repeats 30 --json "$OUT/kernels.json"
kernels_rc=$?

say "3/3 end-to-end training samples/s (1 GPU rank, bf16)"
timeout 240 "$PY" benchmarks/throughput.py --ranks 1 --steps 300 --batch 64 --num-train 4096 \
  --data /tmp/avvp-bench-data --out "$OUT/throughput_runs" --json "$OUT/throughput.json"
throughput_rc=$?

"$PY" - "$OUT" "$tests_rc" "$kernels_rc" "$throughput_rc" <<'PY'
import json, sys, pathlib
import torch
out, rcs = pathlib.Path(sys.argv[1]), dict(zip(("kernel_tests", "kernels", "throughput"), map(int, sys.argv[2:])))
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.exists() else None
result = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "torch": torch.__version__,
          "exit_codes": rcs, "kernels": load("kernels.json"), "throughput": load("throughput.json")}
k = result["kernels"]
if k:
    big = [r for r in k["ema"] if r["model"] == "synthetic 50M" and r["method"] == "fused flat (avvp_dist)"]
    if big:
        result["ema_50M_fraction_of_copy_bandwidth"] = big[0]["vs_copy"]
(out / "gpu_check.json").write_text(json.dumps(result, indent=1))
print(f"wrote {out / 'gpu_check.json'}; exit codes {rcs}")
if "ema_50M_fraction_of_copy_bandwidth" in result:
    print(f"EMA update, 50M parameters: {100 * result['ema_50M_fraction_of_copy_bandwidth']:.0f}% of copy bandwidth "
          "(goal >= 80%)")
PY
say "done"
[ "$tests_rc" = 0 ] && [ "$kernels_rc" = 0 ] && [ "$throughput_rc" = 0 ]
