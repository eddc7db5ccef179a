"""Where a detector's skill lies: out of fold per fake type and manipulated modality, and the held-out test in parts.

- `fake_type_table(runs)`: per condition and fake type (metadata.csv ``fake_type`` of the run's dataset), the
  out-of-fold P(Fake) of that type's pool clips against every REAL pool clip: ROC-AUC and a one-sided Mann-Whitney
  p-value (H1: the type's clips score above the REAL ones; scipy.stats). A type is detected above chance when
  p < 0.05. Each clip is scored by the fold model that never saw it, so nothing here was fitted on these rows.
- `heldout_parts_table(runs)`: per condition, the held-out test's parts (evaluation.parts: short whole clips drawn
  like the pool, partial fakes, clips longer than the pool's) as kfold_results.json `test.parts` records them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from workbench.analysis.tables import as_runs
from workbench.core.metric_names import as_float

ALPHA = 0.05
MODALITY = {"lip_sync": "video", "face_swap": "video", "audio_swap": "audio", "both": "audio+video",
            "partial_audio": "audio", "partial_video": "video", "partial_both": "audio+video"}
PART_COLUMNS = ("n_real", "n_fake", "roc_auc", "acc", "balanced_acc", "real_frame_pfake_mean", "real_frame_above_05",
                "real_video_pfake_mean", "fake_video_pfake_mean", "true_frame_roc_auc_in_fake")


def _fake_types(data_dir: Path) -> pd.Series | None:
    """video_id -> fake_type from the dataset's metadata.csv (None when it has none)."""
    meta = Path(data_dir) / "metadata.csv"
    if not meta.exists():
        return None
    m = pd.read_csv(meta, usecols=lambda c: c in ("video_id", "fake_type"))
    return m.set_index("video_id")["fake_type"].astype(str) if "fake_type" in m else None


def type_scores(videos: pd.DataFrame, types: pd.Series) -> pd.DataFrame:
    """Per fake type: n, mean P(Fake), ROC-AUC against every REAL video of ``videos`` and the one-sided Mann-Whitney
    p-value (H1: this type scores higher); ``videos`` has video_id, label, p_fake (one row per video)."""
    real = videos.loc[videos["label"] == 0, "p_fake"].to_numpy(np.float64)
    fake = videos[videos["label"] == 1].assign(fake_type=lambda d: d["video_id"].map(types).fillna("unknown"))
    rows = []
    for kind, part in fake.groupby("fake_type", sort=True):
        p = part["p_fake"].to_numpy(np.float64)
        if real.size and p.size:
            u, pval = mannwhitneyu(p, real, alternative="greater")
            auc = float(u) / (p.size * real.size)  # U / (n1 n2) is the ROC-AUC of this type against REAL
        else:
            auc, pval = math.nan, math.nan
        rows.append({"fake_type": kind, "modality": MODALITY.get(kind, ""), "n": int(p.size), "n_real": int(real.size),
                     "p_fake_mean": float(p.mean()), "roc_auc_vs_real": auc, "p_value": float(pval),
                     "above_chance": bool(pval < ALPHA) if not math.isnan(pval) else False})
    return pd.DataFrame(rows)


def fake_type_table(runs: Any, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Per condition and fake type, out of fold (type_scores on each run's out-of-fold video predictions); the
    dataset is ``data_dir`` or the run's config data.root. Empty when the dataset names no fake types."""
    out = []
    for name, run in as_runs(runs).items():
        types = _fake_types(Path(data_dir or run.config.get("data", {}).get("root", "")))
        if types is None or run.videos is None or not len(run.videos):
            continue
        videos = run.videos.drop_duplicates("video_id")  # one out-of-fold score per pool video
        out.append(type_scores(videos, types).assign(condition=name))
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    return df[["condition", *[c for c in df.columns if c != "condition"]]]


def heldout_parts_table(runs: Any) -> pd.DataFrame:
    """Per condition and part of the held-out test (short, partial, long): the fold ensemble's scores there."""
    rows = []
    for name, run in as_runs(runs).items():
        for part, s in ((run.kfold.test or {}).get("parts") or {}).items():
            rows.append({"condition": name, "part": part, **{c: as_float(s.get(c)) for c in PART_COLUMNS}})
    df = pd.DataFrame(rows)
    for c in ("n_real", "n_fake"):
        if c in df:
            df[c] = df[c].astype(int)
    return df
