"""`avvp-dist extract` end to end on test videos the tests wrote: `.npy` files in the release's
layout, resume by digest, the error policy, `--shards` equal to extract + `shard` (1 and 2
ranks), training on the extracted shards, and `parse VIDEO --checkpoint`."""
import io
import json
import subprocess
import tarfile
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is in the extract and test extras")

import extract_stand_ins  # noqa: E402
from dist_helpers import free_port  # noqa: E402
from media_helpers import COMMON, make_video  # noqa: E402
from train_helpers import run, train_cmd  # noqa: E402

from avvp_dist.cli import main  # noqa: E402
from avvp_dist.data.shards import Manifest  # noqa: E402

HOOK = str(Path(__file__).with_name("extract_stand_ins.py"))
LLP = ["data.dataset=llp", "data.feature_set=han"]


@pytest.fixture(autouse=True)
def stand_ins():
    extract_stand_ins.install()


def llp_videos(folder: Path, raw: Path | None = None, n: int = 4) -> list[str]:
    """Test videos named by LLP's 11-character ids: those of `raw`'s annotations, else made up."""
    folder.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        ids = sorted({line.split("\t")[0][:11] for f in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv")
                      for line in (raw / f).read_text().splitlines()[1:]})
    else:
        ids = [f"vid{i:08d}" for i in range(n)]
    for i, vid in enumerate(ids):
        make_video(folder / vid, seconds=10 if i % 2 else 9.5, fps=8 + 4 * (i % 3), size=(36, 48),
                   kind=COMMON if i % 2 else ("mkv", "ffv1", "pcm_s16le"))
    return ids


def test_npy_files_in_the_release_layout_and_resume(tmp_path, capsys):
    ids = llp_videos(tmp_path / "videos")
    out = tmp_path / "features"
    assert main(["extract", "--videos", str(tmp_path / "videos"), "--out", str(out), *LLP]) == 0
    for vid in ids:
        shapes = {n: np.load(out / n / f"{vid}.npy").shape for n in ("vggish", "res152", "r2plus1d_18")}
        assert shapes == {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}
    assert "videos_written: 4" in capsys.readouterr().out
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert main(["extract", "--videos", str(tmp_path / "videos"), "--out", str(out), *LLP]) == 0
    text = capsys.readouterr().out
    assert "videos_done_before: 4" in text and "videos_written" not in text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")} == stamp
    np.save(out / "res152" / f"{ids[1]}.npy", np.zeros((80, 2048), np.float32))  # not what the ledger says
    assert main(["extract", "--videos", str(tmp_path / "videos"), "--out", str(out), *LLP]) == 0
    text = capsys.readouterr().out
    assert "videos_done_before: 3" in text and "videos_written: 1" in text
    assert np.load(out / "res152" / f"{ids[1]}.npy").any()


def test_unav100_vggish_and_rgb_files(tmp_path):
    (tmp_path / "videos").mkdir()
    for name, seconds in (("__2MwJ2uHu0", 5.0), ("a1b2c3d4e5f", 7.0)):
        make_video(tmp_path / "videos" / name, seconds=seconds, fps=25, size=(36, 48))
    out = tmp_path / "features"
    assert main(["extract", "--videos", str(tmp_path / "videos"), "--out", str(out), "--features", "vggish,rgb",
                 "data.dataset=unav100"]) == 0
    assert np.load(out / "__2MwJ2uHu0_vggish.npy").shape == (13, 128)  # 1 + (498 - 96) // 32
    assert np.load(out / "__2MwJ2uHu0_rgb.npy").shape == (13, 1024)  # 1 + (125 - 25) // 8
    assert np.load(out / "a1b2c3d4e5f_rgb.npy").shape == (19, 1024)
    assert main(["extract", "--videos", str(tmp_path / "videos"), "--out", str(out), "data.dataset=unav100"]) == 2


