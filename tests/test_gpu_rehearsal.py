"""The GPU check rehearsed on a CPU, in an environment shaped like the GPU image, so that its
plumbing is proven before a GPU machine is lent (15 minutes, one cold try).

The image's `python3` is itself a venv holding torch, Triton, numpy and pytest and lacking
deepspeed, webdataset and submitit (the platform notes on the GPU machine). Here: a venv made from
this venv (a venv inside a venv), seeing this venv's packages through a .pth file (linked,
not installed again) except those the image lacks; a wheelhouse built for this Python by
`benchmarks/gpu_wheels.sh`; then `benchmarks/gpu_check.sh --profile rehearsal`, which must
install from the wheels into a target folder (no venv, no index), run every stage that is
not CUDA-only, and leave OUT within the device tool's return limits."""
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGE_LACKS = ["deepspeed", "hjson", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
               "webdataset", "braceexpand", "submitit", "avvp_dist"]


def image_like_python(tmp: Path) -> Path:
    """A venv of this venv whose packages are this venv's, linked, minus IMAGE_LACKS."""
    venv = tmp / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(md.distribution("torch").locate_file(""))  # this venv's site-packages
    hidden = set()
    for name in IMAGE_LACKS:
        for f in md.distribution(name).files or []:
            if f.parts[0] != "..":
                hidden.add(f.parts[0])
    links = tmp / "image-packages"
    links.mkdir()
    for entry in ours.iterdir():
        if entry.name not in hidden and not entry.name.startswith("__editable__") and entry.suffix != ".pth":
            (links / entry.name).symlink_to(entry)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "image.pth").write_text(f"{links}\n")
    return venv / "bin" / "python"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_gpu_check_rehearsal(tmp_path):
    wheels = tmp_path / "wheels"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    built = subprocess.run(["bash", "benchmarks/gpu_wheels.sh", "--python", version, str(wheels)], cwd=REPO,
                           env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    python = image_like_python(tmp_path)
    lacks = subprocess.run([str(python), "-c", "import torch, numpy, pytest\nimport deepspeed"], capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"]})
    assert "No module named 'deepspeed'" in lacks.stderr, lacks.stderr[-2000:]  # shaped like the image
    out = tmp_path / "OUT"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHON=str(python), AVVP_GPU_WHEELS=str(wheels), AVVP_GPU_SITE=str(tmp_path / "site"),
               AVVP_GPU_TMP=str(tmp_path / "work"), PIP_NO_INDEX="1")
    check = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--profile", "rehearsal", str(out)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=150)
    log = check.stdout + check.stderr
    assert check.returncode == 0, log[-5000:]
    for wheel in ("deepspeed-", "webdataset-", "submitit-", "pydantic-"):
        assert f"[gpu_install] {wheel}" in log, log[:3000]  # installed from the wheels, not found elsewhere
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["ok"] and report["stages"]["kernels"]["status"] == "skipped"
    assert [n for n, s in report["stages"].items() if s["status"] == "ok"] == [
        "env", "kernel_tests", "data", "train_fp32_zero0"]
    assert report["stages"]["train_fp32_zero0"]["result"]["rows"][0]["samples_per_s"] > 0
    assert report["planned_s"] <= report["budget_s"]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log"] and not report["out_problems"]


def test_the_gpu_profile_fits_its_budget():
    """The stages' time limits add up to less than the check's budget (a warm rerun must fit
    the 600 s a device command may run)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    plan = gpu_check.stages("gpu")
    assert sum(t for _, t, cmd in plan if cmd) <= gpu_check.BUDGET_S <= 300
    assert [n for n, _, _ in plan][-4:] == [f"train_{n}" for n in gpu_check.TRAIN]


def test_a_stage_past_its_limit_is_killed_and_the_rest_still_run(tmp_path, monkeypatch):
    """A stage that overruns is killed with its whole process group (torchrun's workers too),
    reported as a timeout in the report already on disk, and the next stage still runs."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    monkeypatch.setattr(gpu_check, "TMP", tmp_path / "work")
    env = [sys.executable, "-c", "print('noise'); print('{\"device\": \"cpu\"}'); print('more noise')"]
    monkeypatch.setattr(gpu_check, "stages", lambda profile: [
        ("env", 20, env), ("slow", 1, ["bash", "-c", f"sleep 30 & echo $! > {tmp_path}/child; wait"]),
        ("after", 20, [sys.executable, "-c", "pass"])])
    assert gpu_check.run_stages("rehearsal", tmp_path / "OUT") == 1
    report = json.loads((tmp_path / "OUT" / "gpu_check.json").read_text())
    assert report["stages"]["env"]["device"] == "cpu"
    assert report["stages"]["slow"]["rc"] == "timeout" and report["stages"]["slow"]["status"] == "failed"
    assert report["stages"]["after"]["status"] == "ok" and not report["ok"]
    child = int((tmp_path / "child").read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
