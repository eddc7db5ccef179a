"""The held-out clips in the parts a study reports apart: short whole clips, partial fakes and long clips.

A test set can mix clips drawn like the pool with clips that differ on purpose: videos longer than any clip the
models trained on (the study's 180 s REAL interviews) and partial fakes (a REAL video with fake segments). One ROC-AUC
over all of them measures neither: ``clip_parts`` names each video's part from the data alone (its number of frames
against the pool's longest clip; a FAKE video with true-REAL frames is partial) and ``part_metrics`` scores each part
on its own terms.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from workbench.evaluation.metrics import true_frame_metrics, video_metrics

PARTS = ("short", "partial", "long")  # drawn like the pool | FAKE with fake segments only | longer than the pool's clips


def part_of(n_frames: int, pool_max_frames: int, partial: bool) -> str:
    """One video's part: long when longer than the pool's longest clip, else partial (a partial fake) or short."""
    return "long" if n_frames > pool_max_frames else "partial" if partial else "short"


def clip_parts(videos: pd.DataFrame, frames: pd.DataFrame, n_frames: Mapping[str, int],
               pool_max_frames: int) -> pd.Series:
    """Each video's part (index video_id): long when it has more frames (``n_frames``, the record's) than the pool's
    longest clip, else partial when it is FAKE and some of its frames are true REAL (frame_label 0), else short."""
    partial = set()
    if "frame_label" in frames:
        fake = frames[frames["label"] == 1]
        partial = set(fake.loc[fake["frame_label"] == 0, "video_id"])
    parts = {vid: part_of(int(n_frames[vid]), pool_max_frames, vid in partial) for vid in videos["video_id"]}
    return pd.Series(parts, name="part")


def _scores(videos: pd.DataFrame, frames: pd.DataFrame) -> dict[str, float]:
    """Video-level scores where both classes are present, REAL frames' P(Fake), FAKE videos' P(Fake)."""
    y, p = videos["label"].to_numpy(), videos["p_fake"].to_numpy(np.float64)
    out = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    both = out["n_real"] > 0 and out["n_fake"] > 0
    v = video_metrics(y, p) if len(y) else {}
    for k in ("roc_auc", "acc", "balanced_acc"):
        out[k] = float(v[k]) if both else math.nan
    real = frames.loc[frames["label"] == 0, "p_fake"].to_numpy(np.float64)
    out["real_frame_pfake_mean"] = float(real.mean()) if real.size else math.nan
    out["real_frame_above_05"] = float((real > 0.5).mean()) if real.size else math.nan
    out["fake_video_pfake_mean"] = float(p[y == 1].mean()) if out["n_fake"] else math.nan
    out["real_video_pfake_mean"] = float(p[y == 0].mean()) if out["n_real"] else math.nan
    return out


def part_metrics(videos: pd.DataFrame, frames: pd.DataFrame, n_frames: Mapping[str, int],
                 pool_max_frames: int) -> dict[str, dict]:
    """Per part (PARTS, the empty ones left out): n_real, n_fake, video ROC-AUC / acc / balanced acc (NaN with one
    class), REAL-frame P(Fake) mean and share above 0.5, mean video P(Fake) per class; partial fakes also the frame
    ROC-AUC inside them against their true frame labels (``true_frame_roc_auc_in_fake``)."""
    parts = clip_parts(videos, frames, n_frames, pool_max_frames)
    out = {}
    for part in PARTS:
        ids = set(parts.index[parts == part])
        if not ids:
            continue
        v, f = videos[videos["video_id"].isin(ids)], frames[frames["video_id"].isin(ids)]
        out[part] = {"video_ids": sorted(ids), **_scores(v, f)}
        if part == "partial":
            t = true_frame_metrics(f["frame_label"].to_numpy(), f["p_fake"].to_numpy(np.float64), f["label"].to_numpy())
            out[part]["true_frame_roc_auc_in_fake"] = t["true_frame_roc_auc_in_fake"]
    return out
