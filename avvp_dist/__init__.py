"""avvp_dist: distributed training for weakly-supervised audio-visual video parsing."""

__version__ = "0.1.0"