def test_broken_and_short_videos_counted_and_named(tmp_path, capsys):
    llp_videos(tmp_path / "videos", n=2)
    (tmp_path / "videos" / "broken00000.mp4").write_bytes(b"\x00" * 4096)
    make_video(tmp_path / "videos" / "short000000", seconds=0.5)
    args = ["extract", "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "f"), *LLP]
    assert main(args) == 2
    assert "broken00000.mp4: cannot open as a media file" in capsys.readouterr().err
    assert main([*args, "data.on_error=skip"]) == 0
    text = capsys.readouterr().out
    assert "skipped/bad_video: 1" in text and "skipped/too_short: 1" in text and "videos_written: 2" in text
    assert "skipped broken00000:" in text and "skipped short000000: " in text
    named = json.loads((tmp_path / "f" / ".extract" / "skipped.json").read_text())
    assert sorted(f["video"] for f in named) == ["broken00000", "short000000"]


def synth_raw(folder: Path) -> Path:
    """LLP annotation files for 8 videos (4 train, 2 val, 2 test) from the synthetic generator."""
    assert main(["synth", "--out", str(folder), "synth.dataset=llp", "synth.num_train=4", "synth.num_val=2",
                 "synth.num_test=2"]) == 0
    return folder


def members(folder: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(folder.glob("*.tar")):
        with tarfile.open(path) as tar:
            out.update({m.name: tar.extractfile(m).read() for m in tar.getmembers()})
    return out


def same_samples(a: Path, b: Path, exact: bool) -> None:
    """The same manifests but for shard names; `exact`: the same bytes (one process at one
    thread count), else the same members with arrays equal to BLAS rounding at another
    thread count (an fp16 unit in the last place)."""
    for split in ("train", "val", "test"):
        ma, mb = Manifest.load(a / split), Manifest.load(b / split)
        assert (ma.features, ma.labels, ma.classes, ma.dtype, ma.num_samples) == \
            (mb.features, mb.labels, mb.classes, mb.dtype, mb.num_samples)
        for name in ma.stats:
            assert ma.stats[name]["rows"] == mb.stats[name]["rows"]
            for key in ("mean", "std"):
                np.testing.assert_allclose(ma.stats[name][key], mb.stats[name][key], rtol=1e-4 if not exact else 1e-9,
                                           atol=1e-6 if not exact else 1e-12)
        if exact:
            assert [s.sha256 for s in ma.shards] == [s.sha256 for s in mb.shards]
            continue
        xa, xb = members(a / split), members(b / split)
        assert sorted(xa) == sorted(xb)
        for key in xa:
            if key.endswith(".npy"):
                np.testing.assert_allclose(np.load(io.BytesIO(xa[key])), np.load(io.BytesIO(xb[key])), rtol=2e-3, atol=1e-3)
            else:
                assert xa[key] == xb[key], key


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Annotations, test videos, and the `.npy` route: extract, then `shard`."""
    extract_stand_ins.install()
    root = tmp_path_factory.mktemp("extract")
    raw = synth_raw(root / "raw")
    llp_videos(root / "videos", raw)
    common = [f"data.root={raw}", *LLP, "data.samples_per_shard=3"]
    assert main(["extract", "--videos", str(root / "videos"), "--out", str(root / "features"), *common]) == 0
    assert main(["shard", f"data.features_dir={root / 'features'}", f"data.shards={root / 'shards_npy'}", *common]) == 0
    return root, common


def test_shards_straight_equal_extract_then_shard(extracted, capsys):
    root, common = extracted
    args = ["extract", "--videos", str(root / "videos"), "--shards", f"data.shards={root / 'shards'}", *common]
    assert main(args) == 0
    same_samples(root / "shards", root / "shards_npy", exact=True)
    # a lost shard: its videos are extracted again, every video once in the manifest
    lost = Manifest.load(root / "shards" / "train").shards[0]
    (root / "shards" / "train" / lost.name).unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert "videos_done_before: 5" in capsys.readouterr().out  # 8 videos, 3 in the lost shard
    same_samples(root / "shards", root / "shards_npy", exact=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ranks_shards_train_and_parse(extracted, tmp_path):
    """Two CPU ranks under torchrun write the same samples as extract + shard; the shards train;
    `parse VIDEO --checkpoint` extracts and parses one test video."""
    root, common = extracted
    shards = tmp_path / "shards"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", HOOK, "extract", "--videos", str(root / "videos"), "--shards",
           f"data.shards={shards}", *common]
    r = run(cmd, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (shards / "train").glob("*.tar"))[0].startswith("train-r000-")
    assert {p.name[:10] for p in (shards / "train").glob("*.tar")} == {"train-r000", "train-r001"}
    same_samples(shards, root / "shards_npy", exact=False)
    again = run(cmd[:5] + [f"--master_port={free_port()}"] + cmd[6:], timeout=240)
    assert again.returncode == 0 and "videos_done_before: 8" in again.stdout, again.stderr[-3000:]
    t = run(train_cmd(None, tmp_path / "run", shards, "train.max_steps=3"), timeout=240)
    assert t.returncode == 0, t.stderr[-3000:]
    ckpt = tmp_path / "run" / "best_teacher.pt"
    video = sorted((root / "videos").iterdir())[0]
    p = subprocess.run([sys.executable, HOOK, "parse", str(video), "--checkpoint", str(ckpt)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["video"] == video.stem and isinstance(out["events"], list)
    assert all({"class", "modality", "start", "end"} <= set(e) for e in out["events"])
