"""The datasets that come with the package, each in one module: LLP (`llp.py`) and UnAV-100 (`unav100.py`).

Each module holds everything that makes its dataset what it is (reader, feature releases,
synthetic format, preset parts, evaluation hooks) and registers it once with
`eval.datasets.register_dataset`. The registries load this package on their first lookup
(`data.datasets.data_spec`), so importing it by hand is never needed. A dataset of one's own is
one such module, imported before use (`tests/toy_dataset.py`).
"""
from avvp_dist.datasets import llp, unav100  # noqa: F401  (registers them)
