"""Cluster launch on a real SLURM (a private two-node cluster on this machine,
slurm/local_cluster.sh): sbatch slurm/train.sh on one node and on two, a node lost mid-run
and the requeue that survives it, submitit across two nodes with preemption and requeue, a
killed task; plus the dry run, host lists and per-node counts, which need no cluster."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import slurm_cluster
from avvp_dist.distributed.env import discover, local_world_size, rendezvous, threads_per_rank
from avvp_dist.launch.hostlist import expand_hostlist, slurm_rendezvous
from avvp_dist.engine.checkpoint import complete_checkpoints, tag
from avvp_dist.engine.record import history
from avvp_dist.model.checkpoint import load_model
from train_helpers import TINY, make_shards

REPO = Path(__file__).resolve().parents[1]
STEPS = 300  # long enough to send a signal mid-run (about 25 steps/s here)


# ---- no cluster needed ----------------------------------------------------------------
@pytest.mark.parametrize("nodelist, hosts", [
    ("vm", ["vm"]),
    ("gpu[01-03]", ["gpu01", "gpu02", "gpu03"]),
    ("gpu[08-10,15],cpu7", ["gpu08", "gpu09", "gpu10", "gpu15", "cpu7"]),
    ("a[1-2]-ib,b3", ["a1-ib", "a2-ib", "b3"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
])
def test_expand_hostlist(nodelist, hosts):
    assert expand_hostlist(nodelist) == hosts


# SLURM's documented host-list forms and what `scontrol show hostnames` prints for them
DOCUMENTED = {
    "tux5": ["tux5"],
    "tux[1-3]": ["tux1", "tux2", "tux3"],
    "tux[1,3,5]": ["tux1", "tux3", "tux5"],
    "tux[1-2,7,9-10]": ["tux1", "tux2", "tux7", "tux9", "tux10"],
    "gpu[008-011]": ["gpu008", "gpu009", "gpu010", "gpu011"],
    "tux[1-2],linux[0-1]": ["tux1", "tux2", "linux0", "linux1"],
    "rack[1-2]-n[01-02]": ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"],
    "n1,n[3-4],login": ["n1", "n3", "n4", "login"],
}


@pytest.mark.parametrize("nodelist", sorted(DOCUMENTED))
def test_expand_hostlist_documented_forms(nodelist, tmp_path):
    assert expand_hostlist(nodelist) == DOCUMENTED[nodelist]
    if shutil.which("scontrol") is None:
        return  # the expected lists above were checked against scontrol 22.05
    conf = tmp_path / "slurm.conf"  # scontrol needs a config to start, not a cluster
    conf.write_text("ClusterName=t\nSlurmctldHost=localhost\nNodeName=n1\nPartitionName=p Nodes=n1\n")
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, SLURM_CONF=str(conf)), check=True)
    assert out.stdout.split() == DOCUMENTED[nodelist]


def test_expand_hostlist_rejects_bad_lists():
    for bad in ("gpu[1-x]", "gpu[01-02", "gpu]1[", "a,,b"):
        with pytest.raises(ValueError, match="host list"):
            expand_hostlist(bad)


def test_slurm_task_rendezvous_from_the_launcher():
    """The launcher provides the rendezvous: a task started by srun with no MASTER_* is an
    error that names the batch script; the dry run shows the first host and the job-id port
    that slurm/train.sh exports."""
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123457",
           "SLURM_JOB_NODELIST": "gpu[11-14]"}
    d = discover(env)
    assert (d.rank, d.world_size, d.local_rank, d.source) == (5, 8, 1, "slurm")
    with pytest.raises(RuntimeError, match="MASTER_ADDR and MASTER_PORT not set: start the job with `sbatch slurm/train.sh`"):
        rendezvous(d, env)
    assert slurm_rendezvous(env) == ("gpu11", 23457)
    # set by the launcher: kept
    assert rendezvous(d, {**env, "MASTER_ADDR": "h", "MASTER_PORT": "7"})["MASTER_ADDR"] == "h"


@pytest.mark.parametrize("env, local, threads", [
    ({}, 1, 8),  # a plain process: every core
    ({"LOCAL_WORLD_SIZE": "4"}, 4, 2),  # torchrun / accelerate / submitit
    ({"SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "1"}, 2, 4),
    ({"SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}, 1, 8),
    ({"SLURM_STEP_TASKS_PER_NODE": "3,1", "SLURM_TASKS_PER_NODE": "4", "SLURM_NODEID": "0"}, 3, 2),
    ({"SLURM_TASKS_PER_NODE": "2", "SLURM_CPUS_PER_TASK": "3"}, 2, 3),  # SLURM's CPUs for the task win
    ({"LOCAL_WORLD_SIZE": "1", "SLURM_CPUS_PER_TASK": "1"}, 1, 1),
])
def test_ranks_on_this_node_and_threads_per_rank(env, local, threads):
    assert local_world_size(env) == local
    assert threads_per_rank(0, env, cores=8) == threads
    assert threads_per_rank(5, env, cores=8) == 5  # train.threads set: kept
    with pytest.raises(ValueError, match="SLURM_TASKS_PER_NODE"):
        local_world_size({"SLURM_TASKS_PER_NODE": "2(x"})


def test_train_sh_dry_run_two_nodes():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_"))}
    env["PYTHON"] = sys.executable
    out = subprocess.run(["bash", "slurm/train.sh", "--dry-run", "--nodes", "2", "--ntasks-per-node", "2",
                          "--gpus-per-node", "2", "--nodelist", "gpu[07-08]", "recipes/configs/llp.yaml",
                          "data.batch_size=16"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "2 node(s) x 2 task(s) = 4 rank(s)" in text
    assert "## node 0 (gpu07)" in text and "## node 1 (gpu08)" in text
    ranks = re.findall(r"RANK=(\d) WORLD_SIZE=(\d) LOCAL_RANK=(\d) MASTER_ADDR=(\S+) MASTER_PORT=(\d+)", text)
    assert ranks == [("0", "4", "0", "gpu07", "24242"), ("1", "4", "1", "gpu07", "24242"),
                     ("2", "4", "0", "gpu07", "24242"), ("3", "4", "1", "gpu07", "24242")]
    assert "srun --kill-on-bad-exit=1" in text
    assert text.count(", 1 thread(s), CUDA device") == 4  # --cpus-per-task 1 (the dry run's default)
    assert re.findall(r"CUDA device (\d) of the 2 it sees", text) == ["0", "1", "0", "1"]  # cuda:LOCAL_RANK
    assert "avvp_dist.cli train --config recipes/configs/llp.yaml run_dir=runs/avvp-4242 train.resume=auto " \
           "data.batch_size=16" in text
    per_task = subprocess.run(["bash", "slurm/train.sh", "--dry-run", "--gpus-per-node", "2", "--gpus-per-task", "1"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert per_task.stdout.count("CUDA device 0 of the 1 it sees") == 4, per_task.stdout + per_task.stderr
    # a CPU dry run asks for no GPUs
    cpu = subprocess.run(["bash", "slurm/train.sh", "--dry-run", "--nodes", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert "GPUs per node: none asked for" in cpu.stdout and "CUDA device" not in cpu.stdout
    outside = subprocess.run(["bash", "slurm/train.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert outside.returncode == 2 and "not inside a SLURM job" in outside.stderr


def test_train_sh_asks_for_no_gpus_by_default():
    header = [line for line in (REPO / "slurm" / "train.sh").read_text().splitlines() if line.startswith("#SBATCH")]
    assert not any("gpu" in line or "gres" in line for line in header)
    for option in ("--signal=USR2@", "--requeue", "--nodes=", "--ntasks-per-node=", "--cpus-per-task=", "--time="):
        assert any(option in line for line in header), option


# ---- on the cluster -------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster_env():
    reason = slurm_cluster.requested()
    if reason is None:
        pytest.skip("real-SLURM tests start a private cluster (apt-get slurm-wlm munge slurmdbd mariadb-server, "
                    "daemons on private ports) only under CI=true or with AVVP_TEST_SLURM=1")
    folder = slurm_cluster.cluster()
    # a submitting shell that another launcher left variables in, one of them a port in use:
    # the jobs must take rank, world and rendezvous from SLURM, not from these
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    env = dict(os.environ, SLURM_CONF=str(folder / "etc" / "slurm.conf"), PYTHON=sys.executable,
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", RANK="0", WORLD_SIZE="1", LOCAL_RANK="0",
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(busy.getsockname()[1]))
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    yield env
    busy.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("slurm_data"))


def _overrides(shards: Path, steps: int = STEPS, threads: str | None = "1", checkpoint_every: int = 0) -> list[str]:
    """`threads=None` leaves train.threads at its default (0: SLURM_CPUS_PER_TASK)."""
    return [f"data.shards={shards}", f"train.max_steps={steps}", f"train.checkpoint_every={checkpoint_every}",
            *([f"train.threads={threads}"] if threads else []), *TINY]


def _cmd(env, *args, timeout=60) -> str:
    out = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stderr}"
    return out.stdout.strip()


def _state(env, job: str) -> str:
    """The job's state: squeue while it is known there, then accounting (sacct)."""
    q = subprocess.run(["squeue", "--states=all", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True,
                       text=True, timeout=30)
    if q.returncode == 0 and q.stdout.strip():
        return q.stdout.strip()
    a = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], env=env, capture_output=True,
                       text=True, timeout=30)
    return (a.stdout.strip().splitlines() or ["UNKNOWN"])[-1].split()[0]


