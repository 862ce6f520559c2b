"""Sweeps of many runs: the planner and its throughput probe, progress lines, the sequential sweep, branched plans."""
