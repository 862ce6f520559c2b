"""Run directories in, checked tables out: loading, the quality gate and the column checks every fit uses."""
