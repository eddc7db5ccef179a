"""`workbench demo`: the embedded demo dataset, synthetic videos (``synth``) ingested into npz records.

``build_demo(root)`` writes ``root/videos/`` (mp4 + labels.csv) and ``root/npz/`` (records + index.csv,
metadata.csv) only when missing, and returns the npz folder. Defaults (``DEMO``), the K-fold pool: 21 REAL +
39 FAKE short clips (the study's 1.89:1 ratio) of 2-4 s (mean 3 s) over 12 identities: 31 whole-video fakes
(the four fake types in equal shares) and 8 partial fakes (1-3 manipulated segments of 0.5-1.5 s in audio,
video or both). The held-out test (split=test, never in a fold): 2 long REAL clips and 1 long FAKE of 20 s
(the study's long REAL ones are 180 s: ``long_duration=180``), and short clips: 1 REAL, 2 FAKE, 2 partial
fakes. Artefact strength 1.5; 256 px, 30 fps, dataset seed ``synth.seed``. About two minutes on 2 CPU cores.
``small=True`` (``SMALL``, for tests): 3 REAL + 4 FAKE clips of ~1.5 s over 4 identities, one 3 s long clip.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from workbench import synth
from workbench.config import Config, add_config_arguments

DEMO = dict(n_real=21, n_fake=31, n_partial=8, n_identities=12, duration_mean=3.0, duration_std=0.6, duration_min=2.0,
            duration_max=4.0, n_long_real=2, n_long_fake=1, long_duration=20.0, n_test_real=1, n_test_fake=2,
            n_test_partial=2, artifact_strength=1.5)
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
    from workbench.ingest import ingest

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


def learnability(npz: str | Path, out: str | Path = "outputs/demo_evidence", preset: str = "cpu",
                 folds: int = 5, progress: bool = False) -> dict:
    """Evidence the demo is learnable: the baseline K-fold run's honest out-of-fold ROC-AUC (nested selection)
    and its within-fold label-permutation p-value against chance (resumable)."""
    import pandas as pd

    from workbench.kfold import run_kfold
    from workbench.metrics import fold_auc_permutation
    from workbench.study import condition_config
    cfg = condition_config(str(npz), str(out), "baseline", {}, preset, folds=folds, progress=progress)
    res = run_kfold(cfg, log=lambda line: None)
    scored = [pd.read_csv(Path(out) / f"fold_{f['fold']}" / "outer_videos.csv") for f in res["folds"]]
    perm = fold_auc_permutation([(d["label"].to_numpy(), d["p_fake"].to_numpy()) for d in scored])
    return {"mean_roc_auc": res["mean"]["outer_roc_auc"], "std_roc_auc": res["std"]["outer_roc_auc"],
            "p_chance": perm["p"], "chance_q95": perm["null_q95"], "mean_acc": res["mean"]["outer_acc"],
            "folds": len(res["folds"]), "out": str(out)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `workbench demo`."""
    parser.add_argument("root", nargs="?", default="data/demo", help="demo folder (default data/demo)")
    parser.add_argument("--force", action="store_true", help="delete and rebuild videos/ and npz/")
    parser.add_argument("--small", action="store_true", help="the tiny version used by the tests")
    parser.add_argument("--long-duration", type=float, help="seconds of each long-form REAL clip (study: 180)")
    parser.add_argument("--seed", type=int, help="dataset seed")
    add_config_arguments(parser, "YAML config (defaults otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--evidence", action="store_true",
                        help="also run a short 5-fold baseline and check faces >= 95%% and an out-of-fold ROC-AUC above chance "
                             "(within-fold label permutation, p < 0.05)")


def main(args: argparse.Namespace) -> int:
    """`workbench demo [ROOT]`: build when missing and print a summary."""
    cfg = Config.load(args.config, args.set)
    overrides = {k: v for k, v in (("long_duration", args.long_duration), ("seed", args.seed)) if v is not None}
    t0 = time.perf_counter()
    npz = build_demo(args.root, cfg, force=args.force, small=args.small, progress=not args.quiet, **overrides)
    s = demo_summary(args.root)
    types = ", ".join(f"{k} {v}" for k, v in s["fake_types"].items())
    print(f"demo dataset: {npz} ({time.perf_counter() - t0:.1f} s)\n"
          f"  {s['videos']} videos, {s['seconds']} s: {s['real']} REAL, {s['fake']} FAKE ({types}); held-out test "
          f"(split=test): {s['test']} ({s['test_real']} REAL / {s['test_fake']} FAKE)\n"
          f"  {s['identities']} identities; {s['records']} records, "
          f"face found on {100 * s['face_rate']:.1f}% of frames")
    if not args.evidence:
        return 0
    ev = learnability(npz, Path("outputs") / "demo_evidence", progress=not args.quiet)
    ok_face, ok_auc = s["face_rate"] >= 0.95, ev["p_chance"] < 0.05
    print(f"  evidence: faces found {100 * s['face_rate']:.1f}% (>= 95%: {'yes' if ok_face else 'NO'}); "
          f"{ev['folds']}-fold baseline out-of-fold ROC-AUC {ev['mean_roc_auc']:.3f} ± {ev['std_roc_auc']:.3f} "
          f"(nested selection; chance's 95th percentile {ev['chance_q95']:.3f}, permutation p = {ev['p_chance']:.4f}, "
          f"< 0.05: {'yes' if ok_auc else 'NO'}), accuracy {ev['mean_acc']:.3f}; run in {ev['out']}")
    return 0 if ok_face and ok_auc else 1
