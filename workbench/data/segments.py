"""Fake segments in seconds <-> per-frame labels (a frame is fake when start <= t < end)."""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

import numpy as np


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


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last + 1) index of every run of True."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def segments_from_frame_label(timestamps: np.ndarray, frame_label: np.ndarray) -> list[tuple[float, float]]:
    """The ground-truth segments of a video: each run of manipulated frames as [t_first, t_last + frame duration)."""
    t = np.asarray(timestamps, dtype=np.float64)
    dt = frame_duration(t)
    return [(float(t[a]), float(t[b - 1] + dt)) for a, b in runs(np.asarray(frame_label) == 1)]


MODALITIES = ("audio", "video", "both")
