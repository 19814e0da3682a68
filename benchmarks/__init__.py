"""Spinefoot benchmarks: `sh benchmarks/run` (see docs/performance.md)."""
