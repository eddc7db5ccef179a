"""Calibration and decision thresholds, each fitted at the level it is applied and on data the scored fold never touched.

A fold's calibrators are fitted on that fold model's predictions on its own inner selection part
(workbench.data.splits), then applied to its outer fold: video-level calibrators on video P(Fake), frame-level
ones on frame P(Fake). Not on the other folds' out-of-fold predictions: those come from models that
trained on the scored fold's clips, so the scored fold's labels would reach its own calibrator (the
leakage test in tests/test_honest.py permutes an outer fold's labels and checks nothing fitted for it moves).
Labels are 0 = REAL, 1 = FAKE; a sample is FAKE when p_fake > threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, precision_recall_curve

from workbench.evaluation.metrics import brier, expected_calibration_error

CALIBRATION_METHODS = ("temperature", "platt", "f1_threshold")
LEVELS = ("video", "frame")
_EPS = 1e-6


def _logit(p: Any) -> np.ndarray:
    """log(p / (1 - p)) with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _two_classes(y: np.ndarray, who: str) -> None:
    """Fail clearly when a calibrator is asked to fit on one class."""
    if np.unique(y).size < 2:
        raise ValueError(f"{who}: fitting data holds one class only ({np.unique(y).tolist()}); need REAL and FAKE")


def fit_f1_threshold(y: Any, p: Any) -> float:
    """The threshold t maximising F1 of the rule `p > t` on (y, p), from precision_recall_curve."""
    y = np.ravel(np.asarray(y)).astype(int)
    p = np.ravel(np.asarray(p, dtype=np.float64))
    _two_classes(y, "fit_f1_threshold")
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = float(thresholds[int(np.argmax(f1))])  # curve predicts FAKE for p >= best
    below = p[p < best]
    # the same decisions under the strict rule p > t: a t between `best` and the next lower score
    return float((best + below.max()) / 2) if below.size else float(max(best - _EPS, 0.0))


@dataclass
class PlattScaler:
    """Platt scaling: a logistic regression on logit(P(Fake))."""

    C: float = 1e6  # inverse regularisation (large: plain maximum likelihood)
    coef_: float = field(default=math.nan, init=False)
    intercept_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "PlattScaler":
        """Fit slope and intercept on labels y and probabilities p."""
        y = np.ravel(np.asarray(y)).astype(int)
        _two_classes(y, "PlattScaler.fit")
        model = LogisticRegression(C=self.C, max_iter=1000).fit(_logit(p)[:, None], y)
        self.coef_, self.intercept_ = float(model.coef_[0, 0]), float(model.intercept_[0])
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated P(Fake)."""
        if math.isnan(self.coef_):
            raise RuntimeError("PlattScaler.transform before fit")
        return expit(self.coef_ * _logit(p) + self.intercept_)


@dataclass
class TemperatureScaler:
    """Temperature scaling: P(Fake) = sigmoid(logit / T) with the single T minimising the NLL."""

    bounds: tuple[float, float] = (1e-2, 1e2)
    temperature_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "TemperatureScaler":
        """Fit T on labels y and probabilities p (bounded search over log T)."""
        y = np.ravel(np.asarray(y)).astype(np.float64)
        z = _logit(p)

        def nll(log_t: float) -> float:
            s = z / math.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, s) - y * s))

        lo, hi = (math.log(b) for b in self.bounds)
        self.temperature_ = float(math.exp(minimize_scalar(nll, bounds=(lo, hi), method="bounded").x))
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated P(Fake)."""
        if math.isnan(self.temperature_):
            raise RuntimeError("TemperatureScaler.transform before fit")
        return expit(_logit(p) / self.temperature_)


@dataclass
class F1Threshold:
    """A decision threshold fitted for F1; probabilities stay as they are."""

    threshold_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "F1Threshold":
        """Fit the threshold with fit_f1_threshold."""
        self.threshold_ = fit_f1_threshold(y, p)
        return self

    def transform(self, p: Any) -> np.ndarray:
        """P(Fake) unchanged."""
        return np.asarray(p, dtype=np.float64)


def make_calibrator(method: str) -> PlattScaler | TemperatureScaler | F1Threshold:
    """A fresh calibrator: platt | temperature | f1_threshold."""
    makers = {"platt": PlattScaler, "temperature": TemperatureScaler, "f1_threshold": F1Threshold}
    if method not in makers:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {sorted(makers)}")
    return makers[method]()


