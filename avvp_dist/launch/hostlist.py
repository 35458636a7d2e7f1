"""SLURM host lists (`SLURM_JOB_NODELIST`), for the dry run only.

A real job does not parse its host list: the launcher resolves the rendezvous once per job
(`launch.rendezvous`: the first node's NodeAddr) and exports it to every task. This parser
serves the dry run (`launch.slurm_plan`, no cluster), and accepts SLURM's documented
forms: plain names (`vm`), ranges and lists in brackets with zero padding kept
(`gpu[01-03,7]`), two bracket groups in one name, the left one varying slowest as scontrol
prints them (`rack[1-2]-n[01-02]`), text around the brackets (`a[1-2]-ib`), and
comma-separated lists of all of these. With three or more groups the same hosts come out,
though scontrol orders them differently; the first host, the rendezvous, is the same.
"""
from __future__ import annotations

import itertools
import re

_NAME = re.compile(r"[^\[\],]+")


def _split_top_level(nodelist: str) -> list[str]:
    """Splits on the commas that are not inside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(nodelist):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested brackets in SLURM host list {nodelist!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced brackets in SLURM host list {nodelist!r}")
        elif ch == "," and depth == 0:
            parts.append(nodelist[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced brackets in SLURM host list {nodelist!r}")
    return parts + [nodelist[start:]]


def _ranges(text: str, nodelist: str) -> list[str]:
    """`"01-03,7"` -> ["01", "02", "03", "7"] (each range keeps its lower bound's width)."""
    out = []
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise ValueError(f"bad range {part!r} in SLURM host list {nodelist!r}")
        out += [f"{i:0{len(lo)}d}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


def _expand_one(expr: str, nodelist: str) -> list[str]:
    """One host expression, e.g. `rack[1-2]-n[01-02]`, -> its host names in SLURM's order."""
    pieces: list[list[str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos] == "[":
            end = expr.index("]", pos)  # balanced: checked by _split_top_level
            pieces.append(_ranges(expr[pos + 1:end], nodelist))
            pos = end + 1
        else:
            m = _NAME.match(expr, pos)
            if m is None:
                raise ValueError(f"cannot parse SLURM host list {nodelist!r} at {expr[pos:]!r}")
            pieces.append([m.group()])
            pos = m.end()
    return ["".join(combo) for combo in itertools.product(*pieces)]


def expand_hostlist(nodelist: str) -> list[str]:
    """`"gpu[01-03,7],cpu5"` -> `["gpu01", "gpu02", "gpu03", "gpu7", "cpu5"]`, as
    `scontrol show hostnames` prints them (zero padding kept, order kept)."""
    nodelist = nodelist.strip()
    hosts: list[str] = []
    for expr in _split_top_level(nodelist):
        if not expr:
            raise ValueError(f"empty host name in SLURM host list {nodelist!r}")
        hosts += _expand_one(expr, nodelist)
    return hosts


def slurm_rendezvous(env) -> tuple[str, int]:
    """MASTER_ADDR and MASTER_PORT as the dry run shows them: the first host of the allocation
    (a real job exports its NodeAddr) and the port `slurm/train.sh` picks by the job id, in
    20000-39999 (the same in every task and after a requeue)."""
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise RuntimeError("SLURM_JOB_NODELIST is not set: cannot pick the rendezvous host")
    job = int(env.get("SLURM_JOB_ID", "0"))
    return expand_hostlist(nodelist)[0], 20000 + job % 20000
