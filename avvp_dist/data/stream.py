"""Streaming loader over WebDataset shards: exact epochs, padded batches, resumable position.

`ShardStream` is what the trainer iterates: one epoch at a time, from the plan of
`data.plan`, with DataLoader workers streaming their runs from the shards. Its
`state_dict()` (epoch, batches delivered) goes into checkpoints; a stream restored
from it delivers exactly the batches the original would have delivered next.
"""
from __future__ import annotations

import hashlib
import logging
import signal
import tarfile
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from avvp_dist.data.batch import Batch
from avvp_dist.data.config import DataConfig
from avvp_dist.data.decode import decode_sample
from avvp_dist.data.plan import EpochPlan, Run, Slot, consumed_per_slot, plan_epoch
from avvp_dist.data.location import Location, file_in, is_url, open_location
from avvp_dist.data.shards import Manifest, ShardError, add_member

log = logging.getLogger(__name__)


def read_run(url: Location, run: Run, expected: int) -> Iterator[dict]:
    """Grouped raw samples `run.start <= i < run.stop` of one shard, streamed in order.

    Members are grouped by key as WebDataset does (`key.ext`); samples before
    `run.start` are skipped without decoding. Each sample delivered carries the sha256
    of its members as `__sha256__` (`shards.add_member`). A shard that ends early, holds
    more than the manifest's `expected` samples, or is not a valid tar raises a
    `ShardError` naming it. `url`: a local path (opened as a plain file) or a URL
    (`data.location`).
    """
    index, current, digest = 0, None, None
    try:
        with open_location(url) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, suffix = member.name.partition(".")
                if current is None or current["__key__"] != key:
                    if current is not None:
                        if index >= run.start:
                            current["__sha256__"] = digest.hexdigest()
                            yield current
                        index += 1
                    if index >= run.stop:
                        if run.stop < expected:
                            return
                        raise ShardError(f"{url}: holds more than the {expected} samples the manifest says",
                                         "unreadable_shard")
                    current, digest = {"__key__": key}, hashlib.sha256()
                if index >= run.start:
                    data = tar.extractfile(member).read()
                    current[suffix.lower()] = data
                    add_member(digest, member.name, data)
            if current is not None:
                if index >= run.start:
                    current["__sha256__"] = digest.hexdigest()
                    yield current
                index += 1
    except ShardError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:  # ValueError: webdataset's pipe status
        raise ShardError(f"{url}: unreadable or truncated shard after {index} samples ({e})", "unreadable_shard") from e
    if index < run.stop:
        raise ShardError(f"{url}: ends after {index} samples; the manifest says {expected}", "unreadable_shard")


def collate(samples: list[tuple[str, dict, dict]], classes: list[str], features: list[str],
            segment_labels: tuple[str, str] | None = None) -> Batch:
    """A `Batch` padded to the longest sequence of the samples (key, arrays, meta); with
    `segment_labels` (the audio and the visual label array's names), its segment labels."""
    index = {c: i for i, c in enumerate(classes)}
    lengths = [next(iter(f.values())).shape[0] for _, f, _ in samples]
    t = max(lengths)
    feats = {}
    for name in features:
        dim = samples[0][1][name].shape[1]
        out = np.zeros((len(samples), t, dim), np.float32)
        for i, (_, f, _) in enumerate(samples):
            out[i, : lengths[i]] = f[name]
        feats[name] = torch.from_numpy(out)
    labels = torch.zeros(len(samples), len(classes))
    for i, (_, _, meta) in enumerate(samples):
        labels[i, [index[c] for c in meta["labels"]]] = 1.0
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    batch = Batch([k for k, _, _ in samples], feats, mask, labels, [m for _, _, m in samples])
    if segment_labels is not None:
        seg = np.zeros((len(samples), t, 2, len(classes)), np.float32)
        for i, (_, f, _) in enumerate(samples):
            for m, name in enumerate(segment_labels):
                seg[i, : lengths[i], m] = f[name]
        batch.segment_labels = torch.from_numpy(seg)
    return batch


