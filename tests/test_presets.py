"""Presets (han, paper, ours, valor): what each sets, that explicit values win and are recorded,
HAN's step schedule in steps, and a 1-rank smoke run of each preset (the CI smoke test)."""
import json
import math
from types import SimpleNamespace

import pytest

from avvp_dist.config import ConfigError, load_config
from avvp_dist.config.presets import PRESETS
from avvp_dist.engine.schedule import lr_lambda, step_decay
from train_helpers import run, train_cmd

REPO_CONFIGS = ["recipes/configs/llp_synth.yaml", "recipes/configs/unav100_synth.yaml"]


def _cfg(*overrides, dataset="llp"):
    return load_config(None, [f"data.dataset={dataset}", *overrides])


@pytest.mark.parametrize("dataset", ["llp", "unav100"])
def test_what_each_preset_sets(dataset):
    han, paper, ours, coleaf = (_cfg(f"preset={p}", dataset=dataset) for p in ("han", "paper", "ours", "coleaf"))
    for c in (han, paper, ours, coleaf):  # HAN's sizes in all four: one shared layer, d 512, one head
        assert c.model.share_layers and (c.model.d_model, c.model.num_layers, c.model.num_heads, c.model.ffn_dim) == (
            512, 1, 1, 512)
    assert (han.model.backbone, ours.model.backbone, coleaf.model.backbone, paper.model.backbone) == (
        "han", "han", "coleaf", "coleaf")
    # han: the weak baseline, HAN's optimizer, no teacher, no CMA head
    assert not han.method.needs_teacher and han.model.embed_dim == 0
    assert not (han.method.pseudo.enabled or han.method.cma.enabled or han.method.refine.enabled)
    assert (han.train.optimizer, han.train.schedule, han.train.lr, han.train.weight_decay, han.train.grad_clip) == (
        "adam", "step", 3e-4, 0.0, 0.0)
    assert (han.method.weak.audio_smoothing, han.method.weak.visual_smoothing) == (1.0, 0.9)
    # coleaf: its backbone, its weak-loss weights and optimizer, nothing else
    m = coleaf.method
    assert not (m.needs_teacher or m.pseudo.enabled or m.cma.enabled or m.refine.enabled)
    assert (m.weak.video_weight, m.weak.audio_weight, m.weak.visual_weight) == (2.0, 2.0, 1.0)
    assert (coleaf.train.optimizer, coleaf.train.lr, coleaf.train.lr_step_epochs, coleaf.train.lr_step_gamma,
            coleaf.train.weight_decay) == ("adam", 5e-4, 6.0, 0.25, 0.0)
    # paper: the two parts as its text has them, nothing else, on both datasets (pseudo masks on UnAV-100 too)
    m = paper.method
    assert m.needs_teacher and m.pseudo.enabled and m.pseudo.source == "teacher" and m.cma.enabled
    assert not m.refine.enabled and paper.train == coleaf.train and paper.method.weak == coleaf.method.weak
    assert (m.pseudo.fuse, m.pseudo.absent_negatives, m.pseudo.tau_low, m.pseudo.tau_min) == ("mean", False, 0.0, 0.0)
    assert (m.cma.agreement, m.cma.cross_video, m.cma.weight, m.pseudo.weight) == (True, False, 1.0, 1.0)
    assert not m.teacher.warmup and (m.ramp_start, m.ramp_steps) == (0, 0)
    assert paper.data.feature_set == ("valor" if dataset == "llp" else "")  # CLAP and CLIP on LLP
    # ours: refinement on LLP; on UnAV-100 the CMA term without pseudo masks
    m = ours.method
    assert m.cma.enabled and ours.train.optimizer == "adamw"
    assert (m.pseudo.enabled, m.refine.enabled) == ((True, True) if dataset == "llp" else (False, False))
    for c, name in ((han, "han"), (paper, "paper"), (ours, "ours"), (coleaf, "coleaf")):
        assert c.preset == name and c.preset_overrides == {}


