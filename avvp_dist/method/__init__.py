"""Method layer: EMA teacher, pseudo supervision and cross-modal agreement losses."""
