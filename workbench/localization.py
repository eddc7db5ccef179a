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
``workbench.loc_protocols``). Both report AP@IoU θ for θ in 0.5, 0.75, 0.9, 0.95 and AR@N for N in 50, 30,
20, 10, 5 (mean recall over θ = 0.5, 0.55, ..., 0.95), the metrics of AV-Deepfake1M (Cai et al.,
"AV-Deepfake1M: A Large-Scale LLM-Driven Audio-Visual Deepfake Dataset", ACM MM 2024, arXiv:2311.15308;
after LAV-DF, Cai et al., DICTA 2022, arXiv:2204.06228, and CVIU 2023, arXiv:2305.01979); they differ in
how they count:

    av1m      (the default) what the official AV-Deepfake1M evaluator computes, rule for rule: IoU > θ
              strictly; each true segment takes the first free proposal of its video's list above θ; the
              first recall step of the precision-recall curve left out (one perfect proposal scores AP
              0); ties in score keep the videos' order; single precision. Reported AV-Deepfake1M
              numbers are on this scale. See ``workbench.loc_protocols``.
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

import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from workbench.config import LocalizationConfig
from workbench.metrics import (  # noqa: F401  (re-exported: the protocol's constants and the frame-truth scores)
    AP_IOUS,
    AR_NS,
    LOCALIZATION_MODES,
    TRUE_FRAME_MODES,
    _iou_key,
    true_frame_metrics,
)

AR_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
SCORES = ("mean", "max")
MODALITIES = ("audio", "video", "both")
FRAME_COLUMNS = ("video_id", "label", "frame", "timestamp", "p_fake", "frame_label")


METRIC_MODES: dict[str, str] = {**TRUE_FRAME_MODES, **LOCALIZATION_MODES}  # for metrics.METRIC_MODES


# ------------------------------------------------------------------ segments <-> frame labels
def parse_segments(raw: Any) -> list[tuple[float, float, str]] | None:
    """A ``fake_segments`` cell -> [(start_s, end_s, modality)] (modality '' when not given); None when empty.

    Accepts a JSON string or an already parsed list of [start, end] / [start, end, modality] items;
    ValueError with the reason otherwise (bad JSON, start >= end, a negative start, an unknown modality).
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"fake_segments is not valid JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"fake_segments must be a JSON list of [start_s, end_s(, modality)], got {raw!r}")
    out = []
    for k, seg in enumerate(raw):
        if not isinstance(seg, (list, tuple)) or len(seg) not in (2, 3):
            raise ValueError(f"fake_segments item {k} must be [start_s, end_s] or [start_s, end_s, modality], got {seg!r}")
        try:
            start, end = float(seg[0]), float(seg[1])
        except (TypeError, ValueError):
            raise ValueError(f"fake_segments item {k}: start and end must be numbers, got {seg!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"fake_segments item {k}: start and end must be finite, got {seg!r}")
        if start >= end:
            raise ValueError(f"fake_segments item {k}: start {start:g} s is not before end {end:g} s")
        if start < 0:
            raise ValueError(f"fake_segments item {k}: starts before the video ({start:g} s)")
        modality = str(seg[2]) if len(seg) == 3 else ""
        if len(seg) == 3 and modality not in MODALITIES:
            raise ValueError(f"fake_segments item {k}: modality must be one of {MODALITIES}, got {seg[2]!r}")
        out.append((start, end, modality))
    return out


def frame_label_from_segments(timestamps: np.ndarray, segments: Iterable[Sequence]) -> np.ndarray:
    """(T,) int8: 1 where a frame's timestamp lies in a segment (start <= t < end)."""
    t = np.asarray(timestamps, dtype=np.float64)
    label = np.zeros(t.shape, dtype=np.int8)
    for seg in segments:
        label[(t >= float(seg[0])) & (t < float(seg[1]))] = 1
    return label


