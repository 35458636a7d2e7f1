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
import time
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
@pytest.mark.timeout(360)
def test_gpu_check_rehearsal(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "deepspeed-0.0.1-py3-none-any.whl").write_bytes(b"")  # a stale wheel from an earlier build
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    built = subprocess.run(["bash", "benchmarks/gpu_wheels.sh", "--python", version, str(wheels)], cwd=REPO,
                           env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    names = [w.name.split("-")[0].lower() for w in wheels.glob("*.whl")]
    assert len(names) == len(set(names)) and not (wheels / "deepspeed-0.0.1-py3-none-any.whl").exists()
    python = image_like_python(tmp_path)
    lacks = subprocess.run([str(python), "-c", "import torch, numpy, pytest\nimport deepspeed"], capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"]})
    assert "No module named 'deepspeed'" in lacks.stderr, lacks.stderr[-2000:]  # shaped like the image
    out = tmp_path / "OUT"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHON=str(python), AVVP_GPU_WHEELS=str(wheels), AVVP_GPU_SITE=str(tmp_path / "site"),
               AVVP_GPU_TMP=str(tmp_path / "work"), PIP_NO_INDEX="1")
    check = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--profile", "rehearsal", str(out)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    log = check.stdout + check.stderr
    assert check.returncode == 0, log[-5000:]
    for wheel in ("deepspeed-", "webdataset-", "submitit-", "pydantic-"):
        assert f"[gpu_install] {wheel}" in log, log[:3000]  # installed from the wheels, not found elsewhere
    report = json.loads((out / "gpu_check.json").read_text())
    stages = report["stages"]
    assert report["ok"] and {n for n, s in stages.items() if s["status"] == "skipped"} == {
        "kernels", "train_bf16_zero0", "train_bf16_zero2", "train_fp16_zero0"}
    assert "fp16 on a CPU" in stages["train_fp16_zero0"]["why"]
    assert [n for n, s in stages.items() if s["status"] == "ok"] == [
        "env", "kernel_tests", "data", "train_fp32_weak", "train_fp32_weak_compiled", "plain_loop"]
    # one row per measurement, each in the report
    assert [len(stages[n]["rows"]) for n in ("train_fp32_weak", "train_fp32_weak_compiled", "plain_loop")] == [1, 1, 2]
    assert stages["train_fp32_weak_compiled"]["rows"][0]["compiled"] is True
    assert [r["style"] for r in stages["plain_loop"]["rows"]] == ["like for like", "HAN's style"]
    assert all(r["samples_per_s"] > 0 for n in ("train_fp32_weak", "plain_loop") for r in stages[n]["rows"])
    assert report["planned_s"] <= report["budget_s"]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log"] and not report["out_problems"]


def _gpu_check():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    return gpu_check


def test_the_gpu_profile_fits_its_budget_and_the_rehearsal_runs_the_fp32_stages_commands():
    """The stages' time limits add up to less than the check's budget (a warm rerun must fit
    the 600 s a device command may run); each fp32 stage's rehearsal command is the GPU's
    but for the sizes; RESULTS.md's stage table is the one the code prints."""
    gpu_check = _gpu_check()
    plan = gpu_check.stages("gpu")
    assert sum(t for _, t, cmd in plan if cmd) <= gpu_check.BUDGET_S <= 300
    sizes = {f"--{k}={v}" for profile in gpu_check.SIZES.values() for k, v in profile.items()}
    rehearsal = dict((n, c) for n, _, c in gpu_check.stages("rehearsal"))
    for name, _, cmd in plan:
        if name.startswith("train_fp32") or name == "plain_loop":
            assert [a for a in cmd if a not in sizes] == [a for a in rehearsal[name] if a not in sizes], name
    assert gpu_check.stage_table() in (REPO / "benchmarks" / "RESULTS.md").read_text()


def test_a_failed_install_still_writes_a_report(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, AVVP_GPU_WHEELS=str(tmp_path / "none"),
               AVVP_GPU_SITE=str(tmp_path / "site"))
    out = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--profile", "rehearsal", str(tmp_path / "OUT")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    report = json.loads((tmp_path / "OUT" / "gpu_check.json").read_text())
    assert report["ok"] is False and report["stages"]["install"]["status"] == "failed"
    assert "no wheelhouse at" in report["stages"]["install"]["why"]


def test_a_wheelhouse_with_two_versions_of_a_wheel_is_refused(tmp_path):
    for name in ("webdataset-0.2.99-py3-none-any.whl", "webdataset-1.0.2-py3-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    out = subprocess.run([sys.executable, "benchmarks/gpu_install.py", str(tmp_path), str(tmp_path / "t"), "--plan"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "two versions of webdataset" in out.stderr


def test_rows_land_in_the_report_while_the_stage_runs(tmp_path, monkeypatch):
    """A stage that measures two rows and then overruns: both rows are in the report on disk
    (the second one before the stage ends), and the stage is reported as a timeout."""
    gpu_check = _gpu_check()
    monkeypatch.setattr(gpu_check, "TMP", tmp_path / "work")
    rows = tmp_path / "work" / "slow.rows.jsonl"
    seen = tmp_path / "seen.json"
    script = (f"import json, time, shutil\n"
              f"for i in range(2):\n"
              f"    open({str(rows)!r}, 'a').write(json.dumps({{'row': i}}) + '\\n')\n"
              f"    time.sleep(1.5)\n"
              f"shutil.copy({str(tmp_path / 'OUT' / 'gpu_check.json')!r}, {str(seen)!r})\n"
              f"time.sleep(30)\n")
    env = [sys.executable, "-c", "print('{\"device\": \"cpu\"}')"]
    monkeypatch.setattr(gpu_check, "stages", lambda profile: [("env", 20, env), ("slow", 5, [sys.executable, "-c", script])])
    assert gpu_check.run_stages("rehearsal", tmp_path / "OUT") == 1
    during = json.loads(seen.read_text())["stages"]["slow"]
    assert during["status"] == "running" and during["rows"] == [{"row": 0}, {"row": 1}]
    report = json.loads((tmp_path / "OUT" / "gpu_check.json").read_text())
    assert report["stages"]["slow"]["rc"] == "timeout" and report["stages"]["slow"]["rows"] == [{"row": 0}, {"row": 1}]


def test_a_stage_past_its_limit_is_killed_and_the_rest_still_run(tmp_path, monkeypatch):
    """A stage that overruns is killed with its whole process group (torchrun's workers too),
    reported as a timeout in the report already on disk, and the next stage still runs."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    monkeypatch.setattr(gpu_check, "TMP", tmp_path / "work")
    env = [sys.executable, "-c", "print('noise'); print('{\"device\": \"cpu\"}'); print('more noise')"]
    # the stage's child starts its own session, as torchrun's workers do (setsid), and a grandchild
    worker = (f"import subprocess, sys, time\n"
              f"w = subprocess.Popen(['bash', '-c', 'sleep 60 & echo $! > {tmp_path}/grandchild; wait'],"
              f" start_new_session=True)\n"
              f"open('{tmp_path}/child', 'w').write(str(w.pid))\n"
              f"time.sleep(60)\n")
    monkeypatch.setattr(gpu_check, "stages", lambda profile: [
        ("env", 20, env), ("slow", 2, [sys.executable, "-c", worker]),
        ("after", 20, [sys.executable, "-c", "pass"])])
    assert gpu_check.run_stages("rehearsal", tmp_path / "OUT") == 1
    report = json.loads((tmp_path / "OUT" / "gpu_check.json").read_text())
    assert report["stages"]["env"]["device"] == "cpu"
    assert report["stages"]["slow"]["rc"] == "timeout" and report["stages"]["slow"]["status"] == "failed"
    assert report["stages"]["after"]["status"] == "ok" and not report["ok"]
    for name in ("child", "grandchild"):
        pid = int((tmp_path / name).read_text())
        gone = lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]  # noqa: E731
        for _ in range(50):
            if gone():
                break
            time.sleep(0.1)
        assert gone(), f"the stage's {name} ({pid}) outlived the stage"
