"""UnAV-100 recipe. `accelerate launch --config_file recipes/accelerate/cpu_2proc_zero2.yaml recipes/unav100.py [overrides]`

Also runs as `python recipes/unav100.py` (one process) or under torchrun / srun.
Default config: recipes/configs/unav100.yaml (the real UnAV-100 features); pass
`--config recipes/configs/unav100_synth.yaml` for the embedded synthetic data.
"""
import sys
from pathlib import Path

from avvp_dist.launch.accelerate_env import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe(str(Path(__file__).parent / "configs" / "unav100.yaml"), sys.argv[1:]))
