"""Model layer: HAN encoder, MMIL pooling and heads, model-only checkpoints."""
