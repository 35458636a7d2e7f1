"""What an extraction has made durable, so that a restarted one skips it: one append-only
JSON-lines file per rank, `<destination>/.extract/rank-NNN.jsonl`.

A `.npy` entry names a video, its file's sha256, and each feature file written with its own
sha256; a shard entry names a closed shard, the videos in it with their sha256, and the
statistics of its rows. An entry is written after what it describes is in place (renamed from
a temporary name), so a crash loses at most the work since the last entry. A video counts as
done only while its source and every output still have the recorded digests.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

FOLDER = ".extract"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Ledger:
    def __init__(self, destination: Path, rank: int):
        self.folder = Path(destination) / FOLDER
        self.path = self.folder / f"rank-{rank:03d}.jsonl"

    def entries(self) -> list[dict]:
        """Every rank's entries (a restart may run at another world size), oldest first within
        a rank; a torn last line (a crash while appending) is skipped and reported."""
        out = []
        for path in sorted(self.folder.glob("rank-*.jsonl")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    logging.getLogger(__name__).warning("%s:%d: not a ledger entry, skipped", path, n)
        return out

    def add(self, entry: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def files_intact(root: Path, files: dict[str, list[str]]) -> bool:
    """Whether each {name: [relative path, sha256]} file is under `root` with that digest."""
    return all((root / rel).is_file() and sha256_file(root / rel) == digest for rel, digest in files.values())


def done_videos(entries: list[dict], root: Path, sources: dict[str, str]) -> set[str]:
    """`.npy` entries whose video has the digest in `sources` ({video: sha256}) and whose
    files are intact: the videos a restart skips."""
    return {e["video"] for e in entries if "video" in e and sources.get(e["video"]) == e["source"]
            and files_intact(root, e["files"])}


def shard_intact(folder: Path, shard: dict) -> bool:
    path = folder / shard["name"]
    return path.is_file() and path.stat().st_size == shard["bytes"] and sha256_file(path) == shard["sha256"]
