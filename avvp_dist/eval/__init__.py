"""Evaluation: LLP and UnAV-100 metrics, sharded inference, reports and plots."""
