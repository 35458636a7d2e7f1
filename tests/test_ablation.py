"""The accuracy study's command (benchmarks/ablation.py): its statistics against hand
computation, and a one-seed, tiny run end to end (the CI smoke test)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("ablation", REPO / "benchmarks" / "ablation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_summary_statistics_by_hand():
    ab = _module()
    metrics = ab.DATASETS["llp"]["metrics"]

    def run(seg_type, evt_type, teacher=True):
        m = {k: 10.0 for k in metrics} | {"seg_type": seg_type, "evt_type": evt_type}
        out = {"student": dict(m, seg_type=seg_type - 1)}
        if teacher:
            out["teacher"] = m
        return out

    results = {("baseline", 0): run(40, 30, False), ("baseline", 1): run(42, 31, False),
               ("baseline", 2): run(44, 32, False),
               ("full", 0): run(43, 30, True), ("full", 1): run(45, 33, True), ("full", 2): run(47, 32, True)}
    s = ab.summarise("llp", results, ["baseline", "full"], [0, 1, 2])
    # baseline student seg_type: 39, 41, 43 -> mean 41, sample std 2
    assert s["baseline"]["models"]["student"]["seg_type"] == pytest.approx((41.0, 2.0))
    assert "teacher" not in s["baseline"]["models"]
    # paired: full's teacher minus baseline's student: seg 43-39, 45-41, 47-43 = 4, 4, 4
    p = s["full"]["paired"]["seg_type"]
    assert p["diffs"] == [4.0, 4.0, 4.0] and p["mean"] == 4.0 and p["std"] == 0.0 and p["beyond_2std"]
    # evt: 30-30, 33-31, 32-32 = 0, 2, 0 -> mean 2/3, std sqrt(4/3); not beyond 2 std
    q = s["full"]["paired"]["evt_type"]
    assert q["diffs"] == [0.0, 2.0, 0.0] and q["mean"] == pytest.approx(2 / 3)
    assert q["std"] == pytest.approx((4 / 3) ** 0.5) and not q["beyond_2std"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_study_runs_end_to_end(tmp_path):
    out = tmp_path / "ablation"
    tiny = ["--data-override", "synth.num_train=48", "--data-override", "synth.num_val=12",
            "--data-override", "synth.num_test=12"]
    cmd = [sys.executable, "benchmarks/ablation.py", "--dataset", "llp,unav100", "--seeds", "0",
           "--variants", "baseline,full", "--out", str(out), *tiny, "train.max_steps=12", "train.eval_every=6",
           "method.ramp_start=2", "method.ramp_steps=2", "data.batch_size=4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for ds, key in (("llp", "seg_type"), ("unav100", "map_mean")):
        result = json.loads((out / ds / f"{ds}.json").read_text())
        assert set(result["summary"]) == {"baseline", "full"}
        full = result["summary"]["full"]
        assert set(full["models"]) == {"teacher", "student"} and key in full["paired"]
        for run in result["runs"].values():
            for metrics in run.values():
                assert all(0 <= v <= 100 for v in metrics.values())
        assert (out / ds / f"{ds}.png").stat().st_size > 1000
        assert "paired difference to the baseline" in (out / ds / f"{ds}.md").read_text()


def test_every_variant_sets_every_switch():
    """A variant is what its row says whatever the config file and the defaults hold."""
    from avvp_dist.config import load_config

    ab = _module()
    want = {  # pseudo (mode; "config": the config file's), refine, cma (cross_video), teacher
        "baseline": (None, False, None, False), "pseudo_adaptive": ("adaptive", False, None, True),
        "pseudo_topk": ("topk", False, None, True), "pseudo_refine": ("config", True, None, True),
        "cma_agree": (None, False, False, True), "cma_cross": (None, False, True, True),
        "full_no_refine": ("config", False, True, True), "full": ("config", True, True, True),
    }
    file_mode = {"llp": "adaptive", "unav100": "adaptive"}  # ablation_*.yaml
    assert set(ab.VARIANTS) == set(want)
    for ds, spec in ab.DATASETS.items():
        for name in spec["variants"]:
            for flipped in (False, True):  # defaults with every switch the other way
                base = [f"method.pseudo.enabled={str(not flipped).lower()}",
                        f"method.refine.enabled={str(flipped).lower()}", f"method.cma.enabled={str(flipped).lower()}",
                        f"method.cma.cross_video={str(not flipped).lower()}"]
                cfg = load_config(REPO / spec["config"], base + ab.VARIANTS[name][1] + spec.get("fixed", [])).method
                pseudo, refine, cma, teacher = want[name]
                pseudo = file_mode[ds] if pseudo == "config" else pseudo
                refine = refine and ds == "llp"  # UnAV-100's audio-visual labels: off for every variant
                assert cfg.pseudo.enabled == (pseudo is not None), (ds, name)
                if pseudo is not None:
                    assert cfg.pseudo.mode == pseudo, (ds, name)
                assert cfg.refine.enabled == refine and cfg.cma.enabled == (cma is not None), (ds, name)
                if cma is not None:
                    assert cfg.cma.cross_video == cma, (ds, name)
                assert cfg.teacher.enabled == teacher, (ds, name)
