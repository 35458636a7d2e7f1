"""The per-step section timer of the throughput benchmark: medians and means by hand."""
import statistics

from avvp_dist.profiling import StepTimer


def test_summary_medians_and_means_by_hand():
    timer = StepTimer()
    # four steps: forward 1, 2, 3, 10 ms; the rest of each step is `other`
    timer.steps = [{"forward": f / 1000, "step": (f + o) / 1000} for f, o in ((1, 1), (2, 1), (3, 2), (10, 6))]
    med, mean = timer.summary(skip=1), timer.summary(skip=1, stat=statistics.fmean)
    assert med["measured_steps"] == mean["measured_steps"] == 3
    assert abs(med["forward"] - 0.003) < 1e-12 and abs(mean["forward"] - 0.005) < 1e-12
    assert abs(med["step"] - 0.005) < 1e-12 and abs(mean["step"] - 0.008) < 1e-12
    assert abs(med["other"] - 0.002) < 1e-12 and abs(mean["other"] - 0.003) < 1e-12
    assert StepTimer().summary() == {}


def test_progress_in_a_log_file_is_plain_lines_with_the_rate(tmp_path, monkeypatch):
    """Where stderr is no terminal (a SLURM task's log), progress is one line every
    AVVP_PROGRESS_S seconds and a last line with the count and the rate, no carriage returns."""
    import io

    from avvp_dist.data.progress import LineProgress, progress

    log = io.StringIO()
    monkeypatch.setenv("AVVP_PROGRESS_S", "0")
    bar = progress(total=3, desc="train", unit="step", file=log)
    assert isinstance(bar, LineProgress)
    for _ in range(3):
        bar.update(1)
    bar.set_postfix(loss="0.5000")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4
    assert lines[0].startswith("train: 1/3 steps in ") and lines[-1].startswith("train: done: 3/3 steps in ")
    assert "step/s, loss 0.5000" in lines[-1]
    quiet = io.StringIO()
    monkeypatch.setenv("AVVP_PROGRESS_S", "3600")
    assert list(progress(range(5), desc="shard", unit="video", file=quiet)) == [0, 1, 2, 3, 4]
    assert quiet.getvalue().count("\n") == 1 and "done: 5/5 videos" in quiet.getvalue()
    bar = progress(total=2, desc="train", unit="step", file=io.StringIO())
    bar.write("step 1: val map 3.0")  # the trainer's messages between progress lines go to stdout, as tqdm's
