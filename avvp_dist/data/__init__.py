"""Data layer: real-format readers, synthetic generator, shard writer, streaming loader."""
