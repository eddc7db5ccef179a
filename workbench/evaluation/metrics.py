"""Evaluation metrics: video-level scores, per-frame bias scores, calibration and bootstrap CIs.

Classes are 0 = REAL and 1 = FAKE (the positive class); ``p`` is always P(Fake). A sample is
predicted FAKE when ``p > threshold`` (strictly, like argmax of two softmax outputs at 0.5, which
picks REAL on a tie). Precision, recall and F1 follow scikit-learn with ``zero_division=0``;
threshold-free scores (roc_auc, ap, eer) are NaN when only one class is present.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from workbench.core.metric_names import AGGREGATION_RULES
from workbench.evaluation.localization import localization_metrics


# ---------------------------------------------------------------------------- input checks
def _flat(x: Any) -> np.ndarray:
    """A 1-D array; a list/tuple of per-video arrays is concatenated."""
    if isinstance(x, (list, tuple)) and len(x) and all(np.ndim(v) >= 1 for v in x):
        return np.concatenate([np.ravel(np.asarray(v)) for v in x])
    return np.ravel(np.asarray(x))


def _check(y_true: Any, p: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (labels int 0/1, probabilities float) of equal, non-zero length."""
    y = _flat(y_true)
    prob = _flat(p).astype(np.float64)
    if y.size == 0 or prob.size == 0:
        raise ValueError(f"{what}: empty input (no labels or no probabilities)")
    if y.size != prob.size:
        raise ValueError(f"{what}: {y.size} labels but {prob.size} probabilities")
    if np.isnan(prob).any():
        raise ValueError(f"{what}: {int(np.isnan(prob).sum())} of {prob.size} probabilities are NaN")
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError(f"{what}: probabilities must lie in [0, 1], got range [{prob.min()}, {prob.max()}]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 (REAL) or 1 (FAKE), got {sorted(set(np.unique(y).tolist()))}")
    return y.astype(np.int64), prob


