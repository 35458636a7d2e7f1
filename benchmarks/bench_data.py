"""The synthetic LLP-format data the benchmarks share: published feature sizes
(VGGish 128, ResNet-152 2048, R(2+1)D 512 per segment, 10 segments), written once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEFAULT = Path("runs/bench/llp_data")


def make_data(folder: Path = DEFAULT, num_train: int = 1024) -> tuple[Path, Path]:
    """(raw folder, shard folder), synthesised and sharded unless already there."""
    from avvp_dist.data.shards import Manifest, ShardError

    raw, shards = folder / "raw", folder / "shards"
    try:
        Manifest.load(shards / "test")
        usable = True
    except ShardError:  # none yet, or written by an older version
        usable = False
    if not usable:
        common = [f"run_dir={folder}", "synth.dataset=llp", f"synth.num_train={num_train}", "synth.num_val=32",
                  "synth.num_test=32", f"synth.out={raw}", "data.dataset=llp", f"data.root={raw}",
                  f"data.shards={shards}", "data.samples_per_shard=64"]
        for sub in ("synth", "shard"):
            subprocess.run([sys.executable, "-m", "avvp_dist.cli", sub, *common], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return raw, shards
