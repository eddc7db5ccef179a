"""Uncertainty triage of a fold ensemble: votes, risk-coverage curves, AURC and a review list.

Classes are 0 = REAL and 1 = FAKE; ``p`` is P(Fake) and a video is called FAKE when ``p > threshold``
(strictly, as in workbench.evaluation.metrics). The members of an ensemble are its fold models, or MC-dropout draws:
a (n_videos, n_models, n_draws) array is treated as n_models * n_draws members. A video's uncertainty is
by default the spread (standard deviation, ddof=1) of its members' P(Fake); one member has no spread.

Selective prediction (Geifman & El-Yaniv 2017): abstain on the most uncertain videos first; at each
coverage (share of videos kept) the risk is the error rate of the kept ones. Videos with equal
uncertainty cannot be split by a threshold, so the curve has one point per distinct uncertainty.
AURC is the area under that step curve; abstaining at random has expected risk equal to the overall
error rate at every coverage, so its expected AURC is the error rate.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

ENTROPY_EPS = 0.05  # nats; caps the ratio of two models' vote weights at (eps + ln 2) / eps, about 15


def _members(p_models: Any) -> np.ndarray:
    """(n_videos, n_members) float array; a 3-D (videos, models, draws) array is flattened over its last two axes."""
    p = np.asarray(p_models, dtype=np.float64)
    if p.ndim == 3:
        p = p.reshape(p.shape[0], -1)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"expected P(Fake) of shape (n_videos, n_models[, n_draws]), got {p.shape}")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("every P(Fake) must lie in [0, 1]")
    return p


def mean_and_spread(p_models: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per video the mean P(Fake) over the members and their standard deviation (ddof=1; NaN with one member)."""
    p = _members(p_models)
    spread = p.std(1, ddof=1) if p.shape[1] > 1 else np.full(p.shape[0], np.nan)
    return p.mean(1), spread