# ---------------------------------------------------------------------------- video level
def equal_error_rate(y_true: Any, p_fake: Any) -> float:
    """EER: the ROC point where FPR = FNR, linearly interpolated between ROC vertices (NaN for one class)."""
    y, p = _check(y_true, p_fake, "equal_error_rate")
    if np.unique(y).size < 2:
        return math.nan
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1.0 - tpr
    d = fnr - fpr  # non-increasing from +1 (fpr=0, tpr=0) to -1 (fpr=1, tpr=1)
    i = int(np.argmax(d <= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def video_metrics(y_true: Any, p_fake: Any, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC, balanced acc, MCC, AP, EER and the confusion counts."""
    y, p = _check(y_true, p_fake, "video_metrics")
    pred = (p > threshold).astype(np.int64)
    two_classes = np.unique(y).size == 2
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    with warnings.catch_warnings():  # one-class input: sklearn warns about classes missing from y_true, or
        # (y_true and y_pred the same one class) about a single label; balanced accuracy and MCC are still defined
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        warnings.filterwarnings("ignore", message="A single label was found in 'y_true' and 'y_pred'",
                                category=UserWarning)
        balanced = balanced_accuracy_score(y, pred)
        mcc = matthews_corrcoef(y, pred)
    return {
        "acc": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else math.nan,
        "balanced_acc": float(balanced),
        "mcc": float(mcc),
        "ap": float(average_precision_score(y, p)) if two_classes else math.nan,
        "eer": equal_error_rate(y, p),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
    }


# ---------------------------------------------------------------------------- frame level
def frame_metrics(frame_labels: Any, frame_p_fake: Any, threshold: float = 0.5) -> dict[str, float]:
    """Per-frame accuracy overall and per class, mean P(Fake) per class, share of REAL frames above threshold."""
    y, p = _check(frame_labels, frame_p_fake, "frame_metrics")
    real, fake = p[y == 0], p[y == 1]

    def share(mask: np.ndarray) -> float:
        return float(mask.mean()) if mask.size else math.nan

    return {
        "frame_acc": float(((p > threshold).astype(np.int64) == y).mean()),
        "real_frame_acc": share(real <= threshold),
        "real_frame_pfake_mean": float(real.mean()) if real.size else math.nan,
        "real_frame_above_05": share(real > threshold),
        "fake_frame_acc": share(fake > threshold),
        "fake_frame_pfake_mean": float(fake.mean()) if fake.size else math.nan,
        "n_real_frames": int(real.size),
        "n_fake_frames": int(fake.size),
    }


def _auc_ap(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    if np.unique(y).size < 2:
        return math.nan, math.nan
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def true_frame_metrics(frame_labels: Any, p_fake: Any, video_labels: Any = None,
                       threshold: float = 0.5) -> dict[str, float]:
    """Per-frame P(Fake) scored against the true per-frame labels (keys and modes: TRUE_FRAME_MODES).

    ``video_labels`` (one per frame, its video's label) adds the scores inside FAKE videos only; NaN
    where a score is undefined (one class, or no video labels).
    """
    y, p = _check(frame_labels, p_fake, "true_frame_metrics")
    real, fake = p[y == 0], p[y == 1]
    auc, ap = _auc_ap(y, p)
    pred = (p > threshold).astype(np.int64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # one class: balanced accuracy is still defined
        balanced = float(balanced_accuracy_score(y, pred))
    out = {
        "true_frame_roc_auc": auc,
        "true_frame_ap": ap,
        "true_frame_eer": equal_error_rate(y, p),
        "true_frame_acc": float((pred == y).mean()),
        "true_frame_balanced_acc": balanced,
        "true_real_frame_acc": float((real <= threshold).mean()) if real.size else math.nan,
        "true_real_frame_pfake_mean": float(real.mean()) if real.size else math.nan,
        "true_real_frame_above_05": float((real > threshold).mean()) if real.size else math.nan,
        "true_fake_frame_acc": float((fake > threshold).mean()) if fake.size else math.nan,
        "true_fake_frame_pfake_mean": float(fake.mean()) if fake.size else math.nan,
        "true_frame_roc_auc_in_fake": math.nan,
        "true_real_frame_pfake_mean_in_fake": math.nan,
    }
    if video_labels is not None:
        v, _ = _check(video_labels, p, "true_frame_metrics (video labels)")
        if np.any((v == 0) & (y == 1)):
            raise ValueError(f"true_frame_metrics: {int(((v == 0) & (y == 1)).sum())} frame(s) labelled "
                             "manipulated belong to REAL videos")
        inside = v == 1
        out["true_frame_roc_auc_in_fake"] = _auc_ap(y[inside], p[inside])[0]
        genuine = p[inside & (y == 0)]
        out["true_real_frame_pfake_mean_in_fake"] = float(genuine.mean()) if genuine.size else math.nan
    return out


def aggregate_frames(p: np.ndarray, rule: str, k: int | float = 0.1) -> float:
    """One video score from per-frame P(Fake): mean | majority (share > 0.5) | max | topk_mean | median.

    topk_mean averages the top ceil(k * n) frames when k < 1, else the top int(k) frames (at least 1).
    """
    x = np.ravel(np.asarray(p, dtype=np.float64))
    if x.size == 0:
        raise ValueError("aggregate_frames: no frames")
    if rule == "mean":
        return float(x.mean())
    if rule == "majority":
        return float((x > 0.5).mean())
    if rule == "max":
        return float(x.max())
    if rule == "median":
        return float(np.median(x))
    if rule == "topk_mean":
        if k <= 0:
            raise ValueError(f"aggregate_frames: k must be > 0, got {k}")
        n = math.ceil(k * x.size) if k < 1 else int(k)
        n = min(max(n, 1), x.size)
        return float(np.sort(x)[-n:].mean())
    raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {list(AGGREGATION_RULES)}")


# ---------------------------------------------------------------------------- calibration
def reliability_curve(y: Any, p: Any, n_bins: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fake rate, mean P(Fake), count) per non-empty uniform bin; same bins as sklearn's calibration_curve.

    Binned here (with calibration_curve's rule) because calibration_curve returns no counts and
    refuses one-class input.
    """
    y_, p_ = _check(y, p, "reliability_curve")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p_)
    total = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p_, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y_, minlength=n_bins)
    keep = total > 0
    return sum_y[keep] / total[keep], sum_p[keep] / total[keep], total[keep]


def expected_calibration_error(y: Any, p: Any, n_bins: int = 15) -> float:
    """ECE of P(Fake): sum over uniform bins of (bin share) * |fake rate - mean P(Fake)|."""
    prob_true, prob_pred, counts = reliability_curve(y, p, n_bins)
    return float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))


