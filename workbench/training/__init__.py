"""Layer 6: the trainer and its callbacks, K-fold runs, engines, full-length prediction."""
