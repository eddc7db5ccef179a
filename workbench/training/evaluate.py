"""A finished run's fold models on another dataset: the cross-dataset evaluation (`workbench evaluate RUN DATA`).

Every fold model scores the other dataset's records as the held-out test is scored (the video P(Fake) of its
evaluation clip, and every frame), and the fold ensemble is the mean of their P(Fake). The run folder gets
    predictions_cross_<name>_videos.csv   each fold model's and the ensemble's (fold = "ensemble") video P(Fake)
    predictions_cross_<name>_frames.csv   the same per frame
    kfold_results.json -> cross[<name>]   a section shaped like `test`: per-fold metrics (test_*), mean, std, ensemble
<name> is the dataset's name (metadata.csv `dataset`, else the folder's). Unlabelled records (label -1) are scored
only with `unlabeled=True` (e.g. for a challenge submission, `workbench export`) and never enter a metric.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from workbench.core.config import Config
from workbench.core.runtime import amp_dtype, autocast, resolve_device
from workbench.data.dataset import ClipDataset, to_device
from workbench.data.loading import LoaderPool
from workbench.data.records import IndexRow, scan_folder, write_json
from workbench.evaluation.metrics import evaluation_metrics
from workbench.model.losses import posthoc_adjust
from workbench.model.mmmsba import MMMSBA
from workbench.training.kfold import full_frames, summarize
from workbench.training.trainer import Trainer, load_model

Log = Callable[[str], None]


# ------------------------------------------------------------------ a run's models
def load_run_config(run_dir: str | Path) -> tuple[Config, dict]:
    """(config of the run, its kfold_results.json); a FileNotFoundError naming what is missing."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "kfold_results.json"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} is not a finished run: no {name} (run `workbench kfold` first)")
    results = json.loads((run_dir / "kfold_results.json").read_text())
    if not results.get("folds"):
        raise ValueError(f"{run_dir}/kfold_results.json lists no finished fold")
    return Config.load(run_dir / "config.yaml"), results


def fold_class_counts(cfg: Config, fold: dict) -> list[int] | None:
    """[REAL, FAKE] of a fold's fit part (post-hoc logit adjustment needs them), or None when it is off."""
    if cfg.loss.posthoc_tau <= 0:
        return None
    try:
        labels = {r.video_id: r.label for r in scan_folder(cfg.data.root, cfg.data.index).rows}
    except FileNotFoundError as e:
        raise ValueError(f"loss.posthoc_tau > 0 needs the run's training labels from {cfg.data.root}: {e}") from None
    y = np.array([labels[v] for v in fold["train_ids"] if v in labels])
    return [int((y == 0).sum()), int((y == 1).sum())]


