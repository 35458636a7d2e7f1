"""LLP recipe. `accelerate launch --config_file recipes/accelerate/cpu_2proc_zero2.yaml recipes/llp.py [overrides]`

Also runs as `python recipes/llp.py` (one process) or under torchrun / srun.
Default config: recipes/configs/llp.yaml (the real LLP features); pass
`--config recipes/configs/llp_synth.yaml` for the embedded synthetic data.
"""
import sys
from pathlib import Path

from avvp_dist.launch.accelerate_env import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe(str(Path(__file__).parent / "configs" / "llp.yaml"), sys.argv[1:]))