def label_pair(manifest: Manifest) -> tuple[str, str] | None:
    """The names of the shards' audio and visual segment labels, or None when there are none;
    a `ShardError` unless there is exactly one of each."""
    if not manifest.labels:
        return None
    by = {m: [f["name"] for f in manifest.labels if f["modality"] == m] for m in ("audio", "visual")}
    if len(by["audio"]) != 1 or len(by["visual"]) != 1:
        raise ShardError(f"segment labels {manifest.labels}: expected one audio and one visual array")
    return by["audio"][0], by["visual"][0]


class _SlotReader(IterableDataset):
    """One rank's epoch: DataLoader worker w reads slot (w + start) % K from its next batch."""

    def __init__(self, urls: list[Location], manifest: Manifest, plan_slots: tuple[Slot, ...], start: int,
                 seed: int, epoch: int, rank: int, cfg: DataConfig, train: bool):
        self.urls, self.manifest, self.slots, self.start = urls, manifest, plan_slots, start
        self.seed, self.epoch, self.rank, self.cfg, self.train = seed, epoch, rank, cfg, train

    def __iter__(self):
        info = get_worker_info()
        w, k = (info.id, info.num_workers) if info else (0, 1)
        if k != len(self.slots):
            raise RuntimeError(f"planned for {len(self.slots)} workers, running with {k}")
        s = (w + self.start) % k
        yield from self._slot(s, consumed_per_slot(self.start, k)[s])

    def _samples(self, slot: Slot, skip: int) -> Iterator[tuple | tuple[None, str, str]]:
        """Decoded samples of the slot after the first `skip`; a bad one under `skip` policy
        comes as (None, where, reason) so that batch boundaries stay where the plan put them."""
        for run in slot.runs:
            if skip >= run.stop - run.start:
                skip -= run.stop - run.start
                continue
            run = Run(run.shard, run.start + skip, run.stop)
            skip = 0
            url = self.urls[run.shard]
            info = self.manifest.shards[run.shard]
            got = 0
            try:
                for raw in read_run(url, run, info.count):
                    digest = info.digests[run.start + got] if self.cfg.verify_checksums else None
                    got += 1
                    try:
                        yield decode_sample(raw, self.manifest, str(url), digest)
                    except ShardError as e:
                        if self.cfg.on_error == "raise":
                            raise
                        yield None, e.kind, str(e)
            except ShardError as e:  # unreadable shard: the rest of the run is lost
                if self.cfg.on_error == "raise":
                    raise
                for _ in range(run.stop - run.start - got):
                    yield None, "unreadable_shard", str(e)

    def _slot(self, slot_index: int, done: int) -> Iterator[tuple[Batch, list[tuple[str, str]]]]:
        """(batch, the (reason, message) of each bad sample skipped from it) of one slot."""
        slot = self.slots[slot_index]
        window = self.cfg.shuffle_window if self.train else 1
        first_window = done // window
        skip_samples = sum(slot.batch_sizes[: first_window * window])
        samples = self._samples(slot, skip_samples)
        names, pair = [f["name"] for f in self.manifest.features], label_pair(self.manifest)
        for wi in range(first_window, (len(slot.batch_sizes) + window - 1) // window):
            sizes = slot.batch_sizes[wi * window:(wi + 1) * window]
            chunk = [next(samples) for _ in range(sum(sizes))]
            if self.train:  # mix the pieces a window holds; fixed by (seed, epoch, rank, slot, window)
                perm = np.random.default_rng([self.seed, self.epoch, self.rank, slot_index, wi]).permutation(len(chunk))
                chunk = [chunk[i] for i in perm]
            bounds = np.cumsum((0,) + sizes)
            for bi in range(len(sizes)):
                if wi * window + bi < done:
                    continue
                part = chunk[bounds[bi]:bounds[bi + 1]]
                good = [x for x in part if x[0] is not None]
                skipped = [(x[1], x[2]) for x in part if x[0] is None]
                if not good:
                    raise ShardError(f"every sample of a batch was bad; first: {skipped[0][1]}")
                yield collate(good, self.manifest.classes, names, pair), skipped


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)  # what schedulers send to stop or preempt a job


def leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """A DataLoader worker ignores the stop and preemption signals: scancel and SLURM send them
    to every process of a task, and a worker that died of one took its rank down with it
    ("DataLoader worker is killed by signal: Terminated") instead of letting the trainer save
    a checkpoint. The trainer stops the workers itself when it ends."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


class ShardStream:
    """Batches of one rank over a shard folder, epoch after epoch, resumable.

    >>> stream = ShardStream("shards/train", cfg, rank=r, world_size=w, seed=0)   # or a URL root
    >>> for batch in stream: ...            # one epoch from the current position
    >>> state = stream.state_dict()         # into the checkpoint
    """

    def __init__(self, folder: Location, cfg: DataConfig, rank: int = 0, world_size: int = 1,
                 seed: int = 0, train: bool = True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.folder = folder if is_url(folder) else Path(folder)
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.seed, self.train = seed, train
        self.manifest = Manifest.load(self.folder)
        if not is_url(self.folder):  # sizes only: each sample's sha256 is checked as it is read
            self.manifest.verify(self.folder)
        self.urls = [file_in(self.folder, s.name) for s in self.manifest.shards]
        self.epoch, self.batch = 0, 0
        self.last_report: dict | None = None

    def plan(self, epoch: int | None = None) -> EpochPlan:
        return plan_epoch([s.count for s in self.manifest.shards], self.world_size, self.cfg.batch_size,
                          self.cfg.num_workers, self.cfg.piece_size, self.seed,
                          self.epoch if epoch is None else epoch, self.train)

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank when training)."""
        return self.plan().batches(self.rank)

    def __iter__(self) -> Iterator[Batch]:
        plan = self.plan()
        reader = _SlotReader(self.urls, self.manifest, plan.slots[self.rank], self.batch, self.seed,
                             self.epoch, self.rank, self.cfg, self.train)
        # its own generator: starting an iterator must not draw from the global RNG (dropout),
        # or a run resumed mid-epoch would see other random numbers than an uninterrupted one
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch, self.rank)) & 0x7FFFFFFF)
        loader = DataLoader(reader, batch_size=None, num_workers=self.cfg.num_workers,
                            prefetch_factor=2 if self.cfg.num_workers else None, generator=gen,
                            worker_init_fn=leave_stop_signals_to_the_trainer)
        skipped: Counter = Counter()
        samples = 0
        for batch, bad in loader:
            self.batch += 1
            samples += len(batch)
            for kind, message in bad:
                skipped[kind] += 1
                log.warning("skipped a sample (%s): %s", kind, message)
            yield batch
        self.last_report = {"epoch": self.epoch, "batches": self.batch, "samples": samples,
                            "dropped_to_equalise": plan.dropped, "skipped": sum(skipped.values()),
                            "skipped_by_reason": dict(skipped)}
        if plan.dropped or skipped:
            log.info("epoch %d: %d samples dropped to equalise ranks, %d bad samples skipped",
                     self.epoch, plan.dropped, sum(skipped.values()))
        self.epoch, self.batch = self.epoch + 1, 0

    def state_dict(self) -> dict:
        """The stream position plus the geometry an exact resume needs."""
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed, "world_size": self.world_size,
                "batch_size": self.cfg.batch_size, "num_workers": self.cfg.num_workers,
                "piece_size": self.cfg.piece_size, "shuffle_window": self.cfg.shuffle_window,
                "num_samples": self.manifest.num_samples}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        differ = {k: (state.get(k), mine[k]) for k in mine if k not in ("epoch", "batch") and state.get(k) != mine[k]}
        if differ:
            raise ValueError("cannot resume the data stream exactly: saved vs now " +
                             ", ".join(f"{k}={a} vs {b}" for k, (a, b) in differ.items()))
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
