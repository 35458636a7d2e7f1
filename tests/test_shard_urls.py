"""Shard roots as URLs (http, pipe:), local folders with ':' in their names, and our shards
read by a plain WebDataset pipeline: the same samples as our stream."""
from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from avvp_dist.data.config import DataConfig
from avvp_dist.data.keys import decode_key
from avvp_dist.data.shards import Manifest, ShardError
from avvp_dist.data.stream import ShardStream
from conftest import SMALL_DIMS, synth_and_shard


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_and_shard(tmp_path_factory.mktemp("data"), train=20, val=4, test=9, per_shard=4)


@pytest.fixture
def http_root(shards):
    """A local HTTP server over the shard root (http.server, a thread); yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shards))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _read(folder, **kw) -> list[tuple[str, dict, dict]]:
    """Every sample of a split through our stream, in shard order: (name, meta, features)."""
    cfg = DataConfig(batch_size=3, num_workers=kw.pop("workers", 0), **kw)
    out = []
    for b in ShardStream(folder, cfg, train=False):
        for i, name in enumerate(b.keys):
            t = int(b.mask[i].sum())
            out.append((name, b.meta[i], {k: v[i, :t].numpy() for k, v in b.features.items()}))
    return out


def _same(a, b) -> None:
    assert [x[0] for x in a] == [x[0] for x in b] and [x[1] for x in a] == [x[1] for x in b]
    for (_, _, fa), (_, _, fb) in zip(a, b):
        assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)


def test_http_root_streams_the_same_samples(shards, http_root):
    """data.shards=http://...: the manifest and the shards come through webdataset's opener (curl)."""
    assert shutil.which("curl"), "the http test needs curl (webdataset's opener runs it): install curl"
    local = _read(shards / "test")
    assert len(local) == 9
    _same(_read(f"{http_root}/test"), local)
    # DataLoader workers open their own streams (each holds a contiguous part: another order)
    _same(sorted(_read(f"{http_root}/test", workers=2), key=lambda x: x[0]), sorted(local, key=lambda x: x[0]))
    with pytest.raises(ShardError, match=r"127\.0\.0\.1:\d+/nothing/manifest.json: cannot read the manifest"):
        ShardStream(f"{http_root}/nothing", DataConfig(num_workers=0))


def test_http_root_names_curl_when_it_is_missing(shards, http_root, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ShardError, match="read with curl .*not on PATH; install curl"):
        Manifest.load(f"{http_root}/test")


def test_evaluation_over_http(shards, http_root, tmp_path):
    """`evaluate` (what `avvp-dist eval` and the trainer run) with an http shard root."""
    import torch

    from avvp_dist.eval.run import evaluate
    from avvp_dist.model.config import ModelConfig
    from avvp_dist.model.model import AVVPModel

    manifest = Manifest.load(shards / "test")
    torch.manual_seed(0)
    model = AVVPModel(manifest.features, len(manifest.classes), ModelConfig(d_model=16, ffn_dim=16, embed_dim=0))
    data = DataConfig(num_workers=0)
    over_http = evaluate({}, http_root, data, "test", model_override={"m": model})["models"]["m"]
    local = evaluate({}, shards, data, "test", model_override={"m": model})["models"]["m"]
    assert over_http["metrics"] == local["metrics"] and over_http["predictions"]["keys"] == local["predictions"]["keys"]


def test_pipe_root_runs_only_the_command_the_user_wrote(shards):
    from avvp_dist.data.location import folder

    root = f"pipe:cat {shards}/{{}}"  # the shard root; {} is the path below it
    assert folder(root, "test") == f"pipe:cat {shards}/test/{{}}"
    _same(_read(folder(root, "test")), _read(shards / "test"))
    with pytest.raises(ValueError, match="a pipe: root needs '\\{\\}'"):
        ShardStream(f"pipe:cat {shards}/test", DataConfig(num_workers=0))


def test_local_folders_with_colons_are_plain_files(shards, tmp_path, monkeypatch):
    """A relative folder whose first component holds ':' once went through webdataset's opener,
    which reads 'pipe:...' as a command to run (and 'run:1/...' as an unknown scheme)."""
    monkeypatch.chdir(tmp_path)
    for name in ("run:1", "pipe:touch PWNED; true "):  # old: ran `touch PWNED; true /test/test-00000.tar`
        shutil.copytree(shards / "test", tmp_path / name / "test")
        _same(_read(Path(name) / "test"), _read(shards / "test"))
    assert not (tmp_path / "PWNED").exists()


def test_a_plain_webdataset_pipeline_reads_our_shards(shards):
    """Our shards are WebDataset shards: `webdataset.WebDataset` with npy (pickle off) and json
    decoders only yields the samples our stream yields, in the same order."""
    manifest = Manifest.load(shards / "test")
    urls = [str(shards / "test" / s.name) for s in manifest.shards]
    safe = wds.decode(wds.handle_extension("npy", lambda b: np.load(io.BytesIO(b), allow_pickle=False)),
                      wds.handle_extension("json", json.loads))
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(), safe)
    theirs = [(decode_key(s["__key__"]), s["json"], {n: s[f"{n}.npy"].astype(np.float32) for n in SMALL_DIMS})
              for s in pipeline]
    _same(theirs, _read(shards / "test"))
    assert len(theirs) == 9


def test_the_webdataset_class_users_call_reads_our_shards(shards, http_root):
    """`webdataset.WebDataset(url)` itself, over http, a brace URL of our shard names, with the
    safe decoders: the samples of our stream, in the same order."""
    manifest = Manifest.load(shards / "test")
    names = ",".join(s.name[len("test-"):-len(".tar")] for s in manifest.shards)
    url = f"{http_root}/test/test-{{{names}}}.tar" if len(manifest.shards) > 1 else f"{http_root}/test/{manifest.shards[0].name}"
    safe = [wds.handle_extension("npy", lambda b: np.load(io.BytesIO(b), allow_pickle=False)),
            wds.handle_extension("json", json.loads)]
    dataset = wds.WebDataset(url, shardshuffle=False).decode(*safe)
    theirs = [(decode_key(s["__key__"]), s["json"], {n: s[f"{n}.npy"].astype(np.float32) for n in SMALL_DIMS})
              for s in dataset]
    _same(theirs, _read(shards / "test"))
    assert len(theirs) == 9


@pytest.mark.parametrize("root, form", [
    ("s3://bucket/llp_shards", "pipe:aws s3 cp s3://bucket/llp_shards/{} -"),
    ("gs://bucket/llp_shards/", "pipe:gsutil cat gs://bucket/llp_shards/{}"),
    ("hdfs://nn/llp", "pipe:<a command that writes hdfs://nn/llp/<file> to stdout"),
    ("file:///data/llp", "give the local folder as a path: '/data/llp'")])
def test_other_url_schemes_are_refused_with_the_pipe_form(root, form):
    """Read as a local path, `s3://bucket/x` was a folder named `s3:` under the working directory."""
    from avvp_dist.config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(None, [f"data.shards={root}"])
    assert form in str(e.value)
