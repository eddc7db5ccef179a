"""Layer 1: records and their storage, clip datasets and loaders, splits, augmentation, segments."""
