"""The GPU check's stages, each measurement with its own time limit, every row reported as it lands.

    python benchmarks/gpu_check.py --out OUT [--profile gpu|rehearsal]
    python benchmarks/gpu_check.py --table       # the stage table of benchmarks/RESULTS.md

Run by `benchmarks/gpu_check.sh`, which installs what the interpreter lacks first. Every
stage runs as a subprocess with a timeout (`STAGES`: 290 s in all on the GPU, the check's
budget, so that a warm rerun still fits a 600 s command); a stage past its limit is killed
with every process it started (torchrun's workers included, which start their own
sessions). The benchmarks append each row to a JSON-lines file as soon as it is measured,
and OUT/gpu_check.json is rewritten with it at once (a check cut short, or killed with
its command, still reports every row measured). Everything else (data, runs, JUnit XML)
is written under /tmp: OUT holds gpu_check.json and the log only, inside the device tool's
return limits (`OUT_LIMITS`).

Profiles:
- gpu: CUDA must be there (else it stops at once, saying so); the kernel tests must not skip
  a CUDA test (a skip fails the stage); every stage below.
- rehearsal: the same script on a CPU, proving the plumbing (install, imports, stages,
  rows, report, OUT limits) with the fp32 stages' own commands at a small size (`SIZES`);
  the stages that need a GPU are skipped, each saying why.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TMP = Path(os.environ.get("AVVP_GPU_TMP", "/tmp/avvp-gpu-check"))
OUT_LIMITS = {"files": 8, "bytes_per_file": 16 << 20, "depth": 2}  # what the device tool brings back
BUDGET_S = 300
SIZES = {"gpu": {"num-train": 512, "batch": 32, "steps": 60, "workers": 4},
         "rehearsal": {"num-train": 48, "batch": 8, "steps": 6, "workers": 1}}
FP32 = ["train.precision=fp32", "train.zero_stage=0"]
GPU_ONLY = "needs a GPU"


@dataclass(frozen=True)
class Stage:
    """One measurement: its limit on the GPU, its limit in the rehearsal (None: skipped there,
    `why`), what it measures, and its `throughput.py` flags (train stages) or kind."""

    name: str
    limit_s: int
    rehearsal_s: int | None
    what: str
    flags: tuple[str, ...] = ()
    why: str = ""


STAGES = [
    Stage("env", 20, 20, "imports, versions, the device's name"),
    Stage("kernel_tests", 35, 45, "`pytest -m \"not slow\" tests/test_kernels.py`: the compiled Triton kernels "
          "against the torch reference; a skipped CUDA test fails the stage"),
    Stage("kernels", 35, None, "`benchmarks/kernels.py --device cuda`: copy GB/s; the EMA update's GB/s, foreach "
          "beside flat (the Triton kernel) and its torch back end (HAN, 50M); mask kernel times",
          why="times CUDA kernels"),
    Stage("data", 25, 25, "512 synthetic LLP videos at the published feature sizes, sharded (under /tmp)"),
    Stage("train_bf16_zero0", 30, None, "the full method, bf16 (autocast), ZeRO 0: samples/s, per-step sections",
          ("--variants", "full", "--no-plain", "--no-compiled", "train.precision=bf16", "train.zero_stage=0"),
          why="a GPU precision (bf16 autocast on a CPU is tested in tests/test_engine_layout.py)"),
    Stage("train_bf16_zero2", 25, None, "the full method, bf16, ZeRO 2",
          ("--variants", "full", "--no-plain", "--no-compiled", "train.precision=bf16", "train.zero_stage=2"),
          why="a GPU precision"),
    Stage("train_fp16_zero0", 25, None, "the full method, fp16 with DeepSpeed's loss scaling, ZeRO 0",
          ("--variants", "full", "--no-plain", "--no-compiled", "train.precision=fp16", "train.zero_stage=0"),
          why="DeepSpeed refuses fp16 on a CPU"),
    Stage("train_fp32_weak", 25, 45, "the weak baseline, fp32, eager: our loop's samples/s and sections",
          ("--variants", "weak", "--no-plain", "--no-compiled", *FP32)),
    Stage("train_fp32_weak_compiled", 45, 90, "the weak baseline, fp32, `train.compile=true` (Inductor)",
          ("--variants", "weak", "--no-plain", "--compiled-only", *FP32)),
    Stage("plain_loop", 25, 30, "`benchmarks/plain_loop.py` on the same data: like for like (our loader workers, "
          "fused AdamW, clipping) and HAN's style (2 workers, Adam)", ("--plain-only",)),
]


def stage_command(stage: Stage, profile: str) -> list[str] | None:
    """The stage's command in `profile` (None: skipped there). A train stage's command is the
    same in both profiles but for the sizes (`SIZES`)."""
    if profile == "rehearsal" and stage.rehearsal_s is None:
        return None
    py, size = sys.executable, SIZES[profile]
    rows = ["--rows", str(TMP / f"{stage.name}.rows.jsonl")]
    if stage.name == "env":
        return [py, "benchmarks/gpu_check.py", "--env", "--profile", profile]
    if stage.name == "kernel_tests":
        return [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests/test_kernels.py",
                f"--junitxml={TMP / 'kernel_tests.xml'}"]
    if stage.name == "kernels":
        return [py, "benchmarks/kernels.py", "--device", "cuda", "--repeats", "10", *rows]
    if stage.name == "data":
        return [py, "-c", "import sys; sys.path.insert(0, 'benchmarks'); from bench_data import make_data; "
                          f"make_data(__import__('pathlib').Path('{TMP / 'data'}'), {size['num-train']})"]
    sizes = [f"--{k}={v}" for k, v in size.items()]
    return [py, "benchmarks/throughput.py", "--ranks", "1", *sizes, "--data", str(TMP / "data"),
            "--out", str(TMP / "runs" / stage.name), "--json", str(TMP / f"{stage.name}.json"), *rows, *stage.flags]


def stages(profile: str) -> list[tuple[str, int, list[str] | None]]:
    """(name, timeout s, command or None for a skipped stage), in order."""
    return [(s.name, s.limit_s if profile == "gpu" else (s.rehearsal_s or 0), stage_command(s, profile))
            for s in STAGES]


def stage_table() -> str:
    """The stage table of benchmarks/RESULTS.md, from `STAGES`."""
    lines = ["| stage | limit on the GPU (s) | rehearsal on a CPU | what |", "|---|---|---|---|"]
    for s in STAGES:
        rehearsal = f"{s.rehearsal_s} s" if s.rehearsal_s else f"skipped: {s.why}"
        lines.append(f"| {s.name} | {s.limit_s} | {rehearsal} | {s.what} |")
    return "\n".join(lines) + f"\n\nIn all {sum(s.limit_s for s in STAGES)} s on the GPU (budget {BUDGET_S} s)."


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


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc (children before they are reparented)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += parents.get(p, [])
    return tree


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL to the stage and everything it started: each process found below it (torchrun's
    workers start their own sessions, so the stage's process group misses them) and each of
    their process groups (what they started in turn)."""
    tree = process_tree(proc.pid)
    groups = set()
    for pid in tree:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for group in groups - {os.getpgid(0)}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def run_stage(name: str, timeout: float, cmd: list[str], on_rows) -> tuple[object, str, str]:
    """Runs one stage to its end or its limit; hands each new row of its rows file to
    `on_rows` as it lands. Returns (exit code or "timeout", stdout, stderr)."""
    rows_file = TMP / f"{name}.rows.jsonl"
    rows_file.unlink(missing_ok=True)
    logs = {k: TMP / f"{name}.{k}" for k in ("out", "err")}
    with open(logs["out"], "w") as out, open(logs["err"], "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err, text=True, start_new_session=True)
        t0, seen, rc = time.time(), 0, None
        while rc is None:
            try:
                rc = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if time.time() - t0 > timeout:
                    kill_tree(proc)
                    proc.wait()
                    rc = "timeout"
            lines = rows_file.read_text().splitlines() if rows_file.exists() else []
            complete = [line for line in lines if line.endswith("}")]
            if len(complete) > seen:
                on_rows([json.loads(line) for line in complete[seen:]])
                seen = len(complete)
    return rc, logs["out"].read_text(), logs["err"].read_text()


def _entry(name: str, profile: str, rc, stdout: str, seconds: float) -> dict:
    entry = {"status": "ok" if rc == 0 else "failed", "rc": rc, "seconds": round(seconds, 1)}
    if name == "env" and rc == 0:  # its last JSON line (libraries log to stdout too)
        entry.update(json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1]))
    if name == "kernel_tests" and (TMP / "kernel_tests.xml").exists():
        entry["junit"] = junit(TMP / "kernel_tests.xml")
        if profile == "gpu" and entry["junit"]["skipped"]:  # a CUDA test that did not run is no pass
            entry["status"] = "failed"
    return entry


