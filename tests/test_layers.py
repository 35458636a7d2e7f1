"""Imports point down only (docs/architecture.md): each package imports what its layer may use."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avvp_dist"
BOTTOM = {"data", "model", "kernels", "distributed", "profiling"}
MAY_IMPORT = {
    "data": {"data"}, "model": {"model"}, "kernels": {"kernels"}, "distributed": {"distributed"}, "profiling": set(),
    "method": {"method", "data", "model", "kernels", "distributed", "profiling"},  # data: the typed Batch it reads
    "eval": {"eval", "data", "model", "distributed"},
    "datasets": {"datasets", "data", "eval"},
    "extract": {"extract", "data", "distributed"},  # video files to feature rows, .npy files or shards  # each dataset's module: reader, format, hooks, registered once
    "config": {"config", "data", "model", "method", "eval"},  # composes the components' config dataclasses
    "engine": BOTTOM | {"engine", "method", "eval", "config"},
    "launch": BOTTOM | {"method", "eval", "engine", "config", "launch"},  # never cli: no back-arrow
    "cli": BOTTOM | {"method", "eval", "engine", "config", "launch", "extract"},
}


def _component(module: str) -> str | None:
    """`avvp_dist.eval.run` -> `eval`; the package root (`avvp_dist`, its __version__) -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "avvp_dist" and len(parts) > 1 else None


def test_every_import_points_down():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        me = _component(".".join(rel.parts))
        if me is None or me == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                other = _component(name)
                if other is not None and other not in MAY_IMPORT[me]:
                    wrong.append(f"{rel}: imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_map_covers_every_component():
    found = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert found == set(MAY_IMPORT), found ^ set(MAY_IMPORT)


def test_modules_and_functions_stay_small():
    """Files of at most 400 lines, functions of at most 50 (docstring included): the size at
    which a module or a function still reads in one sitting."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: "
                                f"{node.end_lineno - node.lineno + 1} lines")
    assert not too_long, "\n".join(too_long)