def brier(y: Any, p: Any) -> float:
    """Brier score of P(Fake) (scikit-learn's brier_score_loss, FAKE positive)."""
    y_, p_ = _check(y, p, "brier")
    return float(brier_score_loss(y_, p_, pos_label=1))


# ---------------------------------------------------------------------------- one evaluation
def evaluation_metrics(videos: Any, frames: Any, localization: Any = None) -> dict[str, float]:
    """Every metric an evaluation reports, from its video table (label, p_fake) and frame table (label, p_fake
    and, when present, frame_label).

    Video-level scores, ECE and Brier of the video P(Fake), the frame-level scores, the scores against the
    true per-frame labels (`true_*`) when the frame table has them, and temporal localization (`loc_*`,
    workbench.evaluation.localization) when a LocalizationConfig is given: only for tables of every frame of each video.
    The trainer adds the objective's `loss`; its keys are the evaluated names of
    workbench.core.metric_names (a test checks the two agree).
    """
    y, p = np.asarray(videos["label"]), np.asarray(videos["p_fake"], dtype=np.float64)
    out = video_metrics(y, p)
    out["ece"] = expected_calibration_error(y, p)
    out["brier"] = brier(y, p)
    fy, fp = np.asarray(frames["label"]), np.asarray(frames["p_fake"], dtype=np.float64)
    out.update(frame_metrics(fy, fp))
    if "frame_label" in frames:
        out.update(true_frame_metrics(np.asarray(frames["frame_label"]), fp, fy))
    if localization is not None:
        out.update(localization_metrics(pd.DataFrame(frames), localization))
    return out


# ---------------------------------------------------------------------------- comparing two conditions
def corrected_ttest(diffs: Sequence[float], test_train_ratio: float, alpha: float = 0.05) -> dict[str, float]:
    """Corrected resampled t-test (Nadeau & Bengio 2003) of per-fold paired differences; valid at K = 5.

    The folds' training sets overlap, so the per-fold differences are correlated and their naive variance
    s^2 / K understates the variance of their mean; Nadeau and Bengio replace 1/K by 1/K + n_test/n_train
    (for K-fold CV n_test/n_train = 1/(K-1)). Returns the mean difference, the two-sided (1 - alpha) interval
    mean ± t_{K-1} * sqrt((1/K + ratio) s^2), its half-width (the smallest difference this comparison can
    resolve), the t statistic and the p-value. NaN everywhere for fewer than two folds; a zero variance gives
    a zero-width interval and p = 1 (mean 0) or 0.
    """
    d = np.ravel(np.asarray(diffs, dtype=np.float64))
    d = d[~np.isnan(d)]
    k = d.size
    nan = {"mean": math.nan, "lo": math.nan, "hi": math.nan, "half_width": math.nan, "t": math.nan, "p": math.nan,
           "n": k}
    if k < 2:
        return {**nan, "mean": float(d.mean()) if k else math.nan}
    if not 0 < alpha < 1 or test_train_ratio < 0:
        raise ValueError(f"corrected_ttest: need 0 < alpha < 1 and test_train_ratio >= 0, got {alpha}, {test_train_ratio}")
    mean, var = float(d.mean()), float(d.var(ddof=1))
    se = math.sqrt((1.0 / k + test_train_ratio) * var)
    half = float(stats.t.ppf(1 - alpha / 2, k - 1) * se)
    if se == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), k - 1))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "half_width": half, "t": float(t), "p": p, "n": k}


