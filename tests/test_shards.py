"""Shard writing: deterministic bytes, manifest, read-back equality; bad shards: errors or counted skips."""
import io
import json
import tarfile

import numpy as np
import pytest

from avvp_dist.data.config import DataConfig
from avvp_dist.data.shards import FORMAT, Manifest, ShardError, npy_bytes, write_shards
from avvp_dist.data.stream import ShardStream
from conftest import CLASSES, FEATURES, pickled_npy, toy_samples


def _write(folder, n=10, per_shard=4, dtype="float16"):
    return write_shards(toy_samples(n), folder, dataset="toy", split="train", classes=CLASSES,
                        features=FEATURES, dtype=dtype, samples_per_shard=per_shard)


def test_same_input_gives_byte_identical_shards(tmp_path):
    a, b = _write(tmp_path / "a"), _write(tmp_path / "b")
    assert [s.count for s in a.shards] == [4, 4, 2]
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    for s in a.shards:
        assert (tmp_path / "a" / s.name).read_bytes() == (tmp_path / "b" / s.name).read_bytes()
    with tarfile.open(tmp_path / "a" / a.shards[0].name) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:3]] == ["s0000.json", "s0000.a.npy", "s0000.v.npy"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}


def test_manifest_records_what_was_written(tmp_path):
    _write(tmp_path, dtype="float32")
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert (doc["dataset"], doc["split"], doc["dtype"], doc["classes"], doc["num_samples"]) == (
        "toy", "train", "float32", CLASSES, 10)
    assert doc["features"] == FEATURES and len(doc["shards"]) == 3


def test_read_back_equals_written(tmp_path):
    _write(tmp_path, dtype="float16")
    cfg = DataConfig(batch_size=10, num_workers=0)
    (batch,) = list(ShardStream(tmp_path, cfg, train=False))
    written = {k: (f, m) for k, f, m in toy_samples(10)}
    for i, key in enumerate(batch.keys):
        feats, meta = written[key]
        t = feats["a"].shape[0]
        np.testing.assert_array_equal(batch.features["a"][i, :t].numpy(), feats["a"].astype(np.float16))
        np.testing.assert_array_equal(batch.features["v"][i, :t].numpy(), feats["v"].astype(np.float16))
        assert batch.meta[i] == meta and batch.mask[i].sum() == t


def test_duplicate_and_empty_names(tmp_path):
    with pytest.raises(ShardError, match="duplicate video 's0000'"):
        write_shards(list(toy_samples(2)) * 2, tmp_path, dataset="toy", split="train", classes=CLASSES,
                     features=FEATURES)
    bad = [("", *next(toy_samples(1))[1:])]
    with pytest.raises(ShardError, match="names must be non-empty"):
        write_shards(bad, tmp_path / "x", dataset="toy", split="train", classes=CLASSES, features=FEATURES)


def test_odd_names_round_trip(tmp_path):
    """Real UnAV-100 ids start with '__' (e.g. __uEjp7_UDw), LLP ids with '-', five LLP names
    contain '.'; a name that reads like WebDataset's own `__key__` field is a name too. Each
    streams back under its own name, in the batch keys and in the meta."""
    names = ["__uEjp7_UDw", "_x9ZPGN2-Pc", "-0jeONf82dE_21_31", "AKVyIQoSyBA_131.8_141.8", "__key__", "a%2Eb"]
    samples = [(n, f, {**m, "vid": n}) for n, (_, f, m) in zip(names, toy_samples(len(names)))]
    write_shards(samples, tmp_path, dataset="toy", split="train", classes=CLASSES, features=FEATURES)
    (batch,) = list(ShardStream(tmp_path, DataConfig(batch_size=len(names), num_workers=0), train=False))
    assert batch.keys == names and [m["vid"] for m in batch.meta] == names


# ---- bad shards -------------------------------------------------------------------

def _member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _bad_shard(folder, edit):
    """3 good samples and one edited one (s0001), with a manifest that matches the file."""
    folder.mkdir(parents=True)
    import hashlib

    from avvp_dist.data.shards import ShardInfo, add_member

    path = folder / "train-00000.tar"
    digests = []
    with tarfile.open(path, "w") as tar:
        for key, feats, meta in toy_samples(3):
            members = {"json": json.dumps(meta).encode(), "a.npy": npy_bytes(feats["a"]), "v.npy": npy_bytes(feats["v"])}
            if key == "s0001":
                edit(members)
            digest = hashlib.sha256()
            for suffix, data in members.items():
                _member(tar, f"{key}.{suffix}", data)
                add_member(digest, f"{key}.{suffix}", data)
            digests.append(digest.hexdigest())
    info = ShardInfo(path.name, 3, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size, digests)
    Manifest("toy", "train", CLASSES, "float32", FEATURES, [info]).save(folder)
    return folder