def frame_duration(timestamps: np.ndarray) -> float:
    """Seconds per frame: the median step of the timestamps (1/30 s for a single frame)."""
    t = np.asarray(timestamps, dtype=np.float64)
    return float(np.median(np.diff(t))) if t.size > 1 else 1.0 / 30.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last + 1) index of every run of True."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def segments_from_frame_label(timestamps: np.ndarray, frame_label: np.ndarray) -> list[tuple[float, float]]:
    """The ground-truth segments of a video: each run of manipulated frames as [t_first, t_last + frame duration)."""
    t = np.asarray(timestamps, dtype=np.float64)
    dt = frame_duration(t)
    return [(float(t[a]), float(t[b - 1] + dt)) for a, b in _runs(np.asarray(frame_label) == 1)]


# ------------------------------------------------------------------ frame-level metrics against the truth
# ------------------------------------------------------------------ proposals
def _threshold_proposals(t: np.ndarray, p: np.ndarray, dt: float, thr: float, cfg: LocalizationConfig) -> list:
    """[(start, end)] of the merged runs above one threshold that are long enough."""
    merged: list[list[float]] = []
    for a, b in _runs(p > thr):
        start, end = float(t[a]), float(t[b - 1] + dt)
        if merged and start - merged[-1][1] <= cfg.merge_gap + 1e-9:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged if e - s >= cfg.min_length - 1e-9]


def proposals(timestamps: np.ndarray, p_fake: np.ndarray, cfg: LocalizationConfig | None = None) -> pd.DataFrame:
    """Fake-segment proposals (start, end, score) of one video from its per-frame P(Fake), most confident first."""
    cfg = cfg or LocalizationConfig()
    if cfg.score not in SCORES:
        raise ValueError(f"localization.score must be one of {SCORES}, got {cfg.score!r}")
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


# ------------------------------------------------------------------ the protocol
def temporal_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of segments a (n, 2) and b (m, 2), [start, end) in seconds."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(props: dict[str, pd.DataFrame], truth: dict[str, list], iou: float) -> float:
    """AP at one IoU threshold of the standard protocol (module docstring); props and truth keyed by video id."""
    n_gt = sum(len(v) for v in truth.values())
    if n_gt == 0:
        return math.nan
    ranked = [(float(r.score), vid, float(r.start), float(r.end)) for vid, df in props.items()
              for r in df.itertuples()]
    ranked.sort(key=lambda x: (-x[0], x[1], x[2]))
    matched = {vid: np.zeros(len(g), dtype=bool) for vid, g in truth.items()}
    tp = np.zeros(len(ranked))
    for i, (_, vid, s, e) in enumerate(ranked):
        gts = truth.get(vid, [])
        if not gts:
            continue  # a proposal on a REAL video: false positive
        ious = temporal_iou([[s, e]], gts)[0]
        ious[matched[vid]] = -1.0
        j = int(np.argmax(ious))
        if ious[j] >= iou - 1e-9:
            tp[i], matched[vid][j] = 1.0, True
    if not ranked:
        return 0.0
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(ranked) + 1)
    recall = ctp / n_gt
    # interpolated precision-recall curve: precision at recall r = max precision at recall >= r
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def average_recall(props: dict[str, pd.DataFrame], truth: dict[str, list], n: int,
                   ious: Sequence[float] = AR_IOUS) -> float:
    """AR@n over the IoU thresholds of the standard protocol (see the module docstring)."""
    n_gt = sum(len(v) for v in truth.values())
    if n_gt == 0:
        return math.nan
    best = []  # per ground-truth segment: its best IoU with the video's top-n proposals
    for vid, gts in truth.items():
        if not gts:
            continue
        df = props.get(vid)
        top = df.head(n)[["start", "end"]].to_numpy() if df is not None and len(df) else np.zeros((0, 2))
        best.extend(temporal_iou(gts, top).max(1) if len(top) else np.zeros(len(gts)))
    best = np.asarray(best)
    return float(np.mean([(best >= t - 1e-9).sum() / n_gt for t in ious]))


