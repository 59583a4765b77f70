"""Benchmarks; figures and the commands that made them are in docs/benchmarks.md."""
