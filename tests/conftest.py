"""Shared fixtures: the real annotation files the repository carries, and tiny synthetic datasets."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from avvp_dist.data.shards import write_shards

REPO = Path(__file__).resolve().parents[1]

# Small feature sizes keep synthetic test data tiny; the layout stays the real one.
SMALL_DIMS = {"vggish": 8, "res152": 16, "r2plus1d_18": 8}
SMALL_DIMS_UNAV = {"vggish": 8, "rgb": 8, "flow": 8}


def pytest_sessionstart(session):
    import slurm_cluster

    slurm_cluster.start_in_background()  # only under CI or AVVP_TEST_SLURM=1


def pytest_sessionfinish(session, exitstatus):
    import slurm_cluster

    slurm_cluster.stop()


def repo_file(*parts: str) -> Path:
    """A file the repository carries (annotations/, tests/golden/); a missing one fails the test."""
    path = REPO.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the repository carries it (annotations/, tests/golden/); "
                    "is this a partial checkout?")
    return path


FEATURES = [{"name": "a", "modality": "audio", "dim": 3, "steps": 0},
            {"name": "v", "modality": "visual", "dim": 2, "steps": 0}]
CLASSES = ["c0", "c1", "c2"]


def toy_samples(n: int, start: int = 0, seed: int = 0):
    """n samples with variable lengths; sample i's arrays encode i so tests can check content."""
    rng = np.random.default_rng(seed + start)
    for i in range(start, start + n):
        t = int(rng.integers(2, 6))
        feats = {"a": np.full((t, 3), i, np.float32), "v": np.full((t, 2), -i, np.float32)}
        yield f"s{i:04d}", feats, {"labels": [CLASSES[i % 3]], "vid": f"s{i:04d}"}


def write_uneven(folder: Path, counts: list[int]) -> Path:
    """Shards with exactly `counts` samples each (keys s0000...), one manifest."""
    from avvp_dist.data.shards import Manifest

    manifests, start = [], 0
    for j, c in enumerate(counts):
        m = write_shards(toy_samples(c, start), folder / f"part{j}", dataset="toy", split="train",
                         classes=CLASSES, features=FEATURES, dtype="float32", samples_per_shard=c)
        (folder / f"part{j}" / m.shards[0].name).rename(folder / f"train-{j:05d}.tar")
        m.shards[0].name = f"train-{j:05d}.tar"
        manifests.append(m)
        start += c
    merged = Manifest("toy", "train", CLASSES, "float32", FEATURES, [m.shards[0] for m in manifests])
    merged.save(folder)
    return folder


@pytest.fixture
def uneven_shards(tmp_path) -> Path:
    return write_uneven(tmp_path / "shards", [10, 5, 7, 3, 9])


class _Boom:
    """Unpickling this creates the folder UNPICKLED_MARKER in the working directory."""

    def __reduce__(self):
        return (os.mkdir, ("UNPICKLED_MARKER",))


def pickled_npy() -> bytes:
    """A `.npy` file holding a pickled object array (written by hand, header + pickle)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    pickle.dump(np.array([_Boom()], dtype=object), buf, protocol=3)
    return buf.getvalue()


def synth_and_shard(folder: Path, dataset: str = "llp", dims: dict | None = None, train: int = 48, val: int = 10,
                    test: int = 10, per_shard: int = 7, extra: tuple[str, ...] = ()) -> Path:
    """A tiny synthetic dataset in the real format under folder/raw, sharded into folder/shards;
    `extra`: more synth / data overrides (a feature set, external labels)."""
    import json

    from avvp_dist.cli import main

    dims = dims if dims is not None else (SMALL_DIMS if dataset == "llp" else SMALL_DIMS_UNAV)
    common = [f"synth.dataset={dataset}", f"data.dataset={dataset}", f"synth.num_train={train}",
              f"synth.num_val={val}", f"synth.num_test={test}", "synth.feature_dims=" + json.dumps(dims),
              f"data.samples_per_shard={per_shard}", *extra]
    assert main(["synth", "--out", str(folder / "raw"), *common]) == 0
    assert main(["shard", f"data.root={folder / 'raw'}", f"data.shards={folder / 'shards'}", *common]) == 0
    return folder / "shards"