def check_full_density(frames: pd.DataFrame) -> None:
    """ValueError unless every video's frames are 0, 1, ..., n-1 once each (every frame of the video)."""
    missing = [c for c in FRAME_COLUMNS if c not in frames.columns]
    if missing:
        hint = " (workbench.localization.attach_frame_labels adds frame_label from the records)" \
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
    # lazy: loc_protocols imports this module
    from workbench.loc_protocols import evaluate

    cfg = cfg or LocalizationConfig()
    truth, props = video_truth_and_proposals(frames, cfg)
    res = evaluate({v: df[["score", "start", "end"]].to_numpy().tolist() for v, df in props.items() if len(df)},
                   [{"file": v, "fake_segments": [list(g) for g in segs]} for v, segs in truth.items()], cfg.protocol)
    none = not any(truth.values())  # no ground-truth segment: AP and AR undefined
    out = {f"loc_ap_iou{_iou_key(t)}": math.nan if none else res["ap"][str(t)] for t in AP_IOUS}
    out.update({f"loc_ar_at{n}": math.nan if none else res["ar"][str(n)] for n in AR_NS})
    aps = [out[f"loc_ap_iou{_iou_key(t)}"] for t in AP_IOUS]
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


# ------------------------------------------------------------------ condition folders (notebook 06)
def _fold_ids(cond_dir: Path) -> list[tuple[int, list[str]]]:
    """(fold, the video ids that fold's model was scored on and never trained on) from kfold_results.json."""
    res = json.loads((cond_dir / "kfold_results.json").read_text())
    return [(int(f["fold"]), list(f.get("outer_ids") or f.get("val_ids") or []))
            for f in sorted(res["folds"], key=lambda f: f["fold"])]


def _records(data_dir: Path, table: pd.DataFrame, ids: Iterable[str]) -> dict:
    from workbench.records import load_record, resolve
    paths = dict(zip(table["video_id"].astype(str), table["path"]))
    return {v: load_record(resolve(data_dir, paths[v]), warn=False, lazy=True) for v in ids}