def _set(key, value):
    def edit(m):
        m[key] = value
    return edit


def _drop(key):
    return lambda m: m.pop(key)


BAD = {  # case: (edit of sample s0001, the error it gets, the reason counted under on_error=skip)
    "missing_key": (_drop("v.npy"), "missing feature key 'v.npy'", "missing_key"),
    "bad_shape": (_set("a.npy", npy_bytes(np.zeros((3, 4), np.float32))),
                  r"'a.npy' has shape \(3, 4\), manifest says \('T', 3\)", "bad_shape"),
    "bad_dtype": (_set("a.npy", npy_bytes(np.zeros((3, 3), np.float64))), "dtype float64, manifest says float32",
                  "bad_dtype"),
    "not_finite": (_set("v.npy", npy_bytes(np.array([[np.inf, 0.0]] * 3, np.float32))), "'v.npy' contains NaN or Inf",
                   "not_finite"),
    "unknown_label": (_set("json", json.dumps({"labels": ["c9"]}).encode()), r"labels \['c9'\] not in the class list",
                      "unknown_label"),
    "refused_member": (_set("pyd", pickled_npy()), r"member '.pyd' refused", "refused_member"),
    "pickled_npy": (_set("a.npy", pickled_npy()), "'a.npy' is not a plain .npy array", "bad_npy"),
    "empty_npy": (_set("a.npy", b""), r"'a.npy' is not a plain .npy array \(EOFError", "bad_npy"),
    "json_not_object": (_set("json", b"[1, 2]"), "'json' holds a list, not an object", "bad_json"),
    "json_other_video": (_set("json", json.dumps({"labels": [], "vid": "s0002"}).encode()),
                         "its 'json' names another video, 's0002'", "bad_key"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_sample_raises_naming_shard_and_key(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    folder = _bad_shard(tmp_path / "shards", BAD[kind][0])
    stream = ShardStream(folder, DataConfig(batch_size=1, num_workers=0), train=False)
    with pytest.raises(ShardError, match=BAD[kind][1]) as e:
        list(stream)
    assert "train-00000.tar: sample 's0001'" in str(e.value)
    assert not (tmp_path / "UNPICKLED_MARKER").exists(), "a pickle member was unpickled"


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_sample_is_counted_under_skip_policy(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    folder = _bad_shard(tmp_path / "shards", BAD[kind][0])
    stream = ShardStream(folder, DataConfig(batch_size=1, num_workers=0, on_error="skip"), train=False)
    with pytest.raises(ShardError, match="every sample of a batch was bad"):
        list(stream)  # batch size 1: the bad sample's batch would be empty
    stream = ShardStream(folder, DataConfig(batch_size=3, num_workers=0, on_error="skip"), train=False)
    keys = [k for b in stream for k in b.keys]
    assert keys == ["s0000", "s0002"]
    assert stream.last_report["skipped"] == 1 and stream.last_report["skipped_by_reason"] == {BAD[kind][2]: 1}
    assert not (tmp_path / "UNPICKLED_MARKER").exists()


def test_truncated_shard(tmp_path):
    _write(tmp_path, n=8, per_shard=8, dtype="float32")
    shard = tmp_path / "train-00000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="train-00000.tar: .* bytes, manifest says"):
        ShardStream(tmp_path, DataConfig(num_workers=0))
    # with the manifest made to agree on size, the reader itself finds the truncation
    doc = json.loads((tmp_path / "manifest.json").read_text())
    doc["shards"][0]["bytes"] = shard.stat().st_size
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    cfg = DataConfig(batch_size=8, num_workers=0, verify_checksums=False)
    with pytest.raises(ShardError, match="train-00000.tar: (unreadable or truncated|ends after)"):
        list(ShardStream(tmp_path, cfg, train=False))
    stream = ShardStream(tmp_path, DataConfig(batch_size=8, num_workers=0, verify_checksums=False, on_error="skip"),
                         train=False)
    got = [k for b in stream for k in b.keys]
    assert 0 < len(got) < 8 and stream.last_report["skipped"] == 8 - len(got)
    assert stream.last_report["skipped_by_reason"] == {"unreadable_shard": 8 - len(got)}


def test_a_corrupted_sample_is_found_while_reading(tmp_path):
    """One flipped byte inside a feature array (size unchanged, a valid .npy still): the
    sample's sha256 differs; an error naming the shard and video, or a counted skip."""
    _write(tmp_path, n=8, per_shard=4, dtype="float32")
    shard = tmp_path / "train-00001.tar"
    data = bytearray(shard.read_bytes())
    at = data.find(npy_bytes(toy_samples(1, start=5).__next__()[1]["a"].astype(np.float32))[-12:])
    assert at > 0
    data[at] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="train-00001.tar: sample 's0005': sha256 of its members differs"):
        list(ShardStream(tmp_path, DataConfig(batch_size=8, num_workers=0), train=False))
    stream = ShardStream(tmp_path, DataConfig(batch_size=8, num_workers=0, on_error="skip"), train=False)
    assert [k for b in stream for k in b.keys] == [f"s{i:04d}" for i in range(8) if i != 5]
    assert stream.last_report["skipped_by_reason"] == {"checksum": 1}
    # the whole-file check finds it too (a full read; docs/data.md names it), sizes alone do not
    Manifest.load(tmp_path).verify(tmp_path)
    with pytest.raises(ShardError, match="train-00001.tar: sha256 differs from the manifest"):
        Manifest.load(tmp_path).verify(tmp_path, checksums=True)
    # without checksums the flipped value streams through: the check is what catches it
    stream = ShardStream(tmp_path, DataConfig(batch_size=8, num_workers=0, verify_checksums=False), train=False)
    assert len([k for b in stream for k in b.keys]) == 8


def test_manifest_disagreements(tmp_path):
    _write(tmp_path, n=8, per_shard=4, dtype="float32")
    doc = json.loads((tmp_path / "manifest.json").read_text())
    doc["shards"][1]["name"] = "../train-00001.tar"
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ShardError, match="shard name '../train-00001.tar' is not a plain file name"):
        Manifest.load(tmp_path)
    doc["shards"][1]["name"] = "train-00001.tar"
    doc["format"] = "avvp_dist-shards/1"
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ShardError, match="without per-sample checksums: run `avvp-dist shard` again"):
        Manifest.load(tmp_path)
    doc["format"] = FORMAT
    doc["shards"][0]["count"] = 5  # the manifest claims more samples than the shard holds
    doc["shards"][0]["digests"].append("0" * 64)
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    stream = ShardStream(tmp_path, DataConfig(batch_size=9, num_workers=0, verify_checksums=False), train=False)
    with pytest.raises(ShardError, match="train-00000.tar: ends after 4 samples; the manifest says 5"):
        list(stream)
    doc["shards"][0]["count"] = 3  # ... or fewer
    doc["shards"][0]["digests"] = doc["shards"][0]["digests"][:3]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ShardError, match="^[^(]*train-00000.tar: holds more than the 3 samples the manifest says"):
        list(ShardStream(tmp_path, DataConfig(batch_size=7, num_workers=0, verify_checksums=False), train=False))
    (tmp_path / "train-00001.tar").unlink()
    with pytest.raises(ShardError, match="train-00001.tar: listed in the manifest but missing"):
        ShardStream(tmp_path, DataConfig(num_workers=0))


def test_manifest_statistics_are_those_of_every_row_as_stored(tmp_path):
    samples = list(toy_samples(9))
    m = write_shards(iter(samples), tmp_path / "s", dataset="toy", split="train", classes=CLASSES,
                     features=FEATURES, dtype="float16", samples_per_shard=4)
    for f in FEATURES:
        rows = np.concatenate([feats[f["name"]].astype(np.float16).astype(np.float64) for _, feats, _ in samples])
        got = Manifest.load(tmp_path / "s").stats[f["name"]]
        assert got["rows"] == len(rows) == m.stats[f["name"]]["rows"]
        np.testing.assert_allclose(got["mean"], rows.mean(0), rtol=1e-12)
        np.testing.assert_allclose(got["std"], rows.std(0), rtol=1e-9)
