"""Where and how runs execute: machine defaults, devices per run, torchrun data parallelism, SLURM requeue."""
