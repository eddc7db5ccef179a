"""Frame-level ground truth and temporal localization of fake segments.

Ground truth
    A partially faked video lists its fake segments in seconds (``fake_segments`` in labels.csv or the
    ingest manifest, AV-Deepfake1M style); a frame is manipulated (``frame_label`` 1) when its timestamp t
    lies in a segment, start <= t < end. Back from frame labels, a run of manipulated frames k0..k1 is the
    segment [t_k0, t_k1 + frame duration).

Frame-level metrics against the truth (``true_frame_metrics``)
    ROC-AUC, AP and EER of per-frame P(Fake) against the frame labels, accuracies and mean P(Fake) of
    truly real / truly fake frames, and the same inside FAKE videos only (genuine frames of partial fakes
    against their manipulated ones). Keys start with ``true_`` so that they cannot be confused with
    ``real_frame_*`` of ``metrics.frame_metrics``, which are the frames of REAL *videos*.

Proposals (``proposals``; the rule is ``LocalizationConfig``)
    For each threshold, runs of frames with P(Fake) > threshold; runs whose gap is at most ``merge_gap``
    seconds merge; proposals shorter than ``min_length`` are dropped; a proposal's confidence is the mean
    (or max) P(Fake) of the frames inside it. The proposals of all thresholds are pooled (a segment found
    at two thresholds is kept once, with its best confidence) and the ``max_proposals`` most confident kept.

Protocols (``localization_metrics``; the choice is ``LocalizationConfig.protocol``, the rules
``workbench.evaluation.protocols``). Both report AP@IoU θ for θ in 0.5, 0.75, 0.9, 0.95 and AR@N for N in 50, 30,
20, 10, 5 (mean recall over θ = 0.5, 0.55, ..., 0.95), the metrics of AV-Deepfake1M (Cai et al.,
"AV-Deepfake1M: A Large-Scale LLM-Driven Audio-Visual Deepfake Dataset", ACM MM 2024, arXiv:2311.15308;
after LAV-DF, Cai et al., DICTA 2022, arXiv:2204.06228, and CVIU 2023, arXiv:2305.01979); they differ in
how they count:

    av1m      (the default) what the official AV-Deepfake1M evaluator computes, rule for rule: IoU > θ
              strictly; each true segment takes the first free proposal of its video's list above θ; the
              first recall step of the precision-recall curve left out (one perfect proposal scores AP
              0); ties in score keep the videos' order; single precision. Reported AV-Deepfake1M
              numbers are on this scale. See ``workbench.evaluation.protocols``.
    standard  the textbook definitions below (``average_precision``, ``average_recall``):

    IoU       of segments [s1, e1) and [s2, e2): length of the intersection / length of the union.
    AP@θ      The proposals of all videos are ranked by confidence, highest first (ties: video, then
              start). In that order a proposal is a true positive when a ground-truth segment of its own
              video that no earlier proposal matched has IoU >= θ with it (the unmatched one of highest
              IoU is matched), else a false positive; proposals on REAL videos (no segments) are false
              positives. Precision and recall after each proposal; AP is the area under the interpolated
              precision-recall curve from recall 0, precision at recall r being the highest precision at
              any recall >= r (PASCAL VOC 2010+, Everingham et al. IJCV 2010; ActivityNet detection, Caba
              Heilbron et al. CVPR 2015).
    AR@N      Each video keeps its N most confident proposals; at threshold θ a ground-truth segment is
              recalled when one of them has IoU >= θ with it; recall = recalled segments / all segments,
              over all videos; AR@N is the mean recall over θ (average recall, Hosang et al. TPAMI 2016;
              ActivityNet proposals, Escorcia et al. ECCV 2016). REAL videos add no segment; their
              proposals only compete in AP.
    loc_score (mean AP + mean AR) / 2: one number for tables and monitors. Without any ground-truth
              segment AP, AR and loc_score are NaN, under either protocol.

Localization is scored on every frame of a video (full density): ``localization_metrics`` refuses a table
whose frames of a video are not 0, 1, ..., n-1 (e.g. a training clip's sampled frames).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.config import LocalizationConfig, choices_of
from workbench.core.metric_names import AP_IOUS, AR_NS, LOCALIZATION_MODES, TRUE_FRAME_MODES, iou_key
from workbench.data.segments import frame_duration, runs, segments_from_frame_label
from workbench.evaluation.protocols import (  # noqa: F401  (re-exported: the standard protocol)
    AR_IOUS,
    average_precision,
    average_recall,
    evaluate,
    temporal_iou,
)

SCORES = choices_of("localization.score")
FRAME_COLUMNS = ("video_id", "label", "frame", "timestamp", "p_fake", "frame_label")


# ------------------------------------------------------------------ frame-level metrics against the truth
# ------------------------------------------------------------------ proposals
def _threshold_proposals(t: np.ndarray, p: np.ndarray, dt: float, thr: float, cfg: LocalizationConfig) -> list:
    """[(start, end)] of the merged runs above one threshold that are long enough."""
    merged: list[list[float]] = []
    for a, b in runs(p > thr):
        start, end = float(t[a]), float(t[b - 1] + dt)
        if merged and start - merged[-1][1] <= cfg.merge_gap + 1e-9:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged if e - s >= cfg.min_length - 1e-9]


def proposals(timestamps: np.ndarray, p_fake: np.ndarray, cfg: LocalizationConfig | None = None) -> pd.DataFrame:
    """Fake-segment proposals (start, end, score) of one video from its per-frame P(Fake), most confident first."""
    cfg = cfg or LocalizationConfig()
    if not cfg.thresholds:
        raise ValueError("localization.thresholds is empty")
    t = np.asarray(timestamps, dtype=np.float64)
    p = np.asarray(p_fake, dtype=np.float64)
    dt = frame_duration(t)
    best: dict[tuple[float, float], float] = {}
    for thr in cfg.thresholds:
        for s, e in _threshold_proposals(t, p, dt, float(thr), cfg):
            inside = p[(t >= s - 1e-9) & (t < e - 1e-9)]
            score = float(inside.mean() if cfg.score == "mean" else inside.max())
            best[(s, e)] = max(score, best.get((s, e), -1.0))
    df = pd.DataFrame([(s, e, v) for (s, e), v in best.items()], columns=["start", "end", "score"])
    df = df.sort_values(["score", "start"], ascending=[False, True], kind="mergesort")
    return df.head(cfg.max_proposals).reset_index(drop=True)


def check_full_density(frames: pd.DataFrame) -> None:
    """ValueError unless every video's frames are 0, 1, ..., n-1 once each (every frame of the video)."""
    missing = [c for c in FRAME_COLUMNS if c not in frames.columns]
    if missing:
        hint = " (workbench.evaluation.localization.attach_frame_labels adds frame_label from the records)" \
            if "frame_label" in missing else ""
        raise ValueError(f"a localization table needs the columns {list(FRAME_COLUMNS)}; missing {missing}{hint}")
    for vid, g in frames.groupby("video_id", sort=False):
        f = np.sort(g["frame"].to_numpy())
        if f.size == 0 or f[0] != 0 or np.any(np.diff(f) != 1):
            dup = " (a video appears more than once: one fold or an ensemble, see ensemble_frames)" \
                if f.size and np.any(np.diff(f) == 0) else ""
            raise ValueError(f"video {vid!r}: localization needs every frame (full density), got frames "
                             f"{f[:5].tolist()}... ({f.size} rows, max {f.max() if f.size else None}){dup}")


