"""Installs what this interpreter lacks for avvp_dist, from a wheelhouse, into a target folder.

    python3 benchmarks/gpu_install.py WHEELS TARGET [--plan]

For a machine with no network whose Python is not ours to change (the GPU image: a venv
with torch, Triton, numpy, pytest): starting from avvp_dist's own requirements
(pyproject.toml), every requirement the interpreter (or TARGET, from an earlier run)
already satisfies is left alone; one it lacks, or has at too old a version (say
typing-extensions under pydantic's floor), is taken from WHEELS, and that wheel's own
requirements are followed the same way. The chosen wheels go into TARGET with
`pip install --no-index --no-deps --target` (put TARGET first on PYTHONPATH). A
requirement nobody can satisfy is an error naming it. `--plan` prints the choice only.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("test",)  # the kernel tests need pytest-timeout and triton


def wheel_requirements(path: Path) -> list[Requirement]:
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines() if line.startswith("Requires-Dist:")]


def installed(name: str, target: Path) -> Version | None:
    """The version this interpreter would import, TARGET first (it is first on PYTHONPATH)."""
    for dist in md.distributions(path=[str(target), *sys.path]):
        if canonicalize_name(dist.metadata["Name"] or "") == name:
            return Version(dist.version)
    return None


def plan(wheels: Path, target: Path) -> tuple[list[Path], list[str]]:
    """(wheels to install, lines saying why): a breadth-first walk of the requirements."""
    house = {}
    for w in sorted(wheels.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(w.name)
        name = canonicalize_name(name)
        if name in house:  # which one would install is a matter of file names: refuse
            raise SystemExit(f"gpu_install: {wheels} holds two versions of {name}: {house[name][1].name} and "
                             f"{w.name}; rebuild it with benchmarks/gpu_wheels.sh")
        house[name] = (version, w)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    for extra in EXTRAS:
        todo += [Requirement(r) for r in project["optional-dependencies"].get(extra, [])]
    env = default_environment()
    chosen, why, seen = {}, [], set()
    while todo:
        req = todo.pop(0)
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        key = (name, str(req.specifier))
        if key in seen:
            continue
        seen.add(key)
        if name in chosen:
            if not req.specifier.contains(chosen[name][0], prereleases=True):
                raise SystemExit(f"gpu_install: {req} is not met by the wheel {chosen[name][1].name}")
            continue
        have = installed(name, target)
        if have is not None and req.specifier.contains(have, prereleases=True):
            continue
        if name not in house or not req.specifier.contains(house[name][0], prereleases=True):
            found = f"{name} {have}" if have else f"no {name}"
            raise SystemExit(f"gpu_install: {req} is needed; this interpreter has {found} and {wheels} has "
                             f"{'no wheel of it' if name not in house else house[name][1].name}")
        chosen[name] = house[name]
        why.append(f"{house[name][1].name}: for {req}" + (f" (the interpreter has {have})" if have else ""))
        todo += wheel_requirements(house[name][1])
    return [w for _, w in chosen.values()], why


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--plan", action="store_true", help="print the wheels it would install, install nothing")
    args = ap.parse_args()
    if not args.wheels.is_dir():
        raise SystemExit(f"gpu_install: no wheelhouse at {args.wheels} (build it with benchmarks/gpu_wheels.sh where "
                         "there is network, and carry it)")
    chosen, why = plan(args.wheels, args.target)
    for line in why or ["nothing to install: the interpreter has every requirement"]:
        print(f"[gpu_install] {line}", flush=True)
    if chosen and not args.plan:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(args.target), *map(str, chosen)], check=True)


if __name__ == "__main__":
    main()
