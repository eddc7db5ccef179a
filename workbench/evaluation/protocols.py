"""Two named protocols of temporal fake-segment localization: ``av1m`` and ``standard``.

Both score proposals ``{file: [[score, start_s, end_s], ...]}`` against metadata ``[{"file": ..,
"fake_segments": [[start_s, end_s], ...]}, ...]`` with AP@IoU θ (θ in 0.5, 0.75, 0.9, 0.95) and AR@N
(N in 50, 30, 20, 10, 5; mean over θ = 0.5, 0.55, ..., 0.95). IoU of two segments: length of the
intersection / length of their union.

``av1m``: the protocol of AV-Deepfake1M (Cai et al., "AV-Deepfake1M: A Large-Scale LLM-Driven
Audio-Visual Deepfake Dataset", ACM MM 2024, arXiv:2311.15308) as its official evaluator computes it
(``ap_ar_1d`` of the authors' ``avdeepfake1m`` package, version 0.0.4, called with fps 1). Written
here from the evaluator's observed behaviour; ``tests/test_loc_protocols.py`` checks it against the
compiled evaluator on random cases. Its rules:

    Arithmetic   every number is single precision (float32): times, scores, IoU, precision, recall
                 and the sums, added up in the evaluator's order, so that results agree to the bit.
    IoU          (min end - max start, at least 0) / (max end - min start).
    Files        the metadata's files, in the metadata's order; a file's proposals in the order given.
    Matching     per file and θ, each true segment in the metadata's order takes the FIRST proposal
                 in the file's list order that has IoU > θ (strictly greater) with it and that no
                 earlier segment took; a taken proposal is a true positive, every other one a false
                 positive. The proposal's score plays no part in the matching.
    Ranking      all proposals of all files by score, highest first; ties keep the order of the
                 files in the metadata, then the order in the file (a stable sort).
    AP@θ         precision and recall after each ranked proposal (recall over all true segments);
                 each step of recall between consecutive ranks counts with the highest precision at
                 that rank or below (interpolated precision). The FIRST step, from recall 0 to the
                 recall of the top-ranked proposal, is left out: one perfect proposal scores AP 0.
    Empty files  a file with no true segment adds its proposals as false positives to AP and nothing
                 to AR. Without any true segment AP is NaN (0 when there is no proposal either).
    AR@N         each file's FIRST N proposals in the order given (the evaluator takes the list as
                 sorted by score); a true segment is recalled at θ when one of them has IoU > θ
                 (strictly); recall at θ = recalled / all true segments; AR@N = the mean over θ.
                 0 without any true segment.
    No proposals the evaluator cannot read a file with an empty list (it stops with an error); here
                 such a file's segments are missed, as with a proposal that overlaps none of them.

``standard``: VOC/ActivityNet AP (IoU >= θ, each proposal in rank order takes its best unmatched
segment, the whole interpolated curve from recall 0) and AR (each file's N most confident proposals,
IoU >= θ): ``workbench.evaluation.localization.average_precision`` / ``average_recall``, unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.config import choices_of
from workbench.core.metric_names import AP_IOUS, AR_NS

PROTOCOLS = choices_of("localization.protocol")
AR_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
F32 = np.float32

# one file: (name, proposals (n, 3) [score, start, end], true segments (m, 2) [start, end]), float64
File = tuple[str, np.ndarray, np.ndarray]


# ------------------------------------------------------------------ input
def _is_number(v: Any) -> bool:
    """True for an int or float (a bool is not a number here)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _short(x: Any, width: int = 60) -> str:
    """repr of x cut to `width` characters."""
    r = repr(x)
    return r if len(r) <= width else r[:width - 3] + "..."