def video_truth_and_proposals(frames: pd.DataFrame, cfg: LocalizationConfig | None = None
                              ) -> tuple[dict[str, list], dict[str, pd.DataFrame]]:
    """Per video: the ground-truth segments (from frame_label) and the proposals (from p_fake)."""
    check_full_density(frames)
    truth, props = {}, {}
    for vid, g in frames.sort_values(["video_id", "frame"]).groupby("video_id", sort=True):
        t, y = g["timestamp"].to_numpy(), g["frame_label"].to_numpy()
        if int(g["label"].iloc[0]) == 0 and y.any():
            raise ValueError(f"video {vid!r} is REAL but {int(y.sum())} of its frames are labelled manipulated")
        truth[str(vid)] = segments_from_frame_label(t, y)
        props[str(vid)] = proposals(t, g["p_fake"].to_numpy(), cfg)
    return truth, props


def localization_metrics(frames: pd.DataFrame, cfg: LocalizationConfig | None = None,
                         counts: bool = False) -> dict[str, float]:
    """AP@IoU, AR@N (under ``cfg.protocol``) and loc_score of a full-density per-frame table (keys: LOCALIZATION_MODES).

    ``counts`` adds n_videos, n_segments, n_proposals and n_proposals_real (proposals on REAL videos, all
    false positives) for tables; those are not metrics.
    """

    cfg = cfg or LocalizationConfig()
    truth, props = video_truth_and_proposals(frames, cfg)
    res = evaluate({v: df[["score", "start", "end"]].to_numpy().tolist() for v, df in props.items() if len(df)},
                   [{"file": v, "fake_segments": [list(g) for g in segs]} for v, segs in truth.items()], cfg.protocol)
    none = not any(truth.values())  # no ground-truth segment: AP and AR undefined
    out = {f"loc_ap_iou{iou_key(t)}": math.nan if none else res["ap"][str(t)] for t in AP_IOUS}
    out.update({f"loc_ar_at{n}": math.nan if none else res["ar"][str(n)] for n in AR_NS})
    aps = [out[f"loc_ap_iou{iou_key(t)}"] for t in AP_IOUS]
    ars = [out[f"loc_ar_at{n}"] for n in AR_NS]
    out["loc_score"] = math.nan if math.isnan(aps[0]) else float((np.mean(aps) + np.mean(ars)) / 2)
    if counts:
        real = {str(v) for v, g in frames.groupby("video_id") if int(g["label"].iloc[0]) == 0}
        out.update(n_videos=len(truth), n_segments=sum(len(v) for v in truth.values()),
                   n_proposals=sum(len(p) for p in props.values()),
                   n_proposals_real=sum(len(p) for v, p in props.items() if v in real))
    return out