def _predict(cond_dir: Path, data_dir: Path, table: pd.DataFrame, jobs: list[tuple[int | None, list[str]]],
             device: str) -> pd.DataFrame:
    """Full-density P(Fake) of each job's videos: by fold model k (k, ids), or by every fold model (None, ids)."""
    from workbench.dataset import load_for_model
    from workbench.predict import load_ensemble, predict_record
    from workbench.records import resolve
    from workbench.reports import fold_checkpoints
    from workbench.trainer import resolve_device

    dev = resolve_device(device)
    models, cfg = load_ensemble(fold_checkpoints(cond_dir), dev)
    paths = dict(zip(table["video_id"].astype(str), table["path"]))
    out = []
    for fold, ids in jobs:
        use = list(range(len(models))) if fold is None else [fold]
        for vid in ids:
            rec = load_for_model(resolve(data_dir, paths[vid]), cfg, lazy=True)
            for k in use:
                df = predict_record([models[k]], rec, fps=None, chunk=cfg.train.chunk_size, device=dev, amp=cfg.train.amp)
                out.append(pd.DataFrame({"video_id": vid, "label": rec.label, "frame": df["frame"],
                                         "timestamp": df["timestamp"], "p_fake": df["p_fake"],
                                         "frame_label": rec.frame_labels()[df["frame"].to_numpy()], "fold": k}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=[*FRAME_COLUMNS, "fold"])


def _stored_frames(paths: list[Path], folds: list, scope: str, name: str) -> pd.DataFrame | None:
    """The K-fold run's own full-density tables of a scope (fold models only), or None when absent or not full density."""
    if not all(p.exists() for p in paths):
        return None
    df = pd.concat([pd.read_csv(p).assign(**({} if scope == "test" else {"fold": k}))
                    for p, (k, _) in zip(paths, folds)], ignore_index=True)
    if "fold" not in df:
        df["fold"] = 0
    df = df[pd.to_numeric(df["fold"], errors="coerce").notna()].astype({"fold": int})  # no ensemble rows
    try:
        for _, g in df.groupby("fold"):
            check_full_density(g if "frame_label" in g else g.assign(frame_label=0))
    except ValueError as e:
        warnings.warn(f"{name}: the K-fold run's {scope} frames cannot be localized ({e}); computing them")
        return None
    return df


def condition_frames(cond_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, scope: str, *,
                     device: str = "auto", cache: str | Path | None = None) -> pd.DataFrame:
    """A condition's full-density per-frame table with a `fold` column, for scope 'test' (every fold model on
    each split=test video) or 'oof' (each pool video by the fold model that never trained on it).

    Read from the K-fold outputs when they have it (predictions_test_frames.csv; fold_k/outer_frames_full.csv),
    else from `cache` when written earlier, else computed with the fold checkpoints (and written to `cache`).
    """
    cond_dir, data_dir = Path(cond_dir), Path(data_dir)
    if scope not in ("test", "oof"):
        raise ValueError(f"scope must be 'test' or 'oof', got {scope!r}")
    folds = _fold_ids(cond_dir)
    if scope == "test":
        stored = [cond_dir / "predictions_test_frames.csv"]
    else:
        stored = [cond_dir / f"fold_{k}" / "outer_frames_full.csv" for k, _ in folds]
    df = _stored_frames(stored, folds, scope, cond_dir.name)
    if df is None and cache is not None and Path(cache).exists():
        df = pd.read_csv(cache)
    if df is None:
        test_ids = table.loc[table["split"] == "test", "video_id"].astype(str).tolist()
        jobs = [(None, test_ids)] if scope == "test" else [(k, ids) for k, ids in folds]
        df = _predict(cond_dir, data_dir, table, jobs, device)
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(cache, index=False)
    if "frame_label" not in df.columns:
        df = attach_frame_labels(df, _records(data_dir, table, df["video_id"].astype(str).unique()))
    return df


def _true_frames(frames: pd.DataFrame) -> dict[str, float]:
    return true_frame_metrics(frames["frame_label"], frames["p_fake"], frames["label"])


def localization_table(frames: pd.DataFrame, scope: str, cfg: LocalizationConfig | None = None) -> pd.DataFrame:
    """Localization and true-frame metrics of a condition's frames: per fold and the fold ensemble ('test'),
    or once over every pool video, each scored by its own out-of-fold model ('oof')."""
    if frames.empty:
        return pd.DataFrame()
    if scope == "oof":
        return pd.DataFrame([{"scope": scope, "fold": "oof", **localization_metrics(frames, cfg, counts=True),
                              **_true_frames(frames)}])
    frames = frames[pd.to_numeric(frames["fold"], errors="coerce").notna()]  # fold models only (no ensemble rows)
    rows = []
    for k, g in frames.groupby("fold", sort=True):
        rows.append({"scope": scope, "fold": str(k), **localization_metrics(g, cfg, counts=True), **_true_frames(g)})
    ens = ensemble_frames(frames)
    rows.append({"scope": scope, "fold": "ensemble", **localization_metrics(ens, cfg, counts=True), **_true_frames(ens)})
    return pd.DataFrame(rows)


def study_localization(run_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, conditions: Sequence[str],
                       *, scopes: Sequence[str] = ("test", "oof"), cfg: LocalizationConfig | None = None,
                       device: str = "auto", cache_dir: str | Path | None = None) -> pd.DataFrame:
    """localization_table of every condition and scope of a study (one row per condition, scope and fold)."""
    out = []
    for cond in conditions:
        for scope in scopes:
            cache = Path(cache_dir) / f"{cond}_{scope}_frames.csv" if cache_dir is not None else None
            frames = condition_frames(Path(run_dir) / cond, data_dir, table, scope, device=device, cache=cache)
            t = localization_table(frames, scope, cfg)
            if len(t):
                out.append(t.assign(condition=cond))
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    return df[["condition", *[c for c in df.columns if c != "condition"]]]


__all__ = [
    "AP_IOUS", "AR_IOUS", "AR_NS", "LOCALIZATION_MODES", "METRIC_MODES", "TRUE_FRAME_MODES",
    "attach_frame_labels", "average_precision", "average_recall", "check_full_density", "condition_frames",
    "ensemble_frames", "frame_label_from_segments", "localization_metrics",
    "localization_table", "parse_segments", "proposals", "segments_from_frame_label", "study_localization",
    "temporal_iou", "true_frame_metrics",
]
