"""TrainState: what a checkpoint holds besides DeepSpeed's files, and refusing an older format."""
import pytest
import torch

from avvp_dist.engine.state import FORMAT, TrainState


class Stream:
    """Stands in for the shard stream's position (a dict state)."""

    def __init__(self, position=0):
        self.position = position

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def test_state_round_trips_counters_best_stream_and_rng():
    saved = TrainState(Stream(17), step=40, micro_step=43, nan_skips=3, consecutive_nan=2,
                       best={"score": 51.5, "step": 30, "metric": "seg_type", "model": "teacher"})
    torch.manual_seed(5)
    shared, rank = saved.state_dict(), saved.rank_state_dict()
    expected_draw = torch.rand(3)
    restored = TrainState(Stream())
    restored.load_state_dict(shared, rank)
    assert (restored.step, restored.micro_step, restored.nan_skips) == (40, 43, 3)
    assert restored.consecutive_nan == 0  # a resumed run counts non-finite losses afresh
    assert restored.accumulated == 40 and restored.best == saved.best and restored.stream.position == 17
    assert torch.equal(torch.rand(3), expected_draw)  # the RNG continues where the checkpoint was taken


def test_a_checkpoint_of_the_old_format_is_refused_by_name():
    old_client = {"step": 10, "nan_skips": 0, "best": {"score": 1.0, "step": 10}, "teacher": None}
    with pytest.raises(ValueError, match=f"ckpt/step_0000010: training-state format '1 .*', this version reads '{FORMAT}'"):
        TrainState(Stream()).load_state_dict(old_client, {"stream": {"position": 0}}, source="ckpt/step_0000010")


def test_a_run_that_needs_a_teacher_refuses_a_checkpoint_without_one():
    class Teacher:
        def load_state_dict(self, state):
            raise AssertionError("not reached")

    shared = TrainState(Stream()).state_dict()
    with pytest.raises(ValueError, match="has no EMA teacher"):
        TrainState(Stream(), Teacher()).load_state_dict(shared, TrainState(Stream()).rank_state_dict())


def test_a_torn_last_history_line_is_reported_skipped_and_the_next_start_appends(tmp_path, caplog):
    """A power loss mid-write leaves half a line with no newline: every later start read it
    with json.loads and failed. Now it is skipped with a warning, and the next event starts a
    line of its own."""
    import json

    from avvp_dist.engine.record import HISTORY, _append, history, start_reason

    first = {"event": "start", "step": 0, "restart_count": 0}
    (tmp_path / HISTORY).write_text(json.dumps(first) + "\n" + '{"event": "end", "status": "pre')
    assert history(tmp_path) == [first] and "not a history event" in caplog.text
    assert start_reason(history(tmp_path), 0).startswith("crash")  # the start before recorded no (readable) end
    _append(tmp_path, {"event": "start", "step": 100})
    assert history(tmp_path) == [first, {"event": "start", "step": 100}]
    assert (tmp_path / HISTORY).read_text().splitlines()[-1] == '{"event": "start", "step": 100}'
