"""The training engine through its real launchers: exact resume after SIGKILL, faults,
preemption, launch paths, and the CI-sized main job."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avvp_dist.model.checkpoint import load_model
from train_helpers import losses, make_shards, run, train_cmd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("data"))


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _kill_tree(pid: int) -> None:
    """SIGKILL a launcher and every process below it (torchrun starts workers in their own sessions)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for(predicate, timeout: float, proc=None) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()[0][-3000:]}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def _params(path: Path) -> dict:
    return dict(load_model(path)[0].state_dict())


def test_exact_resume_after_sigkill(shards, tmp_path):
    steps = ["train.max_steps=300", "train.checkpoint_every=100", "train.log_every=1"]
    straight = tmp_path / "straight"
    out = run(train_cmd(2, straight, shards, *steps))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(2, killed, shards, *steps), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: (killed / "checkpoints" / "step_0000100" / "COMPLETE").is_file(), 200, proc)
        _kill_tree(proc.pid)  # the whole job: launcher and both ranks
        proc.wait(30)
    finally:
        _kill_tree(proc.pid)
    assert not (killed / "final_student.pt").exists(), "the job finished before it was killed"
    out = run(train_cmd(2, killed, shards, *steps, "train.resume=auto"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    resumed_at = int(out.stdout.split("resumed from ")[1].split(" at step ")[1].split()[0])
    assert resumed_at in (100, 200)
    a, b = losses(straight), losses(killed)
    assert sorted(a) == list(range(1, 301)) and a == b, "per-step losses differ"
    for name in ("student", "teacher"):
        pa, pb = _params(straight / f"final_{name}.pt"), _params(killed / f"final_{name}.pt")
        for k in pa:
            assert torch.equal(pa[k], pb[k]), (name, k)


def test_non_finite_loss_is_skipped_on_all_ranks(shards, tmp_path):
    out = run(train_cmd(2, tmp_path / "ok", shards, "train.max_steps=8", "train.debug_nan_steps=[3]"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 non-finite steps skipped" in out.stdout
    assert sorted(losses(tmp_path / "ok")) == list(range(1, 9))
    out = run(train_cmd(2, tmp_path / "stop", shards, "train.max_steps=20", "train.debug_nan_steps=[3,4,5]",
                        "train.max_consecutive_nan=3"))
    assert out.returncode != 0
    assert "3 non-finite losses in a row at step 2" in out.stderr
    assert (tmp_path / "stop" / "checkpoints" / "step_0000002" / "COMPLETE").is_file()


def test_a_dead_rank_ends_the_job(shards, tmp_path):
    proc = subprocess.Popen(train_cmd(2, tmp_path / "r", shards, "train.max_steps=100000"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for(lambda: (tmp_path / "r" / "metrics.jsonl").is_file() and
                  (tmp_path / "r" / "metrics.jsonl").read_text().count("\n") >= 3, 200, proc)
        ranks = {}
        for pid in _children(proc.pid):
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            rank = [e for e in env if e.startswith(b"RANK=")]
            if rank:
                ranks[int(rank[0][5:])] = pid
        os.kill(ranks[1], signal.SIGKILL)
        t0 = time.time()
        output = proc.communicate(timeout=90)[0]
        assert time.time() - t0 < 90
    finally:
        _kill_tree(proc.pid)
    assert proc.returncode != 0
    assert "local_rank: 1" in output and "Signal 9 (SIGKILL)" in output


def test_preemption_signal_saves_on_all_ranks_and_resumes(shards, tmp_path):
    run_dir = tmp_path / "p"
    proc = subprocess.Popen(train_cmd(2, run_dir, shards, "train.max_steps=100000"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and
                  (run_dir / "metrics.jsonl").read_text().count("\n") >= 3, 200, proc)
        rank1 = [p for p in _children(proc.pid) if b"RANK=1" in Path(f"/proc/{p}/environ").read_bytes().split(b"\0")]
        os.kill(rank1[0], signal.SIGUSR2)  # only rank 1 is signalled: the ranks must agree
        output = proc.communicate(timeout=120)[0]
    finally:
        _kill_tree(proc.pid)
    assert "preempted at step" in output, output[-3000:]
    step = int(output.split("preempted at step ")[1].split(":")[0])
    ckpt = run_dir / "checkpoints" / f"step_{step:07d}"
    assert (ckpt / "COMPLETE").is_file() and (ckpt / "rank_0.pt").is_file() and (ckpt / "rank_1.pt").is_file()
    assert (run_dir / "PREEMPTED").read_text().startswith(f"step {step}\n")  # what slurm/train.sh requeues on
    out = run(train_cmd(2, run_dir, shards, f"train.max_steps={step + 3}", "train.resume=auto"))
    assert out.returncode == 0 and f"at step {step}" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert not (run_dir / "PREEMPTED").exists()


def test_bad_config_is_rejected_before_any_process_starts(shards, tmp_path):
    t0 = time.time()
    out = run(train_cmd(None, tmp_path / "bad", shards, "train.zero_stage=3"), timeout=60)
    assert out.returncode == 2 and "zero_stage must be 0, 1 or 2" in out.stderr
    assert not (tmp_path / "bad").exists() and time.time() - t0 < 30


def test_plain_python_and_accelerate_launch_end_in_the_same_engine(shards, tmp_path):
    plain = run(train_cmd(None, tmp_path / "plain", shards, "train.max_steps=4"))
    assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr[-2000:]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("data:\n  dataset: llp\n")
    from train_helpers import TINY
    acc = run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
               str(REPO / "recipes" / "accelerate" / "cpu_2proc_zero2.yaml"), "--main_process_port",
               str(__import__("dist_helpers").free_port()), str(REPO / "recipes" / "llp.py"), "--config", str(cfg),
               f"run_dir={tmp_path / 'acc'}", f"data.shards={shards}", *TINY, "train.max_steps=4"])
    assert acc.returncode == 0, acc.stdout[-3000:] + acc.stderr[-3000:]
    for name, world, zero, launcher in (("plain", 1, 0, "single"), ("acc", 2, 2, "torchrun")):
        rec = json.loads((tmp_path / name / "run.json").read_text())
        assert (rec["world_size"], rec["zero_stage"], rec["launcher"], rec["precision"]) == (world, zero, launcher, "fp32")
        assert (tmp_path / name / "checkpoints" / "step_0000004" / "COMPLETE").is_file()
        assert (tmp_path / name / "best_teacher.pt").is_file()
        assert json.loads((tmp_path / name / "eval_test" / "metrics.json").read_text())["split"] == "test"


def test_separate_rank_zero_jobs_are_refused():
    from avvp_dist.distributed.env import discover

    with pytest.raises(RuntimeError, match="would train as separate jobs"):
        discover({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "2"})
    assert discover({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}).rank == 1


def test_ci_sized_main_job(tmp_path):
    """`make demo` at a smaller size: synth -> shards -> 2-rank DeepSpeed training -> test table and plots."""
    out = run([sys.executable, "-m", "avvp_dist.cli", "demo", f"run_dir={tmp_path}", "synth.num_train=240",
               "synth.num_val=40", "synth.num_test=60", "train.max_steps=150", "train.eval_every=75",
               "train.checkpoint_every=75"], timeout=500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "segment-level" in out.stdout and "world      2 rank(s) (torchrun)" in out.stdout
    metrics = json.loads((tmp_path / "eval_test" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"student", "teacher"}
    assert len(list((tmp_path / "eval_test" / "plots" / "teacher").glob("*.png"))) == 8
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "summary.txt").is_file()
    assert (tmp_path / "config.yaml").is_file() and json.loads((tmp_path / "run.json").read_text())["world_size"] == 2


def test_resume_never_picks_a_half_written_checkpoint(tmp_path):
    from avvp_dist.engine.checkpoint import find_resume

    root = tmp_path / "checkpoints"
    (root / "step_0000100").mkdir(parents=True)
    (root / "step_0000100" / "COMPLETE").write_text("100\n")
    (root / "step_0000200").mkdir()  # a crash while saving step 200: no marker
    (root / "step_0000200" / "mp_rank_00_model_states.pt").write_bytes(b"partial")
    assert find_resume(tmp_path, "auto") == root / "step_0000100"
    assert find_resume(tmp_path, "") is None
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        find_resume(tmp_path, str(root / "step_0000200"))


def test_unav100_recipe_under_accelerate_with_zero1(tmp_path):
    """Variable-length UnAV-100 batches, top-k masks, ZeRO 1 chosen on accelerate's command line."""
    from conftest import synth_and_shard
    from dist_helpers import free_port
    from train_helpers import TINY

    shards = synth_and_shard(tmp_path / "data", "unav100", train=24, val=6, test=6, per_shard=5)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("data:\n  dataset: unav100\nmethod:\n  pseudo:\n    mode: topk\n")
    out = run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
               str(REPO / "recipes" / "accelerate" / "cpu_2proc_zero2.yaml"), "--zero_stage", "1",
               "--main_process_port", str(free_port()), str(REPO / "recipes" / "unav100.py"), "--config", str(cfg),
               f"run_dir={tmp_path / 'u'}", f"data.shards={shards}", *TINY, "train.max_steps=6"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rec = json.loads((tmp_path / "u" / "run.json").read_text())
    assert (rec["world_size"], rec["zero_stage"]) == (2, 1)
    metrics = json.loads((tmp_path / "u" / "eval_test" / "metrics.json").read_text())
    assert metrics["dataset"] == "unav100" and "map_mean" in metrics["models"]["teacher"]["metrics"]
    assert "map@0.5" in out.stdout
    assert sorted(losses(tmp_path / "u")) == list(range(1, 7))