def run_stages(profile: str, out: Path) -> int:
    TMP.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    report = {"profile": profile, "budget_s": BUDGET_S, "stages": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path = out / "gpu_check.json"
    write = lambda: path.write_text(json.dumps(report, indent=1))  # noqa: E731
    t0 = time.time()
    plan = stages(profile)
    report["planned_s"] = sum(t for _, t, c in plan if c)
    why = {s.name: s.why for s in STAGES}
    for name, timeout, cmd in plan:
        if cmd is None:
            report["stages"][name] = {"status": "skipped", "why": why[name]}
            continue
        print(f"[gpu_check {time.time() - t0:.0f}s] {name} (at most {timeout} s): {' '.join(cmd[1:4])} ...", flush=True)
        s0, rows = time.time(), []
        report["stages"][name] = {"status": "running", "rows": rows}

        def landed(new: list[dict]) -> None:
            rows.extend(new)
            write()  # every row in the report as soon as it is measured

        rc, stdout, stderr = run_stage(name, timeout, cmd, landed)
        print((stdout + stderr)[-3000:], flush=True)
        report["stages"][name] = {**_entry(name, profile, rc, stdout, time.time() - s0), "rows": rows}
        report["elapsed_s"] = round(time.time() - t0, 1)
        write()  # after every stage: a cut-short check still reports
        if name == "env" and rc != 0:
            break  # nothing else can run
    report["out_problems"] = out_problems(out)
    ok = all(s["status"] in ("ok", "skipped") for s in report["stages"].values()) and not report["out_problems"] \
        and len(report["stages"]) == len(plan)
    report["ok"] = ok
    write()
    print(f"[gpu_check {time.time() - t0:.0f}s] {'passed' if ok else 'FAILED'}: " + ", ".join(
        f"{n} {s['status']}" for n, s in report["stages"].items()) + f"; report {path}", flush=True)
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["gpu", "rehearsal"], default="gpu")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    ap.add_argument("--env", action="store_true", help="only the import and device check (the first stage)")
    ap.add_argument("--table", action="store_true", help="print the stage table (benchmarks/RESULTS.md)")
    args = ap.parse_args()
    if args.table:
        print(stage_table())
        return
    if args.env:
        sys.exit(check_env(args.profile))
    sys.exit(run_stages(args.profile, args.out))


if __name__ == "__main__":
    main()
