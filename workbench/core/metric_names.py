"""The names of the metrics and which way each improves: what a monitor may watch, known before any scoring.

The scoring functions live in workbench.evaluation; tests check that every key they return is named here.
"""
from __future__ import annotations

import math
from typing import Any

AGGREGATION_RULES = ("mean", "majority", "max", "topk_mean", "median")


# "max" where higher is better, "min" where lower is better; names without a val_/outer_/test_/train_ prefix.
METRIC_MODES: dict[str, str] = {
    # objective terms
    "loss": "min",
    "cls": "min",
    "temporal": "min",
    # video-level
    "acc": "max",
    "precision": "max",
    "recall": "max",
    "f1": "max",
    "roc_auc": "max",
    "balanced_acc": "max",
    "mcc": "max",
    "ap": "max",
    "eer": "min",
    "tp": "max",
    "tn": "max",
    "fp": "min",
    "fn": "min",
    # calibration
    "ece": "min",
    "brier": "min",
    # frame-level
    "frame_acc": "max",
    "real_frame_acc": "max",
    "real_frame_pfake_mean": "min",
    "real_frame_above_05": "min",
    "fake_frame_acc": "max",
    "fake_frame_pfake_mean": "max",
}


# frame-level scores against the true per-frame labels (partial fakes); `true_` keeps them apart from the
# real_frame_* scores above, which are frames of REAL videos
TRUE_FRAME_MODES: dict[str, str] = {
    "true_frame_roc_auc": "max",
    "true_frame_ap": "max",
    "true_frame_eer": "min",
    "true_frame_acc": "max",
    "true_frame_balanced_acc": "max",
    "true_real_frame_acc": "max",
    "true_real_frame_pfake_mean": "min",
    "true_real_frame_above_05": "min",
    "true_fake_frame_acc": "max",
    "true_fake_frame_pfake_mean": "max",
    "true_frame_roc_auc_in_fake": "max",
    "true_real_frame_pfake_mean_in_fake": "min",
}


AP_IOUS = (0.5, 0.75, 0.9, 0.95)  # AV-Deepfake1M's localization protocol (workbench.evaluation.localization)


AR_NS = (50, 30, 20, 10, 5)


def iou_key(t: float) -> str:
    return f"{int(round(100 * t)):02d}"


# every key localization.localization_metrics returns (temporal localization on every frame of each video)
LOCALIZATION_MODES: dict[str, str] = {
    **{f"loc_ap_iou{iou_key(t)}": "max" for t in AP_IOUS},
    **{f"loc_ar_at{n}": "max" for n in AR_NS},
    "loc_score": "max",
}


COUNT_KEYS = ("n_real_frames", "n_fake_frames")  # sizes, not scores: reported, never monitored


PREFIXES = ("val_", "outer_", "test_", "train_")  # selection part, scoring fold, held-out test, training clips


TRAIN_METRICS = ("train_loss", "train_acc")  # what a training epoch reports


METRIC_MODES.update(TRUE_FRAME_MODES)
METRIC_MODES.update(LOCALIZATION_MODES)
OBJECTIVE_TERMS = ("loss", "cls", "temporal")  # what the objective reports; of these the trainer evaluates `loss`


def metric_mode(name: str) -> str:
    """'max' or 'min' for a metric name, ignoring a val_/outer_/test_/train_ prefix."""
    base = name
    for prefix in PREFIXES:
        if base.startswith(prefix):
            base = base[len(prefix):]
            break
    if base not in METRIC_MODES:
        raise KeyError(f"unknown metric {name!r}; known (optionally prefixed {'/'.join(PREFIXES)}): "
                       f"{sorted(METRIC_MODES)}")
    return METRIC_MODES[base]


def valid_monitors() -> set[str]:
    """Names early stopping and checkpointing may watch: the training epoch's, and every evaluated metric on
    the selection part (`val_loss` and `val_` + each scored metric); the localization keys need a selection
    part scored on every frame (`data.eval_clip: full`)."""
    scored = {f"val_{k}" for k in METRIC_MODES if k not in OBJECTIVE_TERMS}
    return set(TRAIN_METRICS) | {"val_loss"} | scored


def as_float(v: Any) -> float:
    """A metric read back from JSON: None (a NaN written as null) becomes NaN."""
    return math.nan if v is None else float(v)
