"""The held-out test in parts and the per-fake-type table, on hand-made predictions with hand-computed answers."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.analysis.breakdown import type_scores
from workbench.evaluation.parts import clip_parts, part_metrics


def _tables():
    # short REAL r1 (0.2), r2 (0.6); short FAKE f1 (0.7), f2 (0.5); partial p1 (frames 0,0,1,1); long REAL L (0.9)
    videos = pd.DataFrame({"video_id": ["r1", "r2", "f1", "f2", "p1", "L"], "label": [0, 0, 1, 1, 1, 0],
                           "p_fake": [0.2, 0.6, 0.7, 0.5, 0.55, 0.9]})
    frames = pd.DataFrame({
        "video_id": ["r1", "r2", "f1", "f2"] + ["p1"] * 4 + ["L"] * 4,
        "label": [0, 0, 1, 1] + [1] * 4 + [0] * 4,
        "frame_label": [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0],
        "p_fake": [0.2, 0.6, 0.7, 0.5, 0.1, 0.6, 0.5, 0.9, 0.9, 0.4, 0.8, 0.7]})
    n_frames = {"r1": 40, "r2": 50, "f1": 45, "f2": 50, "p1": 48, "L": 600}
    return videos, frames, n_frames


def test_clip_parts_by_length_and_frame_labels():
    videos, frames, n_frames = _tables()
    parts = clip_parts(videos, frames, n_frames, pool_max_frames=60)
    assert parts.to_dict() == {"r1": "short", "r2": "short", "f1": "short", "f2": "short", "p1": "partial",
                               "L": "long"}
    # a clip exactly as long as the pool's longest is not long
    assert clip_parts(videos, frames, {**n_frames, "L": 60}, 60)["L"] == "short"


def test_part_metrics_hand_computed():
    videos, frames, n_frames = _tables()
    m = part_metrics(videos, frames, n_frames, pool_max_frames=60)
    assert set(m) == {"short", "partial", "long"}
    s = m["short"]
    assert (s["n_real"], s["n_fake"]) == (2, 2)
    assert s["roc_auc"] == pytest.approx(0.75)  # FAKE above REAL in 3 of the 4 pairs
    assert s["acc"] == pytest.approx(0.5)  # 0.2 ok, 0.6 wrong, 0.7 ok, 0.5 wrong (P > 0.5 is FAKE)
    p = m["partial"]
    assert p["true_frame_roc_auc_in_fake"] == pytest.approx(0.75)  # fake frames 0.5, 0.9 vs real 0.1, 0.6
    assert math.isnan(p["roc_auc"]) and p["n_fake"] == 1
    lg = m["long"]
    assert lg["real_frame_pfake_mean"] == pytest.approx(0.7) and lg["real_frame_above_05"] == pytest.approx(0.75)
    assert math.isnan(lg["roc_auc"]) and lg["video_ids"] == ["L"]


def test_type_scores_auc_and_exact_p_values():
    videos = pd.DataFrame({"video_id": ["r1", "r2", "r3", "a1", "a2", "b1", "b2", "c1", "c2", "c3", "c4"],
                           "label": [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
                           "p_fake": [0.1, 0.2, 0.3, 0.4, 0.5, 0.15, 0.25, 0.6, 0.7, 0.8, 0.9]})
    types = pd.Series({"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C", "c3": "C", "c4": "C"})
    t = type_scores(videos, types).set_index("fake_type")
    assert t.loc["A", "roc_auc_vs_real"] == pytest.approx(1.0)
    assert t.loc["A", "p_value"] == pytest.approx(1 / 10)  # exact: 1 of C(5, 2) orderings puts both on top
    assert not t.loc["A", "above_chance"]
    assert t.loc["B", "roc_auc_vs_real"] == pytest.approx(0.5) and not t.loc["B", "above_chance"]
    assert t.loc["C", "p_value"] == pytest.approx(1 / 35) and t.loc["C", "above_chance"]  # 1 of C(7, 3)
    assert list(t["n"]) == [2, 2, 4] and set(t["n_real"]) == {3}
