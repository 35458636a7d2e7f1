"""Distributed plumbing: rank/world discovery and collectives."""
