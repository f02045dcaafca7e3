"""The M3EL benchmark: metrics, baselines, training and evaluation scripts."""