@torch.no_grad()
def clip_predictions(model: MMMSBA, ds: ClipDataset, cfg: Config, device: torch.device,
                     class_counts: Sequence[int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(videos, frames) of one model on `ds` as Trainer.evaluate makes them: the evaluation clip of each video."""
    model.eval()
    dtype = amp_dtype(device, cfg.train.amp)
    vids, frames = [], []
    for batch in LoaderPool(cfg, device).loader(ds, train=False, epoch=0):
        batch = to_device(batch, device)
        with autocast(device, dtype):
            out = model(batch)
        fl, vl = out["frame_logits"].float(), out["video_logits"].float()
        if cfg.loss.posthoc_tau > 0:
            fl = posthoc_adjust(fl, class_counts, cfg.loss.posthoc_tau)
            vl = posthoc_adjust(vl, class_counts, cfg.loss.posthoc_tau)
        vids += Trainer._video_rows(ds, batch, vl)
        frames += Trainer._frame_tables(ds, batch, torch.softmax(fl, -1)[..., 1].cpu().numpy())
    return pd.DataFrame(vids), (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def labelled_metrics(videos: pd.DataFrame, frames: pd.DataFrame, cfg: Config, prefix: str = "test_") -> dict:
    """evaluation_metrics of the labelled videos (label >= 0) only; empty when there are none."""
    v, f = videos[videos["label"] >= 0], frames[frames["label"] >= 0]
    if v.empty:
        return {}
    every = cfg.eval.full_frames or cfg.data.eval_clip == "full"
    loc = cfg.localization if every else None  # localization only on tables of every frame
    return {f"{prefix}{k}": float(x) for k, x in evaluation_metrics(v, f, loc).items()}


def ensemble_tables(videos: pd.DataFrame, frames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold ensemble of per-fold tables (a `fold` column): mean P(Fake) per video and per frame, and its spread."""
    ens_v = videos.groupby("video_id", sort=False).agg(label=("label", "first"), p_fake=("p_fake", "mean")).reset_index()
    ens_f = frames.groupby(["video_id", "frame"], sort=False).agg(
        label=("label", "first"), timestamp=("timestamp", "first"), p_fake=("p_fake", "mean"),
        frame_label=("frame_label", "first"), p_fake_std=("p_fake", "std")).reset_index()
    return ens_v, ens_f


def score_with_folds(run_dir: Path, cfg: Config, folds: list[dict], rows: list[IndexRow], root: Path,
                     device: torch.device, log: Log = print) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Every fold model on `rows`: (videos, frames) with a `fold` column, and each fold's metrics."""
    cache: dict = {}
    ds = ClipDataset(rows, root, cfg, train=False, full=cfg.data.eval_clip == "full", cache=cache)
    videos, frames, per_fold = [], [], []
    for f in sorted(folds, key=lambda f: f["fold"]):
        model, _ = load_model(run_dir / f["checkpoint"], cfg, device)
        v, fr = clip_predictions(model, ds, cfg, device, fold_class_counts(cfg, f))
        if cfg.eval.full_frames:
            fr = full_frames(model, cfg, root, rows, device, cache)
        per_fold.append({"fold": f["fold"], "metrics": labelled_metrics(v, fr, cfg)})
        videos.append(v.assign(fold=f["fold"]))
        frames.append(fr.assign(fold=f["fold"]))
        log(f"fold {f['fold']}: {len(v)} videos scored" + (f", roc_auc {per_fold[-1]['metrics'].get('test_roc_auc', float('nan')):.4f}"
                                                        if per_fold[-1]["metrics"] else ""))
    return pd.concat(videos, ignore_index=True), pd.concat(frames, ignore_index=True), per_fold


# ------------------------------------------------------------------ the other dataset
def dataset_name(data_dir: str | Path) -> str:
    """The dataset's name: metadata.csv `dataset` when it holds one, else the folder's (its parent's for .../npz)."""
    data_dir = Path(data_dir)
    meta = data_dir / "metadata.csv"
    if meta.exists():
        names = pd.read_csv(meta, usecols=lambda c: c == "dataset", dtype=str).get("dataset")
        if names is not None and names.dropna().nunique() == 1:
            return safe_name(names.dropna().iloc[0])
    folder = data_dir.resolve()
    return safe_name(folder.parent.name if folder.name == "npz" else folder.name)


def safe_name(name: str) -> str:
    """A name usable in file names: letters, digits, '-', '_' and '.'."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_")
    if not out:
        raise ValueError(f"{name!r} gives no usable dataset name; pass one with --name")
    return out


def cross_rows(cfg: Config, results: dict, data_dir: Path, splits: Sequence[str] | None, unlabeled: bool,
               skip_bad: bool, log: Log) -> tuple[list[IndexRow], list]:
    """The records to score: valid, of the chosen splits, labelled (unless `unlabeled`), none a fold trained on."""
    scan = scan_folder(data_dir, cfg.data.index, validate=True, n_mfcc=cfg.audio.n_mfcc)
    if scan.failures and not skip_bad:
        lines = "\n".join(f"  {f}: {r}" for f, r in scan.failures)
        raise ValueError(f"{len(scan.failures)} bad file(s) in {data_dir} (--skip-bad scores the rest):\n{lines}")
    rows = [r for r in scan.rows if not splits or r.split in splits]
    dropped = sum(r.label < 0 for r in rows) if not unlabeled else 0
    rows = [r for r in rows if unlabeled or r.label >= 0]
    if dropped:
        log(f"{data_dir}: {dropped} unlabelled video(s) left out (--unlabeled scores them, outside every metric)")
    if not rows:
        raise ValueError(f"{data_dir}: no videos to score" + (f" in split(s) {list(splits)}" if splits else ""))
    if Path(data_dir).resolve() == Path(cfg.data.root).resolve():
        seen = {v for f in results["folds"] for v in (*f.get("train_ids", []), *f.get("inner_ids", []))}
        used = sorted(r.video_id for r in rows if r.video_id in seen)
        if used:
            raise ValueError(f"{len(used)} video(s) of {data_dir} were trained or selected on by this run (e.g. "
                             f"{used[:3]}); score another dataset, or only its held-out split (--split test)")
    return rows, scan.failures


def cross_section(name: str, data_dir: Path, rows: list[IndexRow], per_fold: list[dict], ensemble: dict,
                  files: dict, failures: list) -> dict:
    """The kfold_results.json section of one cross-dataset evaluation, shaped like `test`."""
    labelled = [r for r in rows if r.label >= 0]
    return {"dataset": name, "data": str(data_dir), "splits": sorted({r.split for r in rows}),
            "video_ids": [r.video_id for r in rows], "n_real": sum(r.label == 0 for r in labelled),
            "n_fake": sum(r.label == 1 for r in labelled), "n_unlabeled": len(rows) - len(labelled),
            "folds": per_fold, **summarize(per_fold), "ensemble": ensemble, "files": files,
            "frames": "every frame of each video; video P(Fake) from its evaluation clip",
            "skipped_files": [{"file": f, "reason": r} for f, r in failures]}


def evaluate_run(run_dir: str | Path, data_dir: str | Path, *, name: str | None = None,
                 splits: Sequence[str] | None = None, unlabeled: bool = False, skip_bad: bool = False,
                 device: str | None = None, log: Log = print) -> dict:
    """Score another dataset's records with a run's fold models; write the CSVs and kfold_results.json cross[name]."""
    run_dir, data_dir = Path(run_dir), Path(data_dir)
    cfg, results = load_run_config(run_dir)
    name = safe_name(name) if name else dataset_name(data_dir)
    rows, failures = cross_rows(cfg, results, data_dir, splits, unlabeled, skip_bad, log)
    dev = resolve_device(device or cfg.train.device)
    log(f"{run_dir.name}: {len(results['folds'])} fold model(s) on {len(rows)} video(s) of {name} ({data_dir})")
    videos, frames, per_fold = score_with_folds(run_dir, cfg, results["folds"], rows, data_dir, dev, log)
    ens_v, ens_f = ensemble_tables(videos, frames)
    files = {"videos": f"predictions_cross_{name}_videos.csv", "frames": f"predictions_cross_{name}_frames.csv"}
    pd.concat([videos, ens_v.assign(fold="ensemble")], ignore_index=True).to_csv(run_dir / files["videos"], index=False)
    pd.concat([frames, ens_f.assign(fold="ensemble")], ignore_index=True).to_csv(run_dir / files["frames"], index=False)
    section = cross_section(name, data_dir, rows, per_fold, labelled_metrics(ens_v, ens_f, cfg), files, failures)
    results = json.loads((run_dir / "kfold_results.json").read_text())  # read again: written by the run's driver
    results.setdefault("cross", {})[name] = section
    write_json(run_dir / "kfold_results.json", results)
    return section


__all__ = ["clip_predictions", "cross_section", "dataset_name", "ensemble_tables", "evaluate_run", "labelled_metrics",
           "load_run_config", "score_with_folds"]