def test_explicit_values_win_and_are_recorded():
    cfg = _cfg("preset=paper", "model.d_model=64", "method.pseudo.mode=topk", "train.lr=1e-3")
    assert (cfg.model.d_model, cfg.method.pseudo.mode, cfg.train.lr) == (64, "topk", 1e-3)
    assert cfg.model.share_layers  # the rest of the preset stays
    assert cfg.preset_overrides == {"model.d_model": 64, "method.pseudo.mode": "topk", "train.lr": 1e-3}
    # a value equal to the preset's is no change
    assert _cfg("preset=han", "model.share_layers=true").preset_overrides == {}
    # no preset: the defaults as they are, the same as before presets existed
    plain = _cfg()
    assert plain.preset == "none" and plain.preset_overrides == {} and not plain.model.share_layers
    assert _cfg("model.share_layers=true").preset_overrides == {"model.share_layers": True}


def test_repository_configs_name_a_preset():
    for path in REPO_CONFIGS:
        assert load_config(path).preset == "ours", path


def test_bad_preset_and_protocol_names_are_refused():
    with pytest.raises(ConfigError, match=r"preset: 'hann' must be one of \['none', 'han', 'coleaf', 'paper', 'ours', "
                                          r"'valor'\]"):
        _cfg("preset=hann")
    with pytest.raises(ConfigError, match="a metric protocol; what trains is named by `preset`"):
        _cfg("train.protocol=paper")
    assert not set(PRESETS) & {"modality", "low_threshold"}  # the protocols' other names


