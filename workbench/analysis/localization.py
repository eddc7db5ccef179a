"""Per-condition localization tables of a study (notebook 06): frames predicted or read back, then scored."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from workbench.analysis.runs import fold_checkpoints, read_run
from workbench.core.config import LocalizationConfig
from workbench.core.runtime import resolve_device
from workbench.data.dataset import load_for_model
from workbench.data.records import load_record, resolve
from workbench.evaluation.localization import (
    FRAME_COLUMNS,
    attach_frame_labels,
    check_full_density,
    ensemble_frames,
    localization_metrics,
)
from workbench.evaluation.metrics import true_frame_metrics
from workbench.training.predict import load_ensemble, predict_record

SCOPES = ("test", "oof")
# notebook 06's headline of a localization table (the rows with fold 'ensemble' or 'oof'), in this order
HEADLINE_COLUMNS = ["condition", "scope", "fold", "protocol", "loc_ap_iou50", "loc_ap_iou75", "loc_ar_at50",
                    "loc_ar_at5", "loc_score", "true_frame_roc_auc", "true_frame_ap", "true_frame_roc_auc_in_fake",
                    "true_real_frame_pfake_mean", "n_segments", "n_proposals", "n_proposals_real"]


# ------------------------------------------------------------------ condition folders (notebooks 02 and 06)
def _fold_ids(cond_dir: Path) -> list[tuple[int, list[str]]]:
    """(fold, the video ids that fold's model was scored on and never trained on) from kfold_results.json."""
    return [(f.fold, f.outer_ids) for f in read_run(cond_dir).folds]


def _records(data_dir: Path, table: pd.DataFrame, ids: Iterable[str]) -> dict:
    paths = dict(zip(table["video_id"].astype(str), table["path"]))
    return {v: load_record(resolve(data_dir, paths[v]), warn=False, lazy=True) for v in ids}


def _predict(cond_dir: Path, data_dir: Path, table: pd.DataFrame, jobs: list[tuple[int | None, list[str]]],
             device: str) -> pd.DataFrame:
    """Full-density P(Fake) of each job's videos: by fold model k (k, ids), or by every fold model (None, ids)."""

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
    protocol = (cfg or LocalizationConfig()).protocol  # which AP/AR rules the loc_* numbers follow
    if scope == "oof":
        return pd.DataFrame([{"scope": scope, "fold": "oof", "protocol": protocol,
                              **localization_metrics(frames, cfg, counts=True), **_true_frames(frames)}])
    frames = frames[pd.to_numeric(frames["fold"], errors="coerce").notna()]  # fold models only (no ensemble rows)
    rows = []
    for k, g in frames.groupby("fold", sort=True):
        rows.append({"scope": scope, "fold": str(k), "protocol": protocol, **localization_metrics(g, cfg, counts=True),
                     **_true_frames(g)})
    ens = ensemble_frames(frames)
    rows.append({"scope": scope, "fold": "ensemble", "protocol": protocol, **localization_metrics(ens, cfg, counts=True),
                 **_true_frames(ens)})
    return pd.DataFrame(rows)


def default_scopes(table: pd.DataFrame) -> tuple[str, ...]:
    """('test', 'oof') when the dataset has split=test clips, else ('oof',)."""
    return SCOPES if (table["split"] == "test").any() else ("oof",)


def condition_localization(cond_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, *,
                           scopes: Sequence[str] | None = None, cfg: LocalizationConfig | None = None,
                           device: str = "auto", cache_dir: str | Path | None = None) -> pd.DataFrame:
    """localization_table of one condition folder for each scope (default: default_scopes), stacked; empty when
    there is nothing to localize. `cache_dir` keeps computed frames as <condition>_<scope>_frames.csv."""
    cond_dir = Path(cond_dir)
    out = []
    for scope in default_scopes(table) if scopes is None else scopes:
        cache = Path(cache_dir) / f"{cond_dir.name}_{scope}_frames.csv" if cache_dir is not None else None
        t = localization_table(condition_frames(cond_dir, data_dir, table, scope, device=device, cache=cache),
                               scope, cfg)
        if len(t):
            out.append(t)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def study_localization(run_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, conditions: Sequence[str],
                       *, scopes: Sequence[str] = SCOPES, cfg: LocalizationConfig | None = None,
                       device: str = "auto", cache_dir: str | Path | None = None) -> pd.DataFrame:
    """condition_localization of every condition of a study (one row per condition, scope and fold)."""
    out = [condition_localization(Path(run_dir) / cond, data_dir, table, scopes=scopes, cfg=cfg, device=device,
                                  cache_dir=cache_dir).assign(condition=cond) for cond in conditions]
    out = [t for t in out if len(t)]
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    return df[["condition", *[c for c in df.columns if c != "condition"]]]


def headline(loc_table: pd.DataFrame, columns: Sequence[str] = HEADLINE_COLUMNS) -> pd.DataFrame:
    """The rows of the fold ensemble ('test') and the out-of-fold pool ('oof'), with `columns` present."""
    if not len(loc_table):
        return loc_table
    return loc_table[loc_table["fold"].isin(["ensemble", "oof"])][[c for c in columns if c in loc_table]]


__all__ = ["HEADLINE_COLUMNS", "SCOPES", "condition_frames", "condition_localization", "default_scopes", "headline",
           "localization_table", "study_localization"]
