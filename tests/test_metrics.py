"""Evaluation metrics checked against scikit-learn and hand computation."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from workbench.core.metric_names import metric_mode
from workbench.evaluation.metrics import (
    aggregate_frames,
    bootstrap_ci,
    brier,
    expected_calibration_error,
    frame_metrics,
    reliability_curve,
    video_metrics,
)


def _random(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    return y, p


def test_video_metrics_match_sklearn():
    y, p = _random()
    m = video_metrics(y, p, threshold=0.5)
    pred = (p > 0.5).astype(int)
    assert m["acc"] == pytest.approx(accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["balanced_acc"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert m["ap"] == pytest.approx(average_precision_score(y, p))
    assert m["tp"] == int(((pred == 1) & (y == 1)).sum())
    assert m["tn"] == int(((pred == 0) & (y == 0)).sum())
    assert m["fp"] + m["fn"] + m["tp"] + m["tn"] == len(y)


def test_eer_perfect_random_and_hand_example():
    y = np.array([0, 0, 0, 1, 1, 1])
    assert video_metrics(y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))["eer"] == 0.0
    rng = np.random.default_rng(1)
    y_r = rng.integers(0, 2, 20000)
    assert video_metrics(y_r, rng.random(20000))["eer"] == pytest.approx(0.5, abs=0.02)
    # one REAL above one FAKE of 4: FPR = FNR = 0.5 at the crossing
    assert video_metrics([0, 0, 1, 1], [0.1, 0.8, 0.6, 0.9])["eer"] == pytest.approx(0.5)


def test_one_class_input_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = video_metrics([0, 0, 0], [0.2, 0.7, 0.1])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["ap"]) and math.isnan(m["eer"])
    assert m["acc"] == pytest.approx(2 / 3)
    assert m["fp"] == 1 and m["tn"] == 2


def test_single_label_input_is_quiet_and_the_filter_stays_local():
    for y, p in (([0, 0, 0], [0.1, 0.2, 0.3]), ([1, 1], [0.9, 0.8])):  # y_true and y_pred one and the same class
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = video_metrics(y, p)
        assert m["acc"] == 1.0 and m["balanced_acc"] == 1.0 and m["mcc"] == 0.0
        assert m["tn"] + m["tp"] == len(y) and m["fp"] == m["fn"] == 0
    with pytest.warns(UserWarning, match="single label"):  # silenced inside video_metrics only
        matthews_corrcoef([0, 0], [0, 0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="empty"):
        video_metrics([], [])
    with pytest.raises(ValueError, match="NaN"):
        video_metrics([0, 1], [0.2, float("nan")])
    with pytest.raises(ValueError, match="labels"):
        video_metrics([0, 1], [0.2])


def test_frame_metrics_hand_example():
    labels = np.array([0, 0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.7, 0.2, 0.9, 0.4])
    m = frame_metrics(labels, p)
    assert m["frame_acc"] == pytest.approx(3 / 6)
    assert m["real_frame_acc"] == pytest.approx(0.5)
    assert m["real_frame_pfake_mean"] == pytest.approx(0.4)
    assert m["real_frame_above_05"] == pytest.approx(0.5)
    assert m["fake_frame_acc"] == pytest.approx(0.5)
    assert m["fake_frame_pfake_mean"] == pytest.approx(0.65)
    only_real = frame_metrics([np.zeros(2), np.zeros(1)], [np.array([0.2, 0.9]), np.array([0.1])])
    assert math.isnan(only_real["fake_frame_acc"]) and math.isnan(only_real["fake_frame_pfake_mean"])
    assert only_real["real_frame_above_05"] == pytest.approx(1 / 3)


def test_metric_mode():
    assert metric_mode("val_acc") == "max"
    assert metric_mode("val_loss") == "min"
    assert metric_mode("train_eer") == "min" and metric_mode("outer_acc") == "max" and metric_mode("test_ece") == "min"
    assert metric_mode("val_real_frame_pfake_mean") == "min"
    assert metric_mode("fake_frame_pfake_mean") == "max"
    with pytest.raises(KeyError, match="known"):
        metric_mode("val_nonsense")


def test_aggregate_frames_rules():
    p = np.array([0.1, 0.9, 0.6, 0.3, 0.8])
    assert aggregate_frames(p, "mean") == pytest.approx(0.54)
    assert aggregate_frames(p, "majority") == pytest.approx(3 / 5)
    assert aggregate_frames(p, "max") == pytest.approx(0.9)
    assert aggregate_frames(p, "median") == pytest.approx(0.6)
    assert aggregate_frames(p, "topk_mean", k=2) == pytest.approx(0.85)
    assert aggregate_frames(p, "topk_mean", k=0.4) == pytest.approx(0.85)
    assert aggregate_frames(p, "topk_mean", k=0.01) == pytest.approx(0.9)  # at least one frame
    with pytest.raises(ValueError, match="topk_mean"):
        aggregate_frames(p, "vote")


def test_calibration_matches_sklearn_and_hand_ece():
    y, p = _random(seed=3)
    prob_true, prob_pred, counts = reliability_curve(y, p, n_bins=10)
    sk_true, sk_pred = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(prob_true, sk_true)
    np.testing.assert_allclose(prob_pred, sk_pred)
    assert counts.sum() == len(y)
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(
        float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred)))
    )
    # hand example: two bins of 2 samples, |0.5-0.15| and |1-0.85|
    assert expected_calibration_error([0, 1, 1, 1], [0.1, 0.2, 0.8, 0.9], n_bins=2) == pytest.approx(0.25)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p))


def test_bootstrap_ci():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 400)
    mean, lo, hi = bootstrap_ci(a, n_boot=1000, seed=0)
    assert mean == pytest.approx(a.mean())
    assert lo < 1.0 < hi and hi - lo < 0.4
    b = a - 0.5 + rng.normal(0, 0.01, 400)
    d_mean, d_lo, d_hi = bootstrap_ci(a, b, n_boot=1000, seed=0)
    assert d_lo < 0.5 < d_hi and d_mean == pytest.approx(0.5, abs=0.01)
    assert bootstrap_ci(a, n_boot=200, seed=5) == bootstrap_ci(a, n_boot=200, seed=5)
    with pytest.raises(ValueError):
        bootstrap_ci(a, b[:10])