def test_step_schedule_in_optimizer_steps():
    # hand-computed: 5 steps an epoch, every 2 epochs = every 10 steps, gamma 0.1
    train = SimpleNamespace(schedule="step", lr_step_epochs=2.0, lr_step_gamma=0.1, warmup_steps=0)
    f, every = lr_lambda(train, steps_per_epoch=5)
    assert every == 10
    assert [f(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    assert step_decay(29, 10, 0.5) == 0.25
    warm = SimpleNamespace(**(vars(train) | {"warmup_steps": 4}))
    g, _ = lr_lambda(warm, 5)
    assert [g(s) for s in (0, 3, 4, 10)] == pytest.approx([0.25, 1.0, 1.0, 0.1])
    cos = SimpleNamespace(schedule="warmup_cosine", warmup_steps=0, max_steps=10, min_lr_ratio=0.0)
    h, none = lr_lambda(cos, 5)
    assert none is None and h(5) == pytest.approx(0.5) and h(0) == 1.0


@pytest.fixture(scope="module")
def valor_shards(tmp_path_factory):
    """Tiny LLP data in VALOR's layout (CLAP, CLIP, R(2+1)D) with external segment labels."""
    from conftest import synth_and_shard

    return synth_and_shard(tmp_path_factory.mktemp("valor"), dims={"clap": 16, "clip": 24, "r2plus1d_18": 8},
                           extra=("synth.feature_set=valor", "data.feature_set=valor", "synth.external_labels=true",
                                  "data.external_labels=true"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("preset, teacher", [("han", False), ("coleaf", False), ("paper", True), ("ours", True),
                                             ("valor", False)])
def test_one_rank_smoke_run_of_each_preset(tmp_path, valor_shards, preset, teacher):
    run_dir = tmp_path / preset
    # 48 training videos at batch 4: 12 steps an epoch; HAN's decay every lr_step_epochs epochs;
    # the tiny test settings turn CMA on and ramp in from step 2: back to the preset's own values
    proc = run(train_cmd(None, run_dir, valor_shards, f"preset={preset}", "data.feature_set=valor",
                         "train.max_steps=14", "train.eval_every=7", "train.lr_step_epochs=1", "train.plots=0",
                         "data.num_workers=0", f"method.cma.enabled={str(preset in ('paper', 'ours')).lower()}",
                         *(["method.ramp_start=0", "method.ramp_steps=0"] if preset in ("valor", "paper") else [])))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["preset"] == preset
    assert record["preset_overrides"]["train.max_steps"] == 14 and record["preset_overrides"]["model.d_model"] == 16
    assert f"preset {preset}; changed by the command line: " in proc.stdout and "train.max_steps=14" in proc.stdout
    assert record["preset_changed_by"]["train.max_steps"] == "command line"
    assert f"model {record['model']['parameters']:,} parameters" in proc.stdout
    assert record["model"]["share_layers"] is True
    assert record["model"]["backbone"] == ("coleaf" if preset in ("coleaf", "paper") else "han")
    # the run's config.yaml loads back to the same run: the preset and the same changes
    again = load_config(run_dir / "config.yaml")
    assert again.preset == preset and again.preset_overrides == record["preset_overrides"]
    metrics = json.loads((run_dir / "eval_test" / "metrics.json").read_text())
    assert metrics["preset"] == preset and metrics["preset_overrides"] == record["preset_overrides"]
    assert ("teacher" in metrics["models"]) == teacher and (run_dir / "best_teacher.pt").exists() == teacher
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logs if r["kind"] == "train"]
    # HAN's StepLR: lr 3e-4 for the first epoch (12 steps), then 3e-5; CoLeaF's: 5e-4, then x0.25
    lrs = {"han": (3e-4, 3e-5), "coleaf": (5e-4, 1.25e-4), "paper": (5e-4, 1.25e-4)}
    if preset in lrs:
        assert record["model"]["lr_step_every"] == 12
        # a record at step s logs the lr of the next step (0-based index s)
        assert {round(r["lr"], 9) for r in train if r["step"] < 12} == {lrs[preset][0]}
        assert {round(r["lr"], 9) for r in train if r["step"] >= 12} == {lrs[preset][1]}
    if preset == "paper":  # the EMA as the paper gives it, its horizon said at start
        assert "EMA teacher: decay 0.999 (horizon about 1,000 steps), no warm-up" in proc.stdout
    if preset == "ours":
        assert "EMA teacher: decay 0.99 (horizon about 100 steps), with the warm-up" in proc.stdout
    if preset == "paper":  # from step 0 (no ramp): the selected positions only, and pairs
        assert all(math.isfinite(r["pseudo"]) and "cma_nce" not in r for r in train)
        assert any(r["pseudo_positions"] > 0 for r in train) and any(r["cma_pairs"] > 0 for r in train)
    if preset == "valor":  # the external labels train from step 0: no ramp, no teacher
        assert all(r["pseudo_positions"] > 0 and math.isfinite(r["pseudo"]) for r in train)
    if preset == "han":
        assert all("pseudo" not in r and "cma" not in r for r in train)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("preset", ["coleaf", "paper"])
def test_coleaf_and_paper_train_on_unav100(tmp_path, preset):
    """UnAV-100's own features (VGGish, I3D rgb and flow), variable lengths: padded segments masked."""
    from conftest import synth_and_shard

    shards = synth_and_shard(tmp_path / "data", dataset="unav100", train=24, val=6, test=6)
    proc = run(train_cmd(None, tmp_path / preset, shards, f"preset={preset}", "data.dataset=unav100",
                         "train.max_steps=8", "train.eval_every=4", "train.plots=0", "data.num_workers=0",
                         f"method.cma.enabled={str(preset == 'paper').lower()}", "model.embed_dim=8"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((tmp_path / preset / "eval_test" / "metrics.json").read_text())
    assert metrics["preset"] == preset and math.isfinite(metrics["models"]["student"]["metrics"]["map_mean"])
    assert ("teacher" in metrics["models"]) == (preset == "paper")
    assert "CoLeaF's backbone" in proc.stdout
    if preset == "paper":  # UnAV-100's training videos carry dense truth: the masks are scored on the stream too
        records = [json.loads(line) for line in (tmp_path / preset / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in records if r["kind"] == "train" and "mask_audio_pos" in r]
        assert train and all(0 <= r["stream_teacher_audio_recall"] <= 1 for r in train)
        assert [r["step"] for r in records if r["kind"] == "val/masks"] == [4, 8]
        assert metrics["mask_quality"]["teacher"]["pairs"] >= 0 and "masks against the truth" in proc.stdout
