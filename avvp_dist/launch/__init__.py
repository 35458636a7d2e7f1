"""Launchers: accelerate recipes, submitit, sbatch helpers. All end in `engine.trainer.train`."""
