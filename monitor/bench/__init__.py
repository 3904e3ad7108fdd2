"""Benchmarks and soak runs: synthetic posts, the floor, the full pipeline."""
