"""Feature-level SMOTE: synthetic REAL video embeddings, and a linear head refitted on them.

Classes are 0 = REAL (the minority oversampled) and 1 = FAKE. SMOTE (imbalanced-learn) places each
synthetic row on the segment between a REAL embedding and one of its k nearest REAL neighbours, so every
synthetic row lies inside the convex hull of the REAL rows; it never reads FAKE rows. The embeddings are
MMMSBA's pooled fused features (workbench.model.contrastive.EmbeddingTap): the classifier is linear and
the video logit is the classifier of that mean, so a head refitted here gives the model's video logits
(and, the same head on every frame, its frame logits) when loaded back with
``model.classifier.load_state_dict(head.state_dict())``.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REAL, FAKE = 0, 1


def smote_embeddings(X: np.ndarray, y: Sequence[int], k: int = 5, seed: int = 0,
                     ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """REAL rows oversampled by SMOTE up to ratio * n_fake: (X_res, y_res, info); synthetic rows come last.

    ``k_neighbors = min(k, n_real - 1)``. With fewer than 2 REAL rows, or REAL not below the target,
    nothing is added and ``info['reason']`` says why. ``info``: n_real, n_fake, n_synthetic, k (None when
    SMOTE did not run), reason (None when it did).
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"expected X (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not set(np.unique(y).tolist()) <= {REAL, FAKE}:
        raise ValueError(f"labels must be 0 (REAL) or 1 (FAKE), got {sorted(set(y.tolist()))}")
    if k < 1 or ratio <= 0:
        raise ValueError(f"k must be >= 1 and ratio > 0, got k={k}, ratio={ratio}")
    n_real, n_fake = int((y == REAL).sum()), int((y == FAKE).sum())
    target = int(round(ratio * n_fake))
    info: dict[str, Any] = {"n_real": n_real, "n_fake": n_fake, "n_synthetic": 0, "k": None, "reason": None}
    if n_real < 2:
        info["reason"] = f"{n_real} REAL row(s): SMOTE needs at least 2 to interpolate between"
    elif n_real >= target:
        info["reason"] = f"REAL ({n_real}) already reaches the target {target} (ratio {ratio} x {n_fake} FAKE)"
    if info["reason"] is not None:
        return X.copy(), y.copy(), info
    from imblearn.over_sampling import SMOTE  # lazy: only this function needs imbalanced-learn

    k_used = min(int(k), n_real - 1)
    sm = SMOTE(sampling_strategy={REAL: target}, k_neighbors=k_used, random_state=int(seed))
    X_res, y_res = sm.fit_resample(X, y)
    info.update(n_synthetic=int(len(y_res) - len(y)), k=k_used)
    return np.asarray(X_res), np.asarray(y_res, dtype=np.int64), info


def _reset(head: nn.Module, seed: int) -> None:
    """Re-initialise every submodule that has reset_parameters, from torch's RNG seeded with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for m in head.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()


def refit_head(head: nn.Module, X: np.ndarray, y: Sequence[int], epochs: int = 200, lr: float = 0.05,
               class_weights: Sequence[float] | None = None, sample_weights: Sequence[float] | None = None,
               weight_decay: float = 0.0, seed: int = 0, reset: bool = True) -> tuple[nn.Module, list[float]]:
    """A copy of ``head`` fitted on (X, y) by full-batch Adam on weighted cross-entropy: (head, loss per epoch).

    The loss is ``sum_i w_i l_i / sum_i w_i`` with ``w_i = class_weights[y_i] * sample_weights[i]`` (e.g.
    synthetic rows weighted below real ones). ``reset``: start from parameters re-initialised with ``seed``
    (else from the head's own). Full batches and a seeded start make it deterministic; ``head`` is untouched.
    The history holds each epoch's loss before its step (history[0]: the starting loss).
    """
    if epochs < 1 or lr <= 0:
        raise ValueError(f"epochs must be >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    fitted = copy.deepcopy(head)
    if reset:
        _reset(fitted, seed)
    p0 = next(fitted.parameters())
    xt = torch.as_tensor(np.asarray(X), dtype=p0.dtype, device=p0.device)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long, device=p0.device)
    w = torch.ones(len(yt), dtype=torch.float32, device=p0.device)
    if class_weights is not None:
        w = w * torch.as_tensor(class_weights, dtype=torch.float32, device=p0.device)[yt]
    if sample_weights is not None:
        w = w * torch.as_tensor(sample_weights, dtype=torch.float32, device=p0.device)
    if xt.ndim != 2 or len(yt) != len(xt) or len(w) != len(xt) or float(w.sum()) <= 0:
        raise ValueError(f"X must be (n, d) with n labels and weights (not all zero); got X {tuple(xt.shape)}, "
                         f"{len(yt)} labels, {len(w)} weights")
    opt = torch.optim.Adam(fitted.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[float] = []
    for _ in range(int(epochs)):
        opt.zero_grad(set_to_none=True)
        per = F.cross_entropy(fitted(xt).float(), yt, reduction="none")
        loss = (per * w).sum() / w.sum()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return fitted, history
