"""The private SLURM cluster the real-SLURM tests run on (slurm/local_cluster.sh).

It starts only under CI (CI=true) or when asked (AVVP_TEST_SLURM=1); elsewhere the tests
skip with the reason, since starting it installs system packages (apt) and runs daemons.
`start_in_background()` is called when the test session starts, so the cluster comes up
while the other tests run; `cluster()` waits for it (with a timeout) in the first test
that needs it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "slurm" / "local_cluster.sh"
START_TIMEOUT_S = 240
_state: dict = {}


def requested() -> str | None:
    """Why the cluster may start (None: it may not)."""
    if os.environ.get("AVVP_TEST_SLURM") == "1":
        return "AVVP_TEST_SLURM=1"
    if os.environ.get("CI", "").lower() == "true" and os.environ.get("AVVP_TEST_SLURM") != "0":
        return "CI=true"
    return None


def start_in_background() -> None:
    if not requested() or _state:
        return
    folder = Path(tempfile.mkdtemp(prefix="avvp-slurm-"))
    log = open(folder / "start.log", "w")
    steps = [] if shutil.which("slurmctld") and shutil.which("slurmdbd") and shutil.which("mariadbd") else ["install"]
    cmd = " && ".join([f"bash {SCRIPT} install"] * bool(steps) + [f"bash {SCRIPT} start {folder / 'cluster'}"])
    _state.update(folder=folder, log=log, proc=subprocess.Popen(["bash", "-c", cmd], stdout=log, stderr=log),
                  started=time.time())


def cluster() -> Path:
    """The cluster folder (source <folder>/env.sh); raises with the start log if it failed."""
    start_in_background()
    proc = _state["proc"]
    try:
        proc.wait(timeout=max(1.0, START_TIMEOUT_S - (time.time() - _state["started"])))
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError(f"the local SLURM cluster did not start in {START_TIMEOUT_S} s: "
                           f"{(_state['folder'] / 'start.log').read_text()[-3000:]}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"the local SLURM cluster failed to start (exit {proc.returncode}): "
                           f"{(_state['folder'] / 'start.log').read_text()[-3000:]}")
    return _state["folder"] / "cluster"


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.split("\0") if "=" in kv)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def node_processes(folder: Path, node: str, job: str) -> list[int]:
    """What a lost host would take down with it: the node's slurmd, the job's tasks on it
    (every process whose environment says SLURM_JOB_ID=job and SLURMD_NODENAME=node, their
    data workers too) and the slurmstepd each task runs under. slurmd first."""
    slurmd = int((folder / "run" / f"slurmd.{node}.pid").read_text())
    tasks = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
             and (lambda e: e.get("SLURM_JOB_ID") == job and e.get("SLURMD_NODENAME") == node)(environ_of(int(p.name)))]
    stepds = {pp for pp in map(_parent, tasks) if pp and cmdline_of(pp).startswith("slurmstepd")}
    return [slurmd, *sorted(stepds), *sorted(tasks)]


def freeze(pids: list[int]) -> None:
    """SIGSTOP: a hung host answers nothing and closes no socket (killing its processes would
    close their sockets, and the job would fail before SLURM ever saw a lost node)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass


def kill_frozen(pids: list[int]) -> None:
    """SIGKILL works on stopped processes too."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def restart_node(folder: Path, node: str) -> None:
    out = subprocess.run(["bash", str(SCRIPT), "restart-node", str(folder), node], capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"restarting node {node} failed: {out.stderr[-2000:]}")


def stop() -> None:
    if not _state:
        return
    proc = _state["proc"]
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    cluster = _state["folder"] / "cluster"
    subprocess.run(["bash", str(SCRIPT), "stop", str(cluster)], capture_output=True, timeout=120)
    _state["log"].close()
    for sub in ("db", "state", "spool", "run", "munge", "munge-key"):  # ~180 MB; the logs stay
        shutil.rmtree(cluster / sub, ignore_errors=True)
    _state.clear()
