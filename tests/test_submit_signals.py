"""submitit's job body after a stop: every rank acts on the kind the ranks agreed on, also a
rank that was not signalled itself (its own signal number was None and crashed it before)."""
import signal
from types import SimpleNamespace

import pytest

from avvp_dist.engine.stop import EXIT_PREEMPTED, EXIT_TERMINATED
from avvp_dist.launch import submit


@pytest.mark.parametrize("code, raised, status", [
    (EXIT_PREEMPTED, [signal.SIGUSR2], "preempted (SIGUSR2) after a checkpoint"),
    (EXIT_TERMINATED, [], "stopped by SIGTERM after a checkpoint; not requeued"),
])
def test_an_unsignalled_rank_hands_over_the_agreed_signal(monkeypatch, tmp_path, code, raised, status):
    # the training entry of a rank that saw no signal returns the agreed code
    monkeypatch.setattr(submit, "train_command", lambda config, overrides, prog: code)
    monkeypatch.setattr(submit.submitit.helpers, "TorchDistributedEnvironment",
                        lambda: SimpleNamespace(export=lambda **kw: SimpleNamespace(rank=1, world_size=2)))
    seen = []
    monkeypatch.setattr(submit.signal, "raise_signal", seen.append)
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    result = submit.TrainJob(None, [f"run_dir={tmp_path}"])()
    assert seen == raised and result["status"] == status and result["rank"] == 1
