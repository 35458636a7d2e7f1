"""The training engine through its real launchers: exact resume after SIGKILL, faults,
preemption, launch paths, and the CI-sized main job."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from avvp_dist.engine.record import history
from avvp_dist.engine.stop import EXIT_PREEMPTED, EXIT_TERMINATED
from avvp_dist.model.checkpoint import load_model
from train_helpers import launch_ranks, losses, make_shards, run, train_cmd

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


STEPS = ["train.max_steps=300", "train.checkpoint_every=100", "train.eval_every=100", "train.log_every=1"]


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    """One uninterrupted 2-rank run of STEPS: what every interrupted-and-resumed run must equal."""
    straight = tmp_path_factory.mktemp("reference") / "straight"
    out = run(train_cmd(2, straight, shards, *STEPS))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return straight


def _same_final_parameters(a: Path, b: Path) -> None:
    for name in ("student", "teacher"):
        pa, pb = _params(a / f"final_{name}.pt"), _params(b / f"final_{name}.pt")
        assert pa.keys() == pb.keys()
        for k in pa:
            assert torch.equal(pa[k], pb[k]), (name, k)


def test_exact_resume_after_sigkill(shards, reference, tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(2, killed, shards, *STEPS), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: (killed / "checkpoints" / "step_0000100" / "COMPLETE").is_file(), 200, proc)
        _kill_tree(proc.pid)  # the whole job: launcher and both ranks
        proc.wait(30)
    finally:
        _kill_tree(proc.pid)
    assert not (killed / "final_student.pt").exists(), "the job finished before it was killed"
    out = run(train_cmd(2, killed, shards, *STEPS, "train.resume=auto"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    resumed_at = int(out.stdout.split("resumed from ")[1].split(" at step ")[1].split()[0])
    assert resumed_at in (100, 200)
    a, b = losses(reference), losses(killed)
    assert sorted(a) == list(range(1, 301)) and a == b, "per-step losses differ"
    _same_final_parameters(reference, killed)
    starts = [e for e in history(killed) if e["event"] == "start"]
    assert [e["step"] for e in starts] == [0, resumed_at] and starts[1]["reason"].startswith("crash")


def test_telemetry_in_every_record(reference):
    """The masks' shares and the probabilities' saturation at every logged step once the ramp
    starts, the EMA decay in force, the masks against the truth at each validation and in the
    test report, and their panels in curves.png."""
    from avvp_dist.engine.logger import read_records
    from avvp_dist.method.ema import EMATeacher

    records = read_records(reference / "metrics.jsonl")
    train = {r["step"]: r for r in records if r["kind"] == "train"}
    late = train[250]
    for m in ("audio", "visual"):
        shares = [late[f"mask_{m}_{k}"] for k in ("pos", "neg", "ignored")]
        assert min(shares) >= 0 and sum(shares) == pytest.approx(1)
        assert 0 <= late[f"teacher_{m}_high"] <= 1 and late[f"student_{m}_spread"] >= 0
    assert late["teacher_gap"] > 0 and "mask_audio_pos" not in train[1]  # before the ramp: no masks
    teacher = yaml.safe_load((reference / "config.yaml").read_text())["method"]["teacher"]
    rule = EMATeacher.decay_at(SimpleNamespace(decay=teacher["decay"], warmup=teacher["warmup"]), 0)
    assert train[1]["ema_decay"] == pytest.approx(rule)  # update k = step - 1: warm-up, then the cap
    assert [train[s]["ema_decay"] for s in (50, 300)] == pytest.approx(
        [min(teacher["decay"], s / (9 + s)) if teacher["warmup"] else teacher["decay"] for s in (50, 300)])
    truth = [r for r in records if r["kind"] == "val/masks"]
    assert [r["step"] for r in truth] == [100, 200, 300]
    assert all(0 <= r["teacher_audio_precision"] <= 1 and "gain_f1_visual" in r for r in truth)
    lines = (reference / "mask_quality.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "Speech" in json.loads(lines[0])["per_class"]
    quality = json.loads((reference / "eval_test" / "metrics.json").read_text())["mask_quality"]
    assert set(quality) == {"teacher", "student", "per_class", "gain_f1"}
    assert (reference / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_best_checkpoint_holds_the_best_validation_step(reference):
    from avvp_dist.engine.logger import read_records

    vals = [r for r in read_records(reference / "metrics.jsonl") if r["kind"] == "val/teacher"]
    assert [r["step"] for r in vals] == [100, 200, 300]
    best = max(vals, key=lambda r: r["score"])  # the first of equal scores, as the trainer keeps it
    meta = load_model(reference / "best_teacher.pt")[1]
    assert meta["extra"]["step"] == best["step"] and meta["extra"]["seg_type"] == pytest.approx(best["score"])
    best_params = _params(reference / "best_teacher.pt")
    if best["step"] != 300:  # not the final model, so the check above is not about the last one
        assert any(not torch.equal(v, _params(reference / "final_teacher.pt")[k]) for k, v in best_params.items())


def _signal_rank_once_training(procs, run_dir: Path, rank: int, signum: int, group: bool = False) -> list[str]:
    """Waits for a few logged steps, sends `signum` to one rank only (with `group`: to its
    whole process group, its DataLoader workers too, as scancel and SLURM do), returns every
    rank's output."""
    try:
        _wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and
                  (run_dir / "metrics.jsonl").read_text().count("\n") >= 5, 200, procs[0])
        (os.killpg if group else os.kill)(procs[rank].pid, signum)
        return [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            _kill_tree(p.pid)


def test_preemption_signal_saves_on_all_ranks_and_resumes_bit_identical(shards, reference, tmp_path):
    run_dir = tmp_path / "p"
    procs = launch_ranks(2, run_dir, shards, *STEPS)
    outputs = _signal_rank_once_training(procs, run_dir, 1, signal.SIGUSR2)  # only rank 1: the ranks must agree
    assert [p.returncode for p in procs] == [EXIT_PREEMPTED] * 2, outputs
    assert "preempted at step" in outputs[0], outputs[0][-3000:]
    step = int(outputs[0].split("preempted at step ")[1].split(":")[0])
    assert step < 300, "the run ended before the signal"
    ckpt = run_dir / "checkpoints" / f"step_{step:07d}"
    assert (ckpt / "COMPLETE").is_file() and (ckpt / "rank_0.pt").is_file() and (ckpt / "rank_1.pt").is_file()
    assert (run_dir / "PREEMPTED").read_text().startswith(f"step {step}\n")  # what slurm/train.sh requeues on
    out = run(train_cmd(2, run_dir, shards, *STEPS, "train.resume=auto"))
    assert out.returncode == 0 and f"at step {step}" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert not (run_dir / "PREEMPTED").exists()
    _same_final_parameters(reference, run_dir)
    events = history(run_dir)
    assert [(e["event"], e.get("status")) for e in events] == [
        ("start", None), ("end", "preempted"), ("start", None), ("end", "finished")]
    assert events[2]["reason"] == "preemption" and events[2]["step"] == step


def test_sigterm_saves_a_checkpoint_and_does_not_ask_for_a_requeue(shards, tmp_path):
    """SIGTERM to rank 0's process group, its DataLoader worker included (what scancel sends):
    the worker leaves the signal to the trainer (before, it died of it, and the rank with it)."""
    run_dir = tmp_path / "t"
    procs = launch_ranks(2, run_dir, shards, "train.max_steps=100000", "train.log_every=1", "data.num_workers=1")
    outputs = _signal_rank_once_training(procs, run_dir, 0, signal.SIGTERM, group=True)
    assert [p.returncode for p in procs] == [EXIT_TERMINATED] * 2, outputs
    assert "terminated (SIGTERM) at step" in outputs[0], outputs[0][-3000:]
    step = int(outputs[0].split("terminated (SIGTERM) at step ")[1].split(":")[0])
    assert (run_dir / "checkpoints" / f"step_{step:07d}" / "COMPLETE").is_file()
    assert not (run_dir / "PREEMPTED").exists()
    assert (run_dir / "TERMINATED").read_text().startswith(f"step {step}\n")  # what slurm/train.sh reports on
    assert history(run_dir)[-1] == {**history(run_dir)[-1], "event": "end", "status": "terminated", "step": step}


def test_exact_resume_under_zero2(shards, tmp_path, monkeypatch):
    """Preempted under ZeRO 2 and resumed: bit-identical. On the way, a pickle planted in a rank's
    ZeRO optimizer shard (DeepSpeed's own file) is refused by name before it is built."""
    monkeypatch.chdir(tmp_path)
    steps = ["train.zero_stage=2", "train.max_steps=120", "train.checkpoint_every=0", "train.log_every=1"]
    straight = tmp_path / "straight"
    out = run(train_cmd(2, straight, shards, *steps))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = tmp_path / "p"
    procs = launch_ranks(2, run_dir, shards, *steps)
    outputs = _signal_rank_once_training(procs, run_dir, 0, signal.SIGUSR2)
    assert [p.returncode for p in procs] == [EXIT_PREEMPTED] * 2, outputs
    (optim,) = (run_dir / "checkpoints").glob("step_*/zero_pp_rank_1_mp_rank_00_optim_states.pt")  # ZeRO's own parts
    from avvp_dist.engine.checkpoint import safe_load
    from conftest import _Boom

    original = optim.read_bytes()
    blob = safe_load(optim)
    blob["payload"] = _Boom()
    torch.save(blob, optim)
    out = run(train_cmd(2, run_dir, shards, *steps, "train.resume=auto"), cwd=tmp_path)
    assert out.returncode != 0 and "zero_pp_rank_1_mp_rank_00_optim_states.pt: refused: it holds an object" in \
        out.stdout + out.stderr, out.stdout[-2000:] + out.stderr[-2000:]
    assert not (tmp_path / "UNPICKLED_MARKER").exists(), "the optimizer shard's pickle ran"
    optim.write_bytes(original)
    out = run(train_cmd(2, run_dir, shards, *steps, "train.resume=auto"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert losses(straight) == losses(run_dir)
    _same_final_parameters(straight, run_dir)


def test_non_finite_loss_is_skipped_on_all_ranks(shards, tmp_path):
    hook = str(REPO / "tests" / "nan_train.py")  # rank 0's loss is NaN at the micro-steps AVVP_TEST_NAN_STEPS names
    out = run(train_cmd(2, tmp_path / "ok", shards, "train.max_steps=8", script=hook),
              env=dict(os.environ, AVVP_TEST_NAN_STEPS="3"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 non-finite steps skipped" in out.stdout
    assert sorted(losses(tmp_path / "ok")) == list(range(1, 9))
    out = run(train_cmd(2, tmp_path / "stop", shards, "train.max_steps=20", "train.max_consecutive_nan=3",
                        script=hook), env=dict(os.environ, AVVP_TEST_NAN_STEPS="3,4,5"))
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


def test_resume_refuses_other_models_and_pickles_before_writing(shards, tmp_path, monkeypatch):
    """A resume with another model config, or from a checkpoint file holding a pickled object
    (here one whose unpickling would create a folder), fails with a message naming the file or
    setting; the payload never runs and the run folder's records are left as they were."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "r"
    out = run(train_cmd(None, run_dir, shards, "train.max_steps=4", "train.checkpoint_every=2"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    kept = {n: (run_dir / n).read_bytes() for n in ("run.json", "config.yaml", "history.jsonl")}
    out = run(train_cmd(None, run_dir, shards, "train.max_steps=6", "model.d_model=32", "train.resume=auto"),
              cwd=tmp_path)
    assert out.returncode == 2 and "step_0000004: does not fit this run: model.d_model: checkpoint 16, this run 32" \
        in out.stderr, out.stderr[-2000:]
    from conftest import _Boom

    ckpt = run_dir / "checkpoints" / "step_0000004"
    for name in ("mp_rank_00_model_states.pt", "rank_0.pt"):
        original = (ckpt / name).read_bytes()
        blob = torch.load(ckpt / name, weights_only=True)
        blob["payload"] = _Boom()
        torch.save(blob, ckpt / name)
        out = run(train_cmd(None, run_dir, shards, "train.max_steps=6", "train.resume=auto"), cwd=tmp_path)
        assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
        assert f"{name}: refused: it holds an object that is not weights or plain data" in out.stderr, out.stderr
        assert not (tmp_path / "UNPICKLED_MARKER").exists(), "the checkpoint's pickle ran"
        (ckpt / name).write_bytes(original)
    assert {n: (run_dir / n).read_bytes() for n in kept} == kept
    out = run(train_cmd(None, run_dir, shards, "train.max_steps=6", "train.resume=auto"), cwd=tmp_path)
    assert out.returncode == 0 and "resumed from" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


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


@pytest.mark.timeout(300)
def test_a_crash_while_rewriting_a_checkpoint_resumes_from_the_last_complete_one(shards, reference, tmp_path):
    """A run resumed from step 200 reaches step 300 again and rewrites its folder; killed in the
    middle of that save (after DeepSpeed's files, before COMPLETE), the folder must not count as
    complete (before: its old COMPLETE stayed, and resume=auto picked a mixed folder). The next
    start clears it, resumes from step 200, and ends bit-identical to the uninterrupted run."""
    run_dir = tmp_path / "again"
    shutil.copytree(reference, run_dir)
    for final in run_dir.glob("final_*.pt"):
        final.unlink()  # the resumed run must write its own
    root = run_dir / "checkpoints"
    assert [p.name for p in sorted(root.glob("step_*"))] == ["step_0000200", "step_0000300"]
    env = dict(os.environ, AVVP_TEST_KILL_AT_TAG="step_0000300")
    killed = run(train_cmd(2, run_dir, shards, *STEPS, f"train.resume={root / 'step_0000200'}",
                           script=str(Path(__file__).with_name("kill_in_save.py"))), env=env)
    assert killed.returncode != 0, killed.stdout[-2000:]
    assert not (root / "step_0000300" / "COMPLETE").exists()
    out = run(train_cmd(2, run_dir, shards, *STEPS, "train.resume=auto"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "cleared 1 incomplete checkpoint folder(s) (a save cut short): step_0000300" in out.stdout
    assert f"resumed from {root / 'step_0000200'} at step 200" in out.stdout
    _same_final_parameters(reference, run_dir)


@pytest.mark.timeout(180)
def test_a_preemption_signal_during_start_up_checkpoints_and_asks_for_a_requeue(shards, tmp_path):
    """SIGUSR2 while DeepSpeed starts (tests/signal_at_start.py): before, the handlers came
    after DeepSpeed and the resume load, and the signal's default action killed the rank."""
    run_dir = tmp_path / "early"
    out = run(train_cmd(None, run_dir, shards, "train.max_steps=50", "train.plots=0",
                        script=str(Path(__file__).with_name("signal_at_start.py"))))
    assert out.returncode == EXIT_PREEMPTED, out.stdout[-2000:] + out.stderr[-2000:]
    assert (run_dir / "checkpoints" / "step_0000001" / "COMPLETE").is_file()
    assert [e["status"] for e in history(run_dir) if e["event"] == "end"] == ["preempted"]


@pytest.mark.timeout(240)
def test_every_resume_error_is_one_line_and_exit_2(shards, tmp_path):
    """A damaged record, a folder without COMPLETE, a stream of another geometry: each a
    one-line message and exit code 2 (before: a traceback and exit code 1)."""
    run_dir = tmp_path / "run"
    first = run(train_cmd(None, run_dir, shards, "train.max_steps=4", "train.checkpoint_every=2", "train.plots=0",
                          "train.final_eval=false"))
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    step2, step4 = run_dir / "checkpoints" / "step_0000002", run_dir / "checkpoints" / "step_0000004"
    (step4 / "run.json").write_text('{"model": {"d_model": 16')  # torn
    cases = [(["train.resume=auto"], "run.json: not valid JSON"),
             ([f"train.resume={tmp_path / 'nowhere'}"], "not a complete checkpoint (no COMPLETE marker; no such folder)"),
             ([f"train.resume={step2}", "data.batch_size=3"], "cannot resume the data stream exactly")]
    for extra, message in cases:
        out = run(train_cmd(None, run_dir, shards, "train.max_steps=6", "train.plots=0", *extra))
        assert out.returncode == 2, (extra, out.stdout[-2000:] + out.stderr[-2000:])
        assert message in out.stderr and "Traceback" not in out.stderr, (extra, out.stderr[-2000:])


def test_resume_never_picks_a_half_written_checkpoint(tmp_path):
    from avvp_dist.engine.checkpoint import CheckpointError, find_resume

    root = tmp_path / "checkpoints"
    (root / "step_0000100").mkdir(parents=True)
    (root / "step_0000100" / "COMPLETE").write_text("100\n")
    (root / "step_0000200").mkdir()  # a crash while saving step 200: no marker
    (root / "step_0000200" / "mp_rank_00_model_states.pt").write_bytes(b"partial")
    assert find_resume(tmp_path, "auto") == root / "step_0000100"
    assert find_resume(tmp_path, "") is None
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
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
