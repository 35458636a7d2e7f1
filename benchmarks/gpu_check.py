"""The GPU check's stages, each with its own time limit, the report rewritten after every one.

    python benchmarks/gpu_check.py --out OUT [--profile gpu|rehearsal]

Run by `benchmarks/gpu_check.sh`, which installs what the interpreter lacks first. Every
stage runs as a subprocess with a timeout (`stages()`: 270 s in all on the GPU, the check's
budget, so that a warm rerun still fits a 600 s command); its outcome
goes into OUT/gpu_check.json at once, so a check cut short still reports what it did.
Everything else (data, runs, JUnit XML, kernel timings) is written under /tmp: OUT holds
gpu_check.json and the log only, inside the device tool's return limits (`OUT_LIMITS`).

Profiles:
- gpu: CUDA must be there (else it stops at once, saying so); the kernel tests must not skip
  a CUDA test (a skip fails the stage); the kernel benchmark on the GPU (copy bandwidth, EMA
  GB/s, masks); 60 steps of training at bf16 ZeRO 0 (autocast), bf16 ZeRO 2, fp16 ZeRO 0
  (loss scaling) of the full method, samples/s and the per-step sections of each; at fp32
  the weak baseline eager, compiled (train.compile) and beside the plain PyTorch loop
  (benchmarks/plain_loop.py) on the same data.
- rehearsal: the same script on a CPU, proving the plumbing (install, imports, stages,
  report, OUT limits): the CUDA-only stage (the kernel benchmark on the GPU) is skipped,
  CUDA-only tests may skip, one tiny fp32 training run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TMP = Path(os.environ.get("AVVP_GPU_TMP", "/tmp/avvp-gpu-check"))
OUT_LIMITS = {"files": 8, "bytes_per_file": 16 << 20, "depth": 2}  # what the device tool brings back
BUDGET_S = 270
TRAIN = {  # name: (time limit s on the GPU, overrides); 60 steps each
    "bf16_zero0": (35, ["train.precision=bf16", "train.zero_stage=0"]),
    "bf16_zero2": (25, ["train.precision=bf16", "train.zero_stage=2"]),
    "fp16_zero0": (25, ["train.precision=fp16", "train.zero_stage=0"]),
    # the weak baseline eager and compiled (train.compile), beside the plain PyTorch loop (fp32)
    "fp32_zero0": (70, ["train.precision=fp32", "train.zero_stage=0"]),
}
COMPARED = "fp32_zero0"


def stages(profile: str) -> list[tuple[str, int, list[str] | None]]:
    """(name, timeout s, command or None for a skipped stage), in order."""
    py = sys.executable
    gpu = profile == "gpu"
    tests = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests/test_kernels.py",
             f"--junitxml={TMP / 'kernel_tests.xml'}"]
    kernels = [py, "benchmarks/kernels.py", "--device", "cuda", "--repeats", "10", "--json", str(TMP / "kernels.json")]
    size = ["--num-train", "512", "--batch", "32", "--steps", "60", "--workers", "4"] if gpu else \
        ["--num-train", "48", "--batch", "8", "--steps", "6", "--workers", "1"]
    data = [py, "-c", f"import sys; sys.path.insert(0, 'benchmarks'); from bench_data import make_data; "
                      f"make_data(__import__('pathlib').Path('{TMP / 'data'}'), {size[1]})"]
    out = [("env", 20, [py, "benchmarks/gpu_check.py", "--env", "--profile", profile]),
           ("kernel_tests", 35, tests),
           ("kernels", 35, kernels if gpu else None),
           ("data", 25, data)]
    for name, (limit, overrides) in (TRAIN.items() if gpu else [(COMPARED, TRAIN[COMPARED])]):
        # the weak baseline eager, compiled and against the plain loop; the rehearsal: neither
        compared = (["--variants", "weak", "--compiled"] if gpu and name == COMPARED
                    else ["--variants", "full", "--no-plain", "--no-compiled"])
        out.append((f"train_{name}", limit if gpu else 45,
                    [py, "benchmarks/throughput.py", "--ranks", "1", *size, *compared,
                     "--data", str(TMP / "data"), "--out", str(TMP / "runs" / name),
                     "--json", str(TMP / f"train_{name}.json"), *overrides]))
    return out


def check_env(profile: str) -> int:
    """Exits early, with one clear line, when what the check needs does not import."""
    missing = []
    for module in ("torch", "triton", "deepspeed", "webdataset", "submitit", "avvp_dist"):
        try:
            __import__(module)
        except Exception as e:  # an old typing-extensions breaks pydantic, hence deepspeed: say which
            missing.append(f"{module} ({type(e).__name__}: {e})")
    if missing:
        print("gpu_check: cannot import " + "; ".join(missing), flush=True)
        return 2
    import torch

    if profile == "gpu" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device (profile gpu); nothing to check", flush=True)
        return 2
    import deepspeed
    import triton

    print(json.dumps({"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
                      "triton": triton.__version__, "deepspeed": deepspeed.__version__,
                      "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}), flush=True)
    return 0


def junit(path: Path) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    count["skipped_tests"] = [f"{c.get('name')}: {c.find('skipped').get('message')}" for s in suites
                              for c in s.iter("testcase") if c.find("skipped") is not None]
    return count


def out_problems(out: Path) -> list[str]:
    """What the device tool would not bring back from OUT."""
    files = [p for p in out.rglob("*") if p.is_file()]
    problems = [f"{len(files)} files (at most {OUT_LIMITS['files']})"] if len(files) > OUT_LIMITS["files"] else []
    for p in files:
        rel = p.relative_to(out)
        if p.stat().st_size > OUT_LIMITS["bytes_per_file"]:
            problems.append(f"{rel}: {p.stat().st_size} bytes")
        if len(rel.parts) - 1 > OUT_LIMITS["depth"]:
            problems.append(f"{rel}: deeper than {OUT_LIMITS['depth']} folders")
    return problems


def run_stages(profile: str, out: Path) -> int:
    TMP.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    report = {"profile": profile, "budget_s": BUDGET_S, "stages": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path = out / "gpu_check.json"
    t0 = time.time()
    plan = stages(profile)
    report["planned_s"] = sum(t for _, t, c in plan if c)
    for name, timeout, cmd in plan:
        if cmd is None:
            report["stages"][name] = {"status": "skipped", "why": "CUDA only"}
            continue
        print(f"[gpu_check {time.time() - t0:.0f}s] {name} (at most {timeout} s): {' '.join(cmd[1:4])} ...", flush=True)
        s0 = time.time()
        # its own process group: at the limit, torchrun's workers go too, not only the stage's process
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            rc = "timeout"
        text = stdout + stderr
        print(text[-3000:], flush=True)
        entry = {"status": "ok" if rc == 0 else "failed", "rc": rc, "seconds": round(time.time() - s0, 1)}
        if name == "env" and rc == 0:  # its last JSON line (libraries log to stdout too)
            entry.update(json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1]))
        if name == "kernel_tests" and (TMP / "kernel_tests.xml").exists():
            entry["junit"] = junit(TMP / "kernel_tests.xml")
            if profile == "gpu" and entry["junit"]["skipped"]:  # a CUDA test that did not run is no pass
                entry["status"] = "failed"
        for result in (TMP / f"{name}.json", TMP / "kernels.json" if name == "kernels" else None):
            if result is not None and result.exists() and rc == 0:
                entry["result"] = json.loads(result.read_text())
        report["stages"][name] = entry
        report["elapsed_s"] = round(time.time() - t0, 1)
        path.write_text(json.dumps(report, indent=1))  # after every stage: a cut-short check still reports
        if name == "env" and rc != 0:
            break  # nothing else can run
    report["out_problems"] = out_problems(out)
    ok = all(s["status"] in ("ok", "skipped") for s in report["stages"].values()) and not report["out_problems"] \
        and len(report["stages"]) == len(plan)
    report["ok"] = ok
    path.write_text(json.dumps(report, indent=1))
    print(f"[gpu_check {time.time() - t0:.0f}s] {'passed' if ok else 'FAILED'}: " + ", ".join(
        f"{n} {s['status']}" for n, s in report["stages"].items()) + f"; report {path}", flush=True)
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["gpu", "rehearsal"], default="gpu")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    ap.add_argument("--env", action="store_true", help="only the import and device check (the first stage)")
    args = ap.parse_args()
    if args.env:
        sys.exit(check_env(args.profile))
    sys.exit(run_stages(args.profile, args.out))


if __name__ == "__main__":
    main()
