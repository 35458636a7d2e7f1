"""Launchers: accelerate recipes, submitit, sbatch helpers, the SLURM dry run. All end in `entry.train_command`."""
