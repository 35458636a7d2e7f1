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
