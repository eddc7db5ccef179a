"""Samplers of training clips: the inverse-class-frequency sampler of the study's balanced conditions."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


# ---------------------------------------------------------------------------- sampler
def make_weighted_sampler(
    labels: Sequence[int], seed: int, num_samples: int | None = None
) -> WeightedRandomSampler:
    """Sampler drawing each class equally often in expectation (inverse class frequency, with replacement)."""
    y = np.asarray(list(labels), dtype=np.int64)
    if y.size == 0:
        raise ValueError("make_weighted_sampler needs at least one label")
    if np.any(y < 0):
        raise ValueError(f"labels must be non-negative class indices, got {sorted(set(y.tolist()))}")
    counts = np.bincount(y)
    weights = 1.0 / counts[y]
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=len(y) if num_samples is None else int(num_samples),
        replacement=True,
        generator=generator,
    )