def _rows(rows: Any, names: Sequence[str], what: str) -> np.ndarray:
    """(n, len(names)) float64 of a list of rows of finite numbers, the last two start < end; ValueError otherwise."""
    shape = "[" + ", ".join(names) + "]"
    if not isinstance(rows, (list, tuple)):
        raise ValueError(f"{what} must be a list of {shape}, got {type(rows).__name__}")
    for k, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(names) or not all(map(_is_number, row)):
            raise ValueError(f"{what}, item {k}: expected {shape} of numbers, got {_short(row)}")
    a = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    bad = ~np.isfinite(a).all(1) | (a[:, -2] >= a[:, -1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        reason = "not finite" if not np.isfinite(a[k]).all() else "start is not before end"
        raise ValueError(f"{what}, item {k}: {reason} ({_short(rows[k])})")
    return a


def _files(proposals: Mapping[str, Any], metadata: Sequence[Mapping[str, Any]]) -> list[File]:
    """The metadata's files in order with their proposals and true segments, validated."""
    if not isinstance(proposals, Mapping):
        raise ValueError(f"proposals must be a mapping file -> [[score, start, end], ...], got {type(proposals).__name__}")
    if not isinstance(metadata, (list, tuple)):
        raise ValueError(f"metadata must be a list of {{'file': .., 'fake_segments': ..}}, got {type(metadata).__name__}")
    files, seen = [], set()
    for k, item in enumerate(metadata):
        if not isinstance(item, Mapping) or "file" not in item or "fake_segments" not in item:
            raise ValueError(f"metadata item {k} must be a mapping with 'file' and 'fake_segments'")
        name = item["file"]
        if not isinstance(name, str) or name in seen:
            raise ValueError(f"metadata item {k}: file {name!r} is " + ("listed twice" if name in seen else "not a string"))
        seen.add(name)
        segs = _rows(item["fake_segments"], ("start", "end"), f"fake_segments of {name!r}")
        props = _rows(proposals.get(name, []), ("score", "start", "end"), f"proposals of {name!r}")
        files.append((name, props, segs))
    extra = [f for f in proposals if f not in seen]
    if extra:
        raise ValueError(f"{len(extra)} file(s) with proposals are not in the metadata, e.g. {extra[0]!r}")
    return files


# ------------------------------------------------------------------ av1m (the official evaluator's rules)
def _iou_f32(props: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """(n, m) float32 IoU: (min end - max start, at least 0) / (max end - min start)."""
    p, g = props.astype(F32), segs.astype(F32)
    inter = np.maximum(np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0]), F32(0))
    hull = np.maximum(p[:, None, 1], g[None, :, 1]) - np.minimum(p[:, None, 0], g[None, :, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / hull


def _first_free_match(hit: np.ndarray) -> np.ndarray:
    """(n,) bool: each segment (column) in turn takes the first proposal (row) it hits that is still free."""
    taken = np.zeros(hit.shape[0], dtype=bool)
    for col in hit.T:
        free = np.flatnonzero(col & ~taken)
        if free.size:
            taken[free[0]] = True
    return taken


def _sum_f32(x: np.ndarray) -> np.float32:
    """float32 sum in eight interleaved partial sums, pairs (0,4), (1,5), (2,6), (3,7) added, then the tail."""
    x = np.asarray(x, dtype=F32)
    k = len(x) // 8 * 8
    p = np.cumsum(x[:k].reshape(-1, 8), axis=0, dtype=F32)[-1] if k else np.zeros(8, F32)
    acc = F32(0)
    for i in range(4):
        acc = F32(acc + F32(p[i] + p[i + 4]))
    for v in x[k:]:
        acc = F32(acc + v)
    return acc


def _ap_first_step_left_out(is_tp: np.ndarray, n_true: int) -> float:
    """AP of ranked TP flags: recall steps from the second rank on, times the interpolated precision."""
    if is_tp.size == 0:
        return 0.0
    tp = np.cumsum(is_tp).astype(F32)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / np.arange(1, len(tp) + 1, dtype=F32)
        recall = tp / F32(n_true)
    best_below = np.maximum.accumulate(precision[::-1])  # interpolated precision, last rank first
    steps = np.abs(recall[-2::-1] - recall[:0:-1])  # from rank n to n-1, ..., rank 2 to 1
    terms = np.concatenate([[np.abs(recall[-1] - F32(1)) * F32(0)], steps * best_below[:-1]]).astype(F32)
    return float(_sum_f32(terms))


def av1m_ap(files: Sequence[File], iou: float) -> float:
    """AP@iou of the av1m protocol (see the module docstring)."""
    theta = F32(iou)
    scores, flags = [], []
    for _, props, segs in files:
        scores.append(props[:, 0].astype(F32))
        flags.append(_first_free_match(_iou_f32(props[:, 1:], segs) > theta))
    order = np.argsort(-np.concatenate(scores), kind="stable") if scores else np.zeros(0, int)
    is_tp = np.concatenate(flags)[order] if flags else np.zeros(0, bool)
    return _ap_first_step_left_out(is_tp, sum(len(s) for _, _, s in files))


def av1m_ar(files: Sequence[File], n: int, ious: Sequence[float] = AR_IOUS) -> float:
    """AR@n of the av1m protocol: first n proposals of each file, IoU > θ, mean recall over θ."""
    thetas = np.asarray(ious, dtype=F32)
    hits = np.zeros(len(thetas), dtype=np.int64)
    n_true = 0
    for _, props, segs in files:
        n_true += len(segs)
        if len(segs) and len(props):
            best = np.fmax.reduce(_iou_f32(props[:n, 1:], segs), axis=0)  # NaN IoU ignored
            hits += (best[None, :] > thetas[:, None]).sum(1)
    recall = hits.astype(F32) / F32(n_true) if n_true else np.zeros(len(thetas), F32)
    return float(F32(np.cumsum(recall, dtype=F32)[-1] / F32(len(thetas))))


# ------------------------------------------------------------------ standard (workbench.evaluation.localization)
def _standard_tables(files: Sequence[File]) -> tuple[dict, dict]:
    """(proposal tables, truth) in the form of workbench.evaluation.localization: tables most confident first."""
    import pandas as pd  # workbench.evaluation.localization's own table format

    tables, truth = {}, {}
    for name, props, segs in files:
        order = np.argsort(-props[:, 0], kind="stable")
        tables[name] = pd.DataFrame(props[order][:, [1, 2, 0]], columns=["start", "end", "score"])
        truth[name] = segs.tolist()
    return tables, truth


# ------------------------------------------------------------------ both
def evaluate(proposals: Mapping[str, Any], metadata: Sequence[Mapping[str, Any]], protocol: str) -> dict:
    """{"ap": {"0.5": .., "0.75": .., "0.9": .., "0.95": ..}, "ar": {"50": .., ..., "5": ..}} under a protocol."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    files = _files(proposals, metadata)
    if protocol == "av1m":
        ap = {str(t): av1m_ap(files, t) for t in AP_IOUS}
        ar = {str(n): av1m_ar(files, n) for n in AR_NS}
    else:
        tables, truth = _standard_tables(files)
        ap = {str(t): average_precision(tables, truth, t) for t in AP_IOUS}
        ar = {str(n): average_recall(tables, truth, n) for n in AR_NS}
    return {"ap": ap, "ar": ar}


__all__ = ["PROTOCOLS", "av1m_ap", "av1m_ar", "evaluate"]




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
