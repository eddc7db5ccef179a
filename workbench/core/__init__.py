"""Layer 0: the config tree, paths, runtime (device, threads, seeds) and the names of the metrics."""
