"""Layer 3: the synthetic deepfake generator, the demo dataset and toy records."""
