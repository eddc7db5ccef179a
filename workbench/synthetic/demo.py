"""`workbench demo`: the embedded demo dataset, synthetic videos (``synth``) ingested into npz records.

``build_demo(root)`` writes ``root/videos/`` (mp4 + labels.csv) and ``root/npz/`` (records + index.csv,
metadata.csv) only when missing, and returns the npz folder. Defaults (``DEMO``, the main job's), the K-fold pool:
40 REAL + 76 FAKE clips (the study's 1.89:1 ratio) of 1.2-2 s over 12 identities, 16 of the FAKE ones partial fakes
(1-2 segments of 0.3-0.7 s); the held-out test (split=test, never in a fold), drawn like the pool: 6 REAL, 8 FAKE and
4 partial short clips, plus 2 long REAL and 1 long FAKE of 20 s (the study's long REAL ones are 180 s:
``long_duration=180``); 12 unlabelled short clips (split=unlabeled, label -1) of 3 people no labelled clip shows
(a clip of a person the fold scores, selects on or tests could never join its training), for pseudo_label. Artefact strength
1.5 and the studio-light confound planted (``studio_light=1``: every long clip, 60% of the FAKE and 10% of the
short REAL clips filmed under dim, warm light; see ``synth``). 256 px, 30 fps, dataset seed ``synth.seed``.
``small=True`` (``SMALL``, for tests): 3 REAL + 4 FAKE clips of ~1.5 s over 4 identities, one 3 s long clip.
"""
from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from workbench.core.config import Config
from workbench.ingest.pipeline import ingest
from workbench.synthetic import synth

# the main job's demo: many short clips (a small model at the cpu preset's sizes learns the artefacts better from many
# short clips than from few long ones, at the same cost per condition: an epoch reads max_frames frames of each clip),
# a held-out test drawn like the pool, the studio-light confound on the long clips, unlabelled clips for pseudo_label
DEMO = dict(n_real=40, n_fake=60, n_partial=16, n_identities=12, duration_mean=1.5, duration_std=0.3, duration_min=1.2,
            duration_max=2.0, partial_segments=[1, 2], partial_seconds=[0.3, 0.7], n_long_real=2, n_long_fake=1,
            long_duration=20.0, n_test_real=6, n_test_fake=8, n_test_partial=4, n_unlabeled=12, n_unlabeled_identities=3,
            artifact_strength=1.5, studio_light=1.0)
SMALL = dict(n_real=3, n_fake=4, n_identities=4, duration_mean=1.5, duration_std=0.2, duration_min=1.2,
             duration_max=2.0, n_long_real=1, long_duration=3.0)


def demo_config(cfg: Config | None = None, *, small: bool = False, **overrides) -> Config:
    """A copy of cfg whose synth section holds the demo sizes (DEMO or SMALL), then ``overrides``."""
    cfg = cfg if cfg is not None else Config()
    return cfg.merged({"synth": {**(SMALL if small else DEMO), **overrides}})


def build_demo(root: str | Path = "data/demo", cfg: Config | None = None, *, force: bool = False,
               small: bool = False, progress: bool = True, **overrides) -> Path:
    """Generate root/videos and ingest them into root/npz when missing; returns the npz folder.

    ``overrides`` are SynthConfig fields applied over the demo sizes (e.g. long_duration=180).
    ``force`` deletes both folders first. A finished videos folder (labels.csv written last) with the
    same settings is kept; ingest skips the videos it already turned into records.
    """

    root = Path(root)
    videos, npz = root / "videos", root / "npz"
    cfg = demo_config(cfg, small=small, **overrides)
    if force:
        for folder in (videos, npz):
            if folder.exists():
                shutil.rmtree(folder)
    labels = synth.generate(videos, cfg, progress=progress)
    index = npz / "index.csv"
    if not (index.exists() and index.stat().st_mtime >= labels.stat().st_mtime):
        summary = ingest(labels, npz, cfg, progress=progress)
        if summary.done + summary.skipped == 0:
            raise RuntimeError(f"ingest produced no records from {labels}; failures: {summary.failures[:3]}")
    return npz


def demo_summary(root: str | Path = "data/demo") -> dict:
    """Counts by class, fake type and split, identities, and the face-found rate of the ingested records."""
    root = Path(root)
    with open(root / "videos" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = {
        "videos": len(rows),
        "real": sum(r["label"] == "0" for r in rows),
        "fake": sum(r["label"] == "1" for r in rows),
        "unlabeled": sum(r["label"] == "-1" for r in rows),
        "fake_types": dict(sorted(Counter(r["fake_type"] for r in rows if r["label"] == "1").items())),
        "identities": len({r["group"] for r in rows}),
        "test": sum(r["split"] == "test" for r in rows),
        "test_real": sum(r["split"] == "test" and r["label"] == "0" for r in rows),
        "test_fake": sum(r["split"] == "test" and r["label"] == "1" for r in rows),
        "seconds": round(sum(float(r["duration"]) for r in rows), 1),
        "records": 0,
        "face_rate": float("nan"),
    }
    meta = root / "npz" / "metadata.csv"
    if meta.exists():
        with open(meta, newline="") as f:
            m = list(csv.DictReader(f))
        n = np.array([float(r["n_frames"]) for r in m])
        rate = np.array([float(r["face_rate"]) for r in m])
        out["records"] = len(m)
        out["face_rate"] = float((n * rate).sum() / n.sum()) if n.sum() else float("nan")
    return out


