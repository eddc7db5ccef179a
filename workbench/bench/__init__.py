"""Layer 9: benchmarks (fast against naive path, data at scale, engines, GPU check)."""