def fold_auc_permutation(folds: Sequence[tuple[Any, Any]], n_perm: int = 5000, seed: int = 0) -> dict[str, float]:
    """Mean per-fold ROC-AUC of out-of-fold scores and its one-sided permutation p-value against chance.

    `folds` holds (labels, scores) per fold. Labels are permuted within each fold (each fold keeps its class
    counts and its own model's scores), so the p-value asks whether the mean AUC could arise with no link
    between scores and labels: (1 + #{permuted mean >= observed}) / (1 + n_perm). AUC per fold via ranks
    (Mann-Whitney U, ties averaged), identical to sklearn's roc_auc_score; folds with one class are skipped.
    """
    rng = np.random.default_rng(seed)
    obs, null = [], []
    for y, s in folds:
        y, s = _check(y, s, "fold_auc_permutation")
        n1 = int(y.sum())
        n0 = y.size - n1
        if n1 == 0 or n0 == 0:
            continue
        ranks = stats.rankdata(s)
        auc = lambda pos: ((pos * ranks).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * n0)  # noqa: E731  (U / n1 n0)
        obs.append(float(auc(y == 1)))
        null.append(auc(rng.permuted(np.broadcast_to(y == 1, (n_perm, y.size)), axis=1)))  # (n_perm,)
    if not obs:
        return {"mean_auc": math.nan, "p": math.nan, "folds": 0}
    observed = float(np.mean(obs))
    null_mean = np.mean(null, axis=0)
    p = float((1 + np.sum(null_mean >= observed - 1e-12)) / (1 + n_perm))
    return {"mean_auc": observed, "p": p, "folds": len(obs), "null_mean": float(null_mean.mean()),
            "null_q95": float(np.quantile(null_mean, 0.95))}


# ---------------------------------------------------------------------------- uncertainty
def bootstrap_ci(
    values_a: Sequence[float],
    values_b: Sequence[float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile-bootstrap CI of the mean of a, or of the paired differences a - b."""
    a = np.ravel(np.asarray(values_a, dtype=np.float64))
    d = a if values_b is None else a - _paired(a, values_b)
    if d.size == 0:
        raise ValueError("bootstrap_ci: no values")
    if np.isnan(d).any():
        raise ValueError(f"bootstrap_ci: {int(np.isnan(d).sum())} of {d.size} values are NaN")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"bootstrap_ci: need 0 < alpha < 1 and n_boot >= 1, got alpha={alpha}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    chunk = max(1, 5_000_000 // d.size)  # bound memory of the (n_boot, n) index matrix
    means = np.concatenate(
        [d[rng.integers(0, d.size, size=(min(chunk, n_boot - s), d.size))].mean(1) for s in range(0, n_boot, chunk)]
    )
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def _paired(a: np.ndarray, values_b: Sequence[float]) -> np.ndarray:
    """b as an array of a's length (paired samples)."""
    b = np.ravel(np.asarray(values_b, dtype=np.float64))
    if b.size != a.size:
        raise ValueError(f"bootstrap_ci: paired values differ in length ({a.size} vs {b.size})")
    return b


__all__ = [
    "AGGREGATION_RULES",
    "aggregate_frames",
    "bootstrap_ci",
    "brier",
    "corrected_ttest",
    "evaluation_metrics",
    "equal_error_rate",
    "expected_calibration_error",
    "fold_auc_permutation",
    "frame_metrics",
    "reliability_curve",
    "true_frame_metrics",
    "video_metrics",
]
