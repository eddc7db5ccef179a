"""Layer 4: MMMS-BA, its CPU kernels and the objectives."""