def _wait(what: str, predicate, timeout: float, poll: float = 0.25):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _steps_logged(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_text().count('"kind": "train"')
    except OSError:
        return 0


FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED")


def _wait_done(env, job: str, timeout: float) -> str:
    """Waits for a final state."""
    return _wait(f"job {job} to end", lambda: (lambda s: s if s in FINAL else None)(_state(env, job)), timeout,
                 poll=0.5)


def _wait_requeued_then_done(env, job: str, timeout: float) -> str:
    """After a preemption signal: waits until the job is back in the queue (PENDING), starts
    it at once (SLURM holds a requeued job about 2 minutes), then waits for its final state."""
    def pending():
        state = _state(env, job)
        if state in FINAL:
            raise AssertionError(f"job {job} ended ({state}) instead of being requeued")
        return state == "PENDING"
    _wait(f"job {job} to be requeued", pending, timeout, poll=0.2)
    # slurmd refuses a credential of the same job created in the second it was revoked in
    # ("Job credential revoked"): let the nodes finish with the first run, then a second more
    _wait("the nodes to be idle", lambda: _all_idle(env), 60)
    time.sleep(2)
    _cmd(env, "scontrol", "update", f"JobId={job}", "StartTime=now")
    return _wait_done(env, job, timeout)


_SUBMITTED: list[str] = []


@pytest.fixture(autouse=True)
def _cancel_leftover_jobs(request):
    """A failing test must not leave its job holding the node for the next one."""
    yield
    if _SUBMITTED and "cluster_env" in request.fixturenames:
        env = request.getfixturevalue("cluster_env")
        subprocess.run(["scancel", *_SUBMITTED], env=env, capture_output=True, timeout=30)
        _SUBMITTED.clear()


def _nodes(env) -> dict[str, str]:
    """Each node's state, e.g. {"n1": "idle", "n2": "down*"}."""
    return dict(line.split() for line in _cmd(env, "sinfo", "-h", "-N", "-o", "%N %T").splitlines())


def _all_idle(env) -> bool:
    return set(_nodes(env).values()) == {"idle"}


def _sbatch(env, run_dir: Path, out: Path, overrides: list[str], *options: str) -> str:
    """`sbatch [options] slurm/train.sh overrides` once both nodes are idle (a test before may
    have just ended, or brought a node back)."""
    _wait("both nodes to be idle", lambda: _all_idle(env), 120, poll=0.5)
    job = _cmd({**env, "RUN_DIR": str(run_dir)}, "sbatch", "--parsable", f"--output={out}", "--job-name=avvp-test",
               *options, str(REPO / "slurm" / "train.sh"), *overrides).split(";")[0]
    _SUBMITTED.append(job)
    return job


def _same_params(a: Path, b: Path) -> None:
    ma, mb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert ma.keys() == mb.keys()
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k


@pytest.fixture(scope="module")
def uninterrupted(cluster_env, data, tmp_path_factory) -> Path:
    """`sbatch slurm/train.sh` with its defaults (1 node x 2 tasks), run to the end: the
    reference of the two-node, node-loss and preemption tests."""
    folder = tmp_path_factory.mktemp("sbatch")
    run_dir = folder / "run"
    job = _sbatch(cluster_env, run_dir, folder / "job.out", _overrides(data, threads=None))
    state = _wait_done(cluster_env, job, 300)
    assert state == "COMPLETED", (folder / "job.out").read_text()[-3000:]
    return run_dir


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sbatch_two_tasks_runs_to_completion(uninterrupted):
    record = json.loads((uninterrupted / "run.json").read_text())
    assert record["launcher"] == "slurm" and record["world_size"] == 2
    # both tasks on one node: local ranks 0 and 1; train.threads=0: one thread each (--cpus-per-task=1)
    assert [(r["node"], r["slurm_nodeid"], r["local_rank"], r["threads"]) for r in record["ranks"]] in (
        [("n1", "0", 0, 1), ("n1", "0", 1, 1)], [("n2", "0", 0, 1), ("n2", "0", 1, 1)])
    metrics = json.loads((uninterrupted / "eval_test" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"student", "teacher"}
    assert 0 <= metrics["models"]["teacher"]["metrics"]["seg_type"] <= 100
    assert _steps_logged(uninterrupted) == STEPS
    logs = sorted(p.name for p in (uninterrupted / "logs").iterdir())
    assert len(logs) == 2 and all(re.fullmatch(r"\d+-task[01]\.log", n) for n in logs)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_nodes_train_what_one_node_trains(cluster_env, data, uninterrupted, tmp_path):
    """2 nodes x 1 task == 1 node x 2 tasks, bit for bit. The rendezvous is the first node's
    NodeAddr (the names n1 and n2 do not resolve here); threads come from the job's
    --cpus-per-task=1 (train.threads left at 0), where cores / ranks on the node would be 2."""
    run_dir = tmp_path / "run"
    job = _sbatch(cluster_env, run_dir, tmp_path / "job.out", _overrides(data, threads=None),
                  "--nodes=2", "--ntasks-per-node=1")
    state = _wait_done(cluster_env, job, 300)
    out = (tmp_path / "job.out").read_text()
    assert state == "COMPLETED", out[-3000:]
    assert re.search(r"2 task\(s\) on n\[1-2\]; rendezvous 127\.0\.0\.1:\d+ \(first node's NodeAddr\)", out), out
    record = json.loads((run_dir / "run.json").read_text())
    assert [(r["rank"], r["node"], r["slurm_nodeid"], r["local_rank"]) for r in record["ranks"]] == [
        (0, "n1", "0", 0), (1, "n2", "1", 0)]
    assert [r["threads"] for r in record["ranks"]] == [1, 1]
    assert "on 2 node(s): n1, n2" in (run_dir / "summary.txt").read_text()
    for name in ("final_student.pt", "final_teacher.pt"):
        _same_params(run_dir / name, uninterrupted / name)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_lost_node_is_requeued_and_resumes_to_the_same_parameters(cluster_env, data, uninterrupted, tmp_path):
    """Node n2 is lost mid-run, after a complete checkpoint: its slurmd, slurmstepd and task
    freeze (SIGSTOP), as a hung or powered-off host answers nothing. SLURM marks it down,
    ends the job NODE_FAIL and requeues it; once n2 is back the job resumes from the newest
    complete checkpoint and ends with the uninterrupted run's parameters."""
    folder = slurm_cluster.cluster()
    run_dir, out = tmp_path / "run", tmp_path / "job.out"
    ckpts = run_dir / "checkpoints"
    job = _sbatch(cluster_env, run_dir, out, _overrides(data, checkpoint_every=40), "--nodes=2", "--ntasks-per-node=1")
    _wait("a complete checkpoint", lambda: complete_checkpoints(ckpts) or _state(cluster_env, job) not in
          ("PENDING", "RUNNING", "CONFIGURING"), 240, poll=0.1)
    frozen = slurm_cluster.node_processes(folder, "n2", job)
    t = {"lost": time.time()}
    slurm_cluster.freeze(frozen)
    try:
        steps_at_loss = _steps_logged(run_dir)
        assert steps_at_loss < STEPS and _state(cluster_env, job) == "RUNNING", out.read_text()[-3000:]
        # slurmd, its step, the task
        assert len(frozen) >= 3 and slurm_cluster.cmdline_of(frozen[1]).startswith("slurmstepd"), frozen
        _wait("n2 to be marked down", lambda: _nodes(cluster_env)["n2"].startswith("down"), 120, poll=0.5)
        t["marked down"] = time.time()
        _wait(f"job {job} to be requeued", lambda: _state(cluster_env, job) == "PENDING", 120, poll=0.5)
        t["requeued"] = time.time()
        # what the lost start left: complete checkpoints, and maybe one that rank 0 began alone. Make
        # sure there is one: rank 0's part of the next checkpoint, loadable, but no rank 1 part
        # and no COMPLETE marker, as a save interrupted by the lost node leaves it
        complete = complete_checkpoints(ckpts)
        assert complete, out.read_text()[-3000:]
        half = ckpts / tag(int(complete[-1].name.split("_")[1]) + 40)
        if not half.exists():
            shutil.copytree(complete[-1], half)
            for name in ("COMPLETE", "rank_1.pt"):
                (half / name).unlink()
        written = sorted(p.name for p in ckpts.glob("step_*"))
    finally:
        slurm_cluster.kill_frozen(frozen)
        slurm_cluster.restart_node(folder, "n2")
    t["node back"] = time.time()
    _wait(f"job {job} to start again", lambda: _state(cluster_env, job) != "PENDING", 180, poll=0.5)
    t["running again"] = time.time()
    state = _wait_done(cluster_env, job, 300)
    t["done"] = time.time()
    text = out.read_text()
    assert state == "COMPLETED", text[-3000:]
    assert "(restart 1)" in text
    def runs() -> list[str]:
        return _cmd(cluster_env, "sacct", "-n", "-X", "-D", "-P", "-j", job, "-o", "State").split()

    # slurmdbd records the end a moment after the controller does
    _wait("the accounting to record the end", lambda: runs()[-1:] == ["COMPLETED"], 60, poll=0.5)
    assert runs()[0] == "NODE_FAIL" and runs()[-1] == "COMPLETED", runs()
    # resumed from the newest checkpoint that was complete when the node was lost, not from
    # the newer half-written one
    assert written[-1] == half.name, written
    logs = "".join(p.read_text() for p in (run_dir / "logs").iterdir())
    assert f"resumed from {complete[-1]} at step" in logs, logs[-3000:]
    starts = [e for e in history(run_dir) if e["event"] == "start"]
    assert [(e["restart_count"], e["nodes"]) for e in starts] == [(0, ["n1", "n2"]), (1, ["n1", "n2"])]
    assert starts[1]["reason"].startswith("node failure") and "on n1, n2" in starts[1]["reason"], starts[1]
    assert starts[1]["checkpoint"] == str(complete[-1])
    assert history(run_dir)[-1]["status"] == "finished" and history(run_dir)[-1]["step"] == STEPS
    for name in ("final_student.pt", "final_teacher.pt"):
        _same_params(run_dir / name, uninterrupted / name)
    marks = list(t.items())
    print("node loss timings (s after n2 was lost at step %d, checkpoint %s): " % (steps_at_loss, complete[-1].name)
          + ", ".join(f"{k} {v - t['lost']:.0f}" for k, v in marks[1:]))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sbatch_preemption_requeues_and_resumes_to_the_same_parameters(cluster_env, data, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    job = _sbatch(cluster_env, run_dir, tmp_path / "job.out", _overrides(data))
    _wait("training to pass step 60", lambda: _steps_logged(run_dir) > 60 or _state(cluster_env, job) not in
          ("PENDING", "RUNNING", "CONFIGURING"), 240)
    _cmd(cluster_env, "scancel", "--signal=USR2", job)  # what --signal=USR2@120 sends before the time limit
    state = _wait_requeued_then_done(cluster_env, job, 300)
    out = (tmp_path / "job.out").read_text()
    assert state == "COMPLETED", out[-3000:]
    assert "requeueing job" in out and "(restart 1)" in out
    logs = "".join(p.read_text() for p in (run_dir / "logs").iterdir())
    m = re.search(r"preempted at step (\d+)", logs)
    assert m and 0 < int(m.group(1)) < STEPS
    assert f"resumed from {run_dir / 'checkpoints' / f'step_{int(m.group(1)):07d}'}" in logs
    assert (run_dir / "checkpoints" / f"step_{int(m.group(1)):07d}" / "COMPLETE").exists()
    for name in ("final_student.pt", "final_teacher.pt"):
        _same_params(run_dir / name, uninterrupted / name)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sbatch_sigterm_checkpoints_and_is_not_requeued(cluster_env, data, tmp_path):
    """`scancel --signal=TERM` (what an administrator's scancel or SLURM's own preemption sends
    the tasks): every rank saves its part of a checkpoint, rank 0 leaves TERMINATED, and the
    batch script takes its SIGTERM branch: no requeue, exit code 143."""
    run_dir = tmp_path / "run"
    job = _sbatch(cluster_env, run_dir, tmp_path / "job.out", _overrides(data))
    _wait("training to pass step 60", lambda: _steps_logged(run_dir) > 60 or _state(cluster_env, job) not in
          ("PENDING", "RUNNING", "CONFIGURING"), 240)
    _cmd(cluster_env, "scancel", "--signal=TERM", job)  # the tasks, not the batch script
    state = _wait_done(cluster_env, job, 240)
    out = (tmp_path / "job.out").read_text()
    assert state == "FAILED", (state, out[-3000:])
    assert "stopped by SIGTERM after a checkpoint; not requeued" in out and "(restart 1)" not in out, out[-3000:]
    assert (run_dir / "TERMINATED").is_file() and not (run_dir / "PREEMPTED").exists()
    step = int(re.match(r"step (\d+)", (run_dir / "TERMINATED").read_text()).group(1))
    assert 0 < step < STEPS and (run_dir / "checkpoints" / f"step_{step:07d}" / "COMPLETE").is_file()
    ends = [e for e in history(run_dir) if e["event"] == "end"]
    assert [e["status"] for e in ends] == ["terminated"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_submitit_two_nodes_preempted_requeued_result_comes_back(cluster_env, data, uninterrupted, tmp_path,
                                                                  monkeypatch):
    from avvp_dist.launch.submit import Resources, submit

    for k in ("SLURM_CONF", "PATH", "TORCH_EXTENSIONS_DIR", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
              "MASTER_PORT"):
        monkeypatch.setenv(k, cluster_env[k])
    run_dir = tmp_path / "run"
    _wait("both nodes to be idle", lambda: _all_idle(cluster_env), 120, poll=0.5)
    # two nodes, one task each: submitit's MASTER_ADDR would be the name n1, which does not resolve
    job = submit(str(REPO / "recipes" / "configs" / "llp_synth.yaml"), [f"run_dir={run_dir}", *_overrides(data)],
                 Resources(nodes=2, tasks_per_node=1, timeout_min=60), folder=tmp_path / "submitit", cluster="slurm")
    _SUBMITTED.append(job.job_id)
    _wait("training to pass step 60", lambda: _steps_logged(run_dir) > 60 or job.done(), 240)
    _cmd(cluster_env, "scancel", "--signal=USR2", job.job_id)  # submitit's preemption signal
    state = _wait_requeued_then_done(cluster_env, job.job_id, 300)
    results = job.results()
    assert state == "COMPLETED", job.stderr()
    assert [r["rank"] for r in results] == [0, 1] and all(r["status"] == "finished" for r in results)
    assert results[0]["step"] == STEPS and "seg_type" in results[0]["test"]["teacher"]
    log = Path(job.paths.stderr).read_text() + Path(job.paths.stdout).read_text()
    assert "preempted at step" in log and "Requeued job" in log, log[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["launcher"] == "submitit-slurm" and [r["node"] for r in record["ranks"]] == ["n1", "n2"]
    assert [e["reason"] for e in history(run_dir) if e["event"] == "start"] == ["first start", "preemption"]
    for name in ("final_student.pt", "final_teacher.pt"):
        _same_params(run_dir / name, uninterrupted / name)


def _task_pid(job: str, procid: int) -> int | None:
    """The training process of SLURM task `procid` of `job`, found through /proc."""
    for proc in Path("/proc").glob("[0-9]*"):
        env = slurm_cluster.environ_of(int(proc.name))
        if env.get("SLURM_JOB_ID") == job and env.get("SLURM_PROCID") == str(procid) and \
                "avvp_dist.cli" in slurm_cluster.cmdline_of(int(proc.name)):
            return int(proc.name)
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_task_fails_the_job_with_a_message(cluster_env, data, tmp_path):
    run_dir = tmp_path / "run"
    job = _sbatch(cluster_env, run_dir, tmp_path / "job.out", _overrides(data, steps=100000))
    _wait("training to start", lambda: _steps_logged(run_dir) > 20 or _state(cluster_env, job) not in
          ("PENDING", "RUNNING", "CONFIGURING"), 240)
    pid = _wait("rank 1's process", lambda: _task_pid(job, 1), 30)
    os.kill(pid, signal.SIGKILL)
    state = _wait_done(cluster_env, job, 120)
    out = (tmp_path / "job.out").read_text()
    assert state == "FAILED", out[-3000:]
    assert re.search(r"srun: error: \S+: task 1: Killed", out), out[-3000:]
    assert "training failed: srun exit code" in out
    assert _steps_logged(run_dir) < 100000
