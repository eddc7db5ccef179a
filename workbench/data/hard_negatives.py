"""Hard-negative mining as draw weights: the FAKE clips the model found most REAL-looking are drawn more often.

Classes are 0 = REAL and 1 = FAKE. After an epoch the trainer has each training clip's P(REAL) from
that epoch's forward passes. The hardest FAKE clips are those with the highest P(REAL): the top
``fraction`` of the FAKE clips that have a prediction (ceil(fraction * n), so at least one whenever
fraction > 0) get their draw weight multiplied by ``boost``. With ``include_real`` the same is done for
the hardest REAL clips (highest P(FAKE), i.e. lowest P(REAL)). Clips without a prediction (NaN: not
drawn in the previous epoch) keep their base weight and are not candidates. Before the warm-up ends, or
with no previous predictions, the base weights are returned (uniform when none are given). Ties are
broken by position, so the result is deterministic. The weights are relative, as
``torch.utils.data.WeightedRandomSampler`` takes them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

REAL, FAKE = 0, 1


def _hardest(scores: np.ndarray, candidates: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the top ceil(fraction * n) candidates by score, highest first (ties: lower index first)."""
    idx = np.flatnonzero(candidates)
    n_hard = math.ceil(fraction * len(idx) - 1e-9)
    if n_hard <= 0:
        return idx[:0]
    order = np.lexsort((idx, -scores[idx]))  # score descending, then position
    return idx[order[:n_hard]]


def hard_weights(p_real_prev: Any, labels: Any, fraction: float = 0.3, boost: float = 2.0,
                 include_real: bool = False, base_weights: Any = None, epoch: int | None = None,
                 warmup: int = 0) -> np.ndarray:
    """Per-clip draw weights: base weights with the hardest FAKE (and optionally REAL) clips multiplied by boost.

    ``p_real_prev``: P(REAL) of each training clip in the previous epoch (None, or NaN per clip, when there
    is none). ``epoch`` < ``warmup`` (epochs counted from 0) also returns the base weights.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    if not set(np.unique(y).tolist()) <= {REAL, FAKE}:
        raise ValueError(f"labels must be 0 (REAL) or 1 (FAKE), got {sorted(set(y.tolist()))}")
    if not 0.0 <= fraction <= 1.0 or boost < 1.0 or warmup < 0:
        raise ValueError(f"need 0 <= fraction <= 1, boost >= 1, warmup >= 0; got {fraction}, {boost}, {warmup}")
    w = np.ones(len(y)) if base_weights is None else np.asarray(base_weights, dtype=np.float64).ravel().copy()
    if len(w) != len(y) or np.any(w < 0):
        raise ValueError(f"base_weights must be {len(y)} non-negative numbers")
    if p_real_prev is None or (epoch is not None and epoch < warmup) or fraction == 0:
        return w
    p = np.asarray(p_real_prev, dtype=np.float64).ravel()
    if len(p) != len(y):
        raise ValueError(f"{len(p)} previous predictions for {len(y)} clips")
    seen = np.isfinite(p)
    w[_hardest(p, seen & (y == FAKE), fraction)] *= boost  # FAKE that looked REAL
    if include_real:
        w[_hardest(-p, seen & (y == REAL), fraction)] *= boost  # REAL that looked FAKE
    return w
