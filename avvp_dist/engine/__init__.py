"""Engine: the DeepSpeed training loop, checkpoint/resume, logging."""