# ------------------------------------------------------------------ tables
def ensemble_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per (video, frame): P(Fake) averaged over the folds of a per-fold table (a `fold` column)."""
    keys = [c for c in ("video_id", "label", "frame", "timestamp", "frame_label") if c in frames.columns]
    return frames.groupby(keys, as_index=False, sort=True)["p_fake"].mean()


def attach_frame_labels(frames: pd.DataFrame, records: dict[str, Any]) -> pd.DataFrame:
    """The table with a frame_label column from the records (video id -> VideoRecord; its frame_labels())."""
    out = frames.copy()
    labels = np.zeros(len(out), dtype=np.int64)
    for vid, idx in out.groupby("video_id").indices.items():
        if vid not in records:
            raise KeyError(f"no record for video {vid!r} to take its frame labels from")
        labels[idx] = records[vid].frame_labels()[out["frame"].to_numpy()[idx]]
    out["frame_label"] = labels
    return out


__all__ = [
    "AP_IOUS",
    "AR_IOUS",
    "AR_NS",
    "LOCALIZATION_MODES",
    "TRUE_FRAME_MODES",
    "attach_frame_labels",
    "average_precision",
    "average_recall",
    "check_full_density",
    "ensemble_frames",
    "localization_metrics",
    "proposals",
    "segments_from_frame_label",
    "temporal_iou",
]
