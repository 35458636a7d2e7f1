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

    results = {("han", 0): run(40, 30, False), ("han", 1): run(42, 31, False), ("han", 2): run(44, 32, False),
               ("paper_adaptive", 0): run(43, 30), ("paper_adaptive", 1): run(45, 33),
               ("paper_adaptive", 2): run(47, 32),
               ("ours", 0): run(44, 31), ("ours", 1): run(45, 33), ("ours", 2): run(49, 32)}
    variants = ["han", "paper_adaptive", "ours"]
    s = ab.summarise("llp", results, variants, [0, 1, 2])
    # han's student seg_type: 39, 41, 43 -> mean 41, sample std 2
    assert s["han"]["models"]["student"]["seg_type"] == pytest.approx((41.0, 2.0))
    assert "teacher" not in s["han"]["models"] and not s["han"]["paired"]
    # paired, teacher: paper's teacher minus han's student: seg 43-39, 45-41, 47-43 = 4, 4, 4
    p = s["paper_adaptive"]["paired"]["teacher"]["seg_type"]
    assert p["diffs"] == [4.0, 4.0, 4.0] and p["mean"] == 4.0 and p["std"] == 0.0 and p["beyond_2std"]
    # student: 42-39, 44-41, 46-43 = 3, 3, 3
    assert s["paper_adaptive"]["paired"]["student"]["seg_type"]["diffs"] == [3.0, 3.0, 3.0]
    # evt (the student's evt equals the teacher's here): 30-30, 33-31, 32-32 = 0, 2, 0 -> mean 2/3, std sqrt(4/3)
    q = s["paper_adaptive"]["paired"]["teacher"]["evt_type"]
    assert q["diffs"] == [0.0, 2.0, 0.0] and q["mean"] == pytest.approx(2 / 3)
    assert q["std"] == pytest.approx((4 / 3) ** 0.5) and not q["beyond_2std"]
    # the hypotheses on selected models (teachers here, han's student)
    h = {t["hypothesis"]: t["metrics"] for t in ab.hypotheses("llp", results, variants, [0, 1, 2])}
    assert h["paper beats han"]["seg_type"]["diffs"] == [4.0, 4.0, 4.0]
    ours = h["ours beats paper"]["seg_type"]  # 44-43, 45-45, 49-47 = 1, 0, 2: mean 1, std 1, not beyond
    assert ours["diffs"] == [1.0, 0.0, 2.0] and ours["mean"] == 1.0 and ours["std"] == 1.0 and not ours["beyond_2std"]
    text = ab.markdown("llp", s, ab.hypotheses("llp", results, variants, [0, 1, 2]), [0, 1, 2], 1.0, "cmd")
    assert "| paper beats han (paper_adaptive - han) | +4.00 ± 0.00 (+4.00, +4.00, +4.00)" in text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_study_runs_end_to_end(tmp_path):
    out = tmp_path / "ablation"
    tiny = ["--data-override", "synth.num_train=48", "--data-override", "synth.num_val=12",
            "--data-override", "synth.num_test=12"]
    cmd = [sys.executable, "benchmarks/ablation.py", "--dataset", "llp,unav100", "--seeds", "0",
           "--variants", "han,han_ema,ours,external", "--out", str(out), *tiny, "train.max_steps=12", "train.eval_every=6",
           "method.ramp_start=2", "method.ramp_steps=2", "data.batch_size=4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for ds, key in (("llp", "seg_type"), ("unav100", "map_mean")):
        result = json.loads((out / ds / f"{ds}.json").read_text())
        assert set(result["summary"]) == {"han", "han_ema", "ours", "external"}
        ours = result["summary"]["ours"]
        assert set(ours["models"]) == {"teacher", "student"} and key in ours["paired"]["teacher"]
        assert set(result["summary"]["external"]["models"]) == {"student"}
        # the EMA teacher kept and evaluated with no term reading it
        assert set(result["summary"]["han_ema"]["models"]) == {"teacher", "student"}
        for run in result["runs"].values():
            for metrics in run.values():
                assert all(0 <= v <= 100 for v in metrics.values())
        assert (out / ds / f"{ds}.png").stat().st_size > 1000
        assert "paired difference to han's student" in (out / ds / f"{ds}.md").read_text()
        for name in ("han", "han_ema", "ours", "external"):  # every run recorded the preset it named
            record = json.loads((out / ds / "runs" / f"{name}_seed0" / "run.json").read_text())
            assert record["preset"] == ("ours" if name == "ours" else "han")
        keep = json.loads((out / ds / "runs" / "han_ema_seed0" / "run.json").read_text())["preset_overrides"]
        assert keep["method.teacher.enabled"] is True and keep["method.teacher.keep"] is True


def test_every_variant_shares_the_backbone_and_sets_every_switch():
    """A variant is what its row says whatever the defaults hold; every variant has the same
    backbone and, but for han_adam, the same optimizer."""
    from avvp_dist.config import load_config

    ab = _module()
    want = {  # pseudo (source, mode), refine, cma, teacher built
        "han": (None, False, False, False), "han_ema": (None, False, False, True),
        "paper_adaptive": (("teacher", "adaptive"), False, True, True),
        "paper_topk": (("teacher", "topk"), False, True, True),
        "ours": (("teacher", "adaptive"), "llp", True, True),
        "external": (("external", "adaptive"), False, False, False),
        "external_ema": (("both", "adaptive"), False, False, True), "han_adam": (None, False, False, False),
    }
    assert set(ab.VARIANTS) == set(want)
    for ds, spec in ab.DATASETS.items():
        backbones, optimizers = set(), set()
        for name in spec["variants"]:
            cfg = load_config(REPO / spec["config"], ab.VARIANTS[name][1])
            m = cfg.method
            pseudo, refine, cma, teacher = want[name]
            if name == "ours" and ds == "unav100":  # ours on UnAV-100: CMA, no pseudo masks
                pseudo = None
            assert m.pseudo.enabled == (pseudo is not None), (ds, name)
            if pseudo is not None:
                assert (m.pseudo.source, m.pseudo.mode) == pseudo, (ds, name)
            assert m.refine.enabled == (refine == ds), (ds, name)
            assert m.cma.enabled == cma and m.needs_teacher == teacher, (ds, name)
            backbones.add(str(cfg.model))
            if name != "han_adam":
                t = cfg.train
                optimizers.add((t.optimizer, t.adam_beta1, t.schedule, t.lr, t.weight_decay, t.grad_clip))
            else:
                assert (cfg.train.optimizer, cfg.train.schedule) == ("adam", "step")
        assert len(backbones) == 1 and "share_layers=True" in backbones.pop(), ds
        assert len(optimizers) == 1, (ds, optimizers)
