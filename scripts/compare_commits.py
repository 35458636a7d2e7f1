"""Do two commits train to the same weights? A demo-size run at each, final parameters compared bit for bit.

    python scripts/compare_commits.py --base e33e84a            # base commit vs the working tree
    python scripts/compare_commits.py --base HEAD~3 --steps 200
    python scripts/compare_commits.py --base 9dec63e --here preset=none   # the working tree with overrides
    python scripts/compare_commits.py --base 1f6077d --both preset=none   # both sides with overrides

Each side runs `avvp-dist demo` (synthetic LLP data at the demo's sizes, shards, DeepSpeed
training under torchrun, one rank per GPU or 2 CPU ranks) from its own source tree with the same interpreter, then every
tensor of `final_student.pt` and `final_teacher.pt` is compared with `torch.equal`. The
base side runs from a detached `git worktree`; its run folder is kept under
`--work/<commit>` and reused. Exit code 0 when every tensor is identical, 1 otherwise.
A refactor that must not change behaviour is checked with this before it lands.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_demo(tree: Path, run_dir: Path, steps: int, overrides: list[str] = ()) -> Path:
    """Trains from the sources in `tree` into `run_dir` (replaced), with config `overrides`."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, "-m", "avvp_dist.cli", "demo", f"run_dir={run_dir}", f"train.max_steps={steps}",
           "train.eval_every=0", "train.checkpoint_every=0", "train.plots=0", *overrides]
    print(f"[{tree}] {' '.join(cmd[1:])}", flush=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=tree, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"training from {tree} failed (exit {rc}); log: {log}")
    return run_dir


def compare(a: Path, b: Path) -> int:
    """Number of tensors that differ between two model-only checkpoints."""
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    if sa.keys() != sb.keys():
        print(f"  {a.name}: different parameter names: {sorted(sa.keys() ^ sb.keys())[:5]}")
        return max(1, len(sa.keys() ^ sb.keys()))
    bad = [k for k in sa if not torch.equal(sa[k], sb[k])]
    for k in bad[:5]:
        print(f"  {a.name} {k}: max |diff| {(sa[k].double() - sb[k].double()).abs().max().item():.3g}")
    print(f"{a.name}: {len(sa) - len(bad)} of {len(sa)} tensors identical")
    return len(bad)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare against")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "compare_commits")
    p.add_argument("--here", nargs="*", default=[], help="overrides for the working tree's run only (keys the "
                   "base does not know, e.g. preset=none when the demo's config names a preset)")
    p.add_argument("--both", nargs="*", default=[], help="overrides for both runs (e.g. preset=none)")
    args = p.parse_args(argv)
    sha = git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    base_tree = args.work / f"tree-{sha[:12]}"
    tag = "-" + hashlib.sha256(" ".join(args.both).encode()).hexdigest()[:8] if args.both else ""
    base = args.work / f"run-{sha[:12]}-{args.steps}{tag}"
    if not (base / "final_teacher.pt").is_file():
        git("worktree", "add", "--detach", "--force", str(base_tree), sha)
        try:
            run_demo(base_tree, base, args.steps, args.both)
        finally:
            git("worktree", "remove", "--force", str(base_tree))
    else:
        print(f"reusing {base}", flush=True)
    here = run_demo(REPO, args.work / f"run-worktree-{args.steps}", args.steps, [*args.both, *args.here])
    bad = sum(compare(base / f"final_{m}.pt", here / f"final_{m}.pt") for m in ("student", "teacher"))
    print("bit-identical" if bad == 0 else f"{bad} tensor(s) differ", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
