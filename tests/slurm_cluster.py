"""The private SLURM cluster the real-SLURM tests run on (slurm/local_cluster.sh).

It starts only under CI (CI=true) or when asked (AVVP_TEST_SLURM=1); elsewhere the tests
skip with the reason, since starting it installs system packages (apt) and runs daemons.
`start_in_background()` is called when the test session starts, so the cluster comes up
while the other tests run; `cluster()` waits for it (with a timeout) in the first test
that needs it."""
from __future__ import annotations

import os
import shutil
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