def predictive_entropy(p: Any) -> np.ndarray:
    """Binary entropy (nats) of P(Fake): 0 for a certain prediction, ln 2 at 0.5."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def mean_vote(p_models: Any) -> np.ndarray:
    """The plain ensemble: per video the mean P(Fake) over the members."""
    return _members(p_models).mean(1)


def uncertainty_weighted_vote(p_models: Any, weights: Any = None, eps: float = ENTROPY_EPS) -> np.ndarray:
    """Per video the weighted mean P(Fake); by default each model weighted by 1 / (eps + its own entropy).

    Confidence weighting, not inverse variance: a fold model gives one P(Fake) per video and no variance
    of its own (that needs MC-dropout draws per model), while its predictive entropy is always there. The
    caveat: a confidently wrong model outweighs hesitant right ones; ``eps`` bounds the weight ratio.
    ``weights`` (broadcastable to (n_videos, n_models), e.g. 1 / (eps + MC variance)) replace the default.
    """
    p = _members(p_models)
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    w = 1.0 / (eps + predictive_entropy(p)) if weights is None else np.broadcast_to(
        np.asarray(weights, dtype=np.float64), p.shape)
    if np.any(w < 0) or np.any(w.sum(1) <= 0):
        raise ValueError("vote weights must be non-negative with a positive sum per video")
    return (w * p).sum(1) / w.sum(1)


def _checked(y: Any, p: Any, uncertainty: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p, u = (np.asarray(a, dtype=np.float64).ravel() for a in (y, p, uncertainty))
    if not len(y) == len(p) == len(u) or len(y) == 0:
        raise ValueError(f"y, p and uncertainty must have the same non-zero length, got {len(y)}, {len(p)}, {len(u)}")
    if not np.all(np.isfinite(u)):
        raise ValueError("uncertainty holds NaN/inf (a single model has no spread: pass another uncertainty)")
    return y.astype(np.int64), p, u


def errors(y: Any, p: Any, threshold: float = 0.5) -> np.ndarray:
    """1 where the call (FAKE when p > threshold) differs from the label, else 0."""
    return ((np.asarray(p) > threshold).astype(np.int64) != np.asarray(y, dtype=np.int64)).astype(np.int64)


def risk_coverage(y: Any, p: Any, uncertainty: Any, threshold: float = 0.5) -> pd.DataFrame:
    """Risk (error rate of the kept videos) at each coverage, abstaining on the most uncertain first.

    One row per distinct uncertainty u, ascending coverage: the videos kept are those with uncertainty
    <= u (column ``threshold``); ``n_kept`` of them, ``coverage`` = n_kept / n.
    """
    y, p, u = _checked(y, p, uncertainty)
    order = np.argsort(u, kind="stable")
    u_sorted, err = u[order], errors(y, p, threshold)[order]
    n_kept = np.arange(1, len(u) + 1)
    last = np.r_[u_sorted[1:] != u_sorted[:-1], True]  # the last video of each run of equal uncertainty
    return pd.DataFrame({"coverage": n_kept[last] / len(u), "risk": np.cumsum(err)[last] / n_kept[last],
                         "n_kept": n_kept[last], "threshold": u_sorted[last]})


def aurc(curve: pd.DataFrame) -> float:
    """Area under a risk_coverage step curve: sum of risk x the coverage it adds."""
    cov = curve["coverage"].to_numpy(dtype=np.float64)
    return float(np.sum(curve["risk"].to_numpy(dtype=np.float64) * np.diff(cov, prepend=0.0)))


def random_aurc(y: Any, p: Any, threshold: float = 0.5) -> float:
    """Expected AURC of abstaining at random: the overall error rate."""
    return float(errors(y, p, threshold).mean())


def coverage_at_risk(curve: pd.DataFrame, target: float) -> float:
    """The largest coverage whose risk is <= target (0.0 when none is)."""
    ok = curve["risk"] <= target
    return float(curve.loc[ok, "coverage"].max()) if bool(ok.any()) else 0.0


def review_list(video_ids: Sequence[str], y: Any, p: Any, uncertainty: Any, n: int) -> pd.DataFrame:
    """The n videos to check first: most uncertain, ties by |p - 0.5| (closest first), then input order.

    ``y`` may be None (unlabelled videos): the label and correct columns are then left out.
    """
    p, u = np.asarray(p, dtype=np.float64), np.asarray(uncertainty, dtype=np.float64)
    _checked(np.zeros(len(p)) if y is None else y, p, u)
    if len(video_ids) != len(p):
        raise ValueError(f"{len(video_ids)} video ids for {len(p)} predictions")
    margin = np.abs(p - 0.5)
    order = np.lexsort((np.arange(len(p)), margin, -u))[: max(int(n), 0)]
    out = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "video_id": np.asarray(video_ids, dtype=object)[order],
                        "p_fake": p[order], "predicted": (p[order] > 0.5).astype(np.int64),
                        "uncertainty": u[order], "margin": margin[order]})
    if y is not None:
        yy = np.asarray(y, dtype=np.int64)[order]
        out.insert(2, "label", yy)
        out["correct"] = out["predicted"] == yy
    return out


def triage_summary(y: Any, p_models: Any, uncertainty: Any = None, target_risk: float = 0.05,
                   vote: str = "mean", threshold: float = 0.5) -> dict[str, Any]:
    """n, n_models, error_rate, aurc, random_aurc, coverage_at_target (risk <= target_risk) and a reason when NaN.

    ``uncertainty`` None: the spread over the members. ``vote``: mean | weighted (uncertainty_weighted_vote).
    """
    if vote not in ("mean", "weighted"):
        raise ValueError(f"vote must be mean or weighted, got {vote!r}")
    pm = _members(p_models)
    y = np.asarray(y, dtype=np.int64).ravel()
    if len(y) != pm.shape[0] or len(y) == 0:
        raise ValueError(f"{len(y)} labels for {pm.shape[0]} videos (need at least one)")
    p, spread = mean_and_spread(pm)
    if vote == "weighted":
        p = uncertainty_weighted_vote(pm)
    u = spread if uncertainty is None else np.asarray(uncertainty, dtype=np.float64)
    out: dict[str, Any] = {"n": int(len(y)), "n_models": int(pm.shape[1]), "vote": vote,
                           "error_rate": random_aurc(y, p, threshold), "random_aurc": random_aurc(y, p, threshold),
                           "aurc": float("nan"), "target_risk": float(target_risk),
                           "coverage_at_target": float("nan"), "reason": None}
    if not np.all(np.isfinite(u)):
        out["reason"] = ("a single model: no spread across models to rank by" if pm.shape[1] < 2
                         else "uncertainty holds NaN/inf")
        return out
    curve = risk_coverage(y, p, u, threshold)
    out.update(aurc=aurc(curve), coverage_at_target=coverage_at_risk(curve, target_risk))
    return out