@dataclass
class Calibrated:
    """Per-fold calibration of one level: the scored table with `p_fake_cal` and `threshold_cal` columns."""

    method: str
    level: str  # video | frame
    table: pd.DataFrame
    fitted: dict[int, Any]  # fold -> calibrator fitted on that fold's inner part


def calibrate_per_fold(fit: pd.DataFrame, apply: pd.DataFrame, method: str, level: str = "video",
                       threshold: float = 0.5) -> Calibrated:
    """For each fold k: fit on the rows of `fit` with fold k (its inner part), apply to the rows of `apply` with fold k.

    Both tables have label, p_fake and fold columns, at the same level (videos with videos, frames with frames).
    """
    for name, df in (("fit", fit), ("apply", apply)):
        missing = {"label", "p_fake", "fold"} - set(df.columns)
        if missing:
            raise ValueError(f"calibrate_per_fold: the {name} table lacks columns {sorted(missing)}")
    out = apply.copy()
    out["p_fake_cal"] = np.nan
    out["threshold_cal"] = float(threshold)
    fitted = {}
    for k in sorted(int(f) for f in apply["fold"].unique()):
        part = fit[fit["fold"] == k]
        if part.empty:
            raise ValueError(f"calibrate_per_fold: fold {k} has no inner predictions to fit a {level}-level calibrator on")
        cal = make_calibrator(method).fit(part["label"].to_numpy(), part["p_fake"].to_numpy())
        sel = out["fold"] == k
        out.loc[sel, "p_fake_cal"] = cal.transform(out.loc[sel, "p_fake"].to_numpy())
        out.loc[sel, "threshold_cal"] = cal.threshold_ if isinstance(cal, F1Threshold) else threshold
        fitted[k] = cal
    return Calibrated(method, level, out, fitted)


def _decision_row(y: np.ndarray, p: np.ndarray, thr: Any, prefix: str) -> dict[str, float]:
    """Accuracy, balanced accuracy and F1 of `p > thr` (thr scalar or per row)."""
    pred = (p > np.asarray(thr, dtype=np.float64)).astype(int)
    return {f"{prefix}acc": float(accuracy_score(y, pred)),
            f"{prefix}balanced_acc": float(balanced_accuracy_score(y, pred)),
            f"{prefix}f1": float(f1_score(y, pred, zero_division=0))}


def _level_row(df: pd.DataFrame, col: str, thr: Any, level: str, n_bins: int) -> dict[str, float]:
    """ECE, Brier, NLL and decisions of one level's (calibrated) P(Fake); REAL rows' P(Fake) and share above threshold."""
    y, p = df["label"].to_numpy().astype(int), df[col].to_numpy(dtype=np.float64)
    t = np.broadcast_to(np.asarray(thr, dtype=np.float64), p.shape)
    real = y == 0
    return {f"{level}_ece": expected_calibration_error(y, p, n_bins), f"{level}_brier": brier(y, p),
            f"{level}_nll": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
            **_decision_row(y, p, t, f"{level}_"), f"{level}_threshold_mean": float(np.mean(t)),
            f"{level}_real_pfake_mean": float(p[real].mean()) if real.any() else math.nan,
            f"{level}_real_above_thr": float((p[real] > t[real]).mean()) if real.any() else math.nan}


def calibration_report(fits: dict[str, pd.DataFrame], applies: dict[str, pd.DataFrame],
                       methods: Sequence[str] = CALIBRATION_METHODS, n_bins: int = 15,
                       threshold: float = 0.5) -> pd.DataFrame:
    """One row per method (and `uncalibrated`): each level's scores, its calibrators fitted per fold at that level.

    `fits[level]` holds the inner-part predictions (with fold), `applies[level]` the outer-fold ones, for
    level in video and frame (either may be missing).
    """
    levels = [lv for lv in LEVELS if lv in applies and applies[lv] is not None and len(applies[lv])]
    rows: dict[str, dict[str, float]] = {"uncalibrated": {}}
    for lv in levels:
        rows["uncalibrated"].update(_level_row(applies[lv], "p_fake", threshold, lv, n_bins))
    for method in methods:
        rows[method] = {}
        for lv in levels:
            cal = calibrate_per_fold(fits[lv], applies[lv], method, lv, threshold)
            rows[method].update(_level_row(cal.table, "p_fake_cal", cal.table["threshold_cal"].to_numpy(), lv, n_bins))
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out


__all__ = ["CALIBRATION_METHODS", "Calibrated", "F1Threshold", "LEVELS", "PlattScaler", "TemperatureScaler",
           "calibrate_per_fold", "calibration_report", "fit_f1_threshold", "make_calibrator"]
