"""The steps the numbered notebooks share, as functions (notebooks stay thin)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from workbench import paths
from workbench.analysis import temporal_stats
from workbench.config import Config
from workbench.kfold import make_folds
from workbench.losses import describe_priors
from workbench.predict import load_ensemble, predict_record, training_density
from workbench.records import VideoRecord, load_record, resolve, scan_folder
from workbench.trainer import resolve_device


# ------------------------------------------------------------------ the dataset
def dataset_table(data_dir: str | Path) -> pd.DataFrame:
    """One row per video: the index joined with ingest's metadata.csv when present."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise paths.missing_dataset(data_dir)
    rows = scan_folder(data_dir).rows
    df = pd.DataFrame([vars(r) for r in rows])
    meta = data_dir / "metadata.csv"
    if meta.exists():
        m = pd.read_csv(meta)
        extra = [c for c in m.columns if c not in df.columns or c == "video_id"]
        df = df.merge(m[extra], on="video_id", how="left")
    if "fake_type" not in df.columns:
        df["fake_type"] = np.where(df["label"] == 0, "real", "fake")
    return df


def fold_ids(table: pd.DataFrame, kind: str, folds: int, seed: int = 42) -> list[tuple[list[str], list[str]]]:
    """(train video ids, val video ids) per fold, made exactly as `workbench kfold` makes them."""
    pool = table[table["split"] != "test"].reset_index(drop=True)
    rows = read_index_like(pool)
    cfg = Config.from_dict({"seed": seed, "split": {"kind": kind, "kfold": folds}})
    ids = pool["video_id"].to_numpy()
    return [(list(ids[tr]), list(ids[va])) for tr, va in make_folds(rows, cfg)]


def read_index_like(df: pd.DataFrame) -> list:
    """IndexRow objects from a dataset table (for the split functions)."""
    from workbench.records import IndexRow
    return [IndexRow(path=r.path, video_id=r.video_id, label=int(r.label), group=str(r.group),
                     duration=float(r.duration), n_frames=int(r.n_frames), split=r.split) for r in df.itertuples()]


def condition_priors(conditions: dict[str, dict], class_counts: list[int]) -> pd.DataFrame:
    """For every condition, the FAKE prior each imbalance method makes the model see."""
    out = []
    for name, ov in conditions.items():
        cfg = Config.from_dict(ov)
        fake = describe_priors(cfg.loss, class_counts, cfg.train.weighted_sampler).loc["FAKE"]
        out.append({"method": name, **{k: float(v) for k, v in fake.items()}})
    return pd.DataFrame(out)


# ------------------------------------------------------------------ temporal analysis
def fold_checkpoints(cond_dir: str | Path) -> list[Path]:
    """The best checkpoint of every fold of a condition, in fold order."""
    import json
    path = Path(cond_dir) / "kfold_results.json"
    if not path.exists():
        raise paths.missing_study(Path(cond_dir).parent, f"no finished condition {Path(cond_dir).name!r}")
    res = json.loads(path.read_text())
    return [Path(cond_dir) / f["checkpoint"] for f in sorted(res["folds"], key=lambda f: f["fold"])]


def pick_videos(data_dir: str | Path, videos: list[str], n_fake: int = 2, *,
                table: pd.DataFrame | None = None) -> list[str]:
    """The videos to plot: the ones asked for, else the held-out test videos and a few FAKE ones.

    `table` is dataset_table(data_dir) when the caller already has it (else it is built here).
    """
    if videos:
        return list(videos)
    table = dataset_table(data_dir) if table is None else table
    test = table[table["split"] == "test"]["video_id"].tolist()
    fake = table[(table["split"] != "test") & (table["label"] == 1)]["video_id"].tolist()[:n_fake]
    return test + fake


def temporal_predictions(run_dir: str | Path, conditions: list[str], data_dir: str | Path, videos: list[str], *,
                         out_dir: str | Path, mc_samples: int = 0, device: str = "auto", chunk: int | None = None,
                         table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fold-ensemble P(Fake) of each video under each condition, at full and at training frame density.

    Writes `<out_dir>/<condition>/<video>_<density>.csv`; returns one row per (condition, video, density).
    `table` is dataset_table(data_dir) when the caller already has it (else it is built here).
    """
    from workbench.dataset import load_for_model
    dev = resolve_device(device)
    table = (dataset_table(data_dir) if table is None else table).set_index("video_id")
    rows = []
    for cond in conditions:
        models, cfg = load_ensemble(fold_checkpoints(Path(run_dir) / cond), dev)
        density = training_density(cfg, read_index_like(table.reset_index().query("split != 'test'")))
        for vid in videos:
            if vid not in table.index:
                raise KeyError(f"video {vid!r} is not in {data_dir}")
            rec = load_for_model(resolve(data_dir, table.loc[vid, "path"]), cfg)
            for name, fps in (("full", None), ("train_density", density)):
                df = predict_record(models, rec, fps=fps, chunk=chunk or cfg.train.chunk_size, device=dev, amp=cfg.train.amp,
                                    mc_samples=mc_samples)
                path = Path(out_dir) / cond / f"{vid}_{name}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                df.to_csv(path, index=False)
                rows.append({"condition": cond, "video_id": vid, "label": rec.label, "density": name,
                             "fps": rec.fps if fps is None else fps, "n_frames": len(df), "path": str(path)})
    return pd.DataFrame(rows)


def temporal_tables(preds: pd.DataFrame, curves: Mapping[str, pd.DataFrame],
                    bin_seconds: float = 10.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """temporal_stats of every curve of `preds` (curves: its `path` -> the per-frame P(Fake) table).

    Returns the summary (one row per condition, video and density) and the P(Fake) statistics per time
    bin (one row per bin, keyed the same way).
    """
    rows, bins = [], []
    for r in preds.itertuples():
        key = {"condition": r.condition, "video_id": r.video_id, "label": r.label, "density": r.density}
        s = temporal_stats(curves[r.path], bin_seconds=bin_seconds)
        b = s.pop("bins")
        bins.append(pd.concat([pd.DataFrame(key, index=b.index), b], axis=1))
        rows.append({**key, **s})
    return pd.DataFrame(rows), (pd.concat(bins, ignore_index=True) if bins else pd.DataFrame())


def load_video(data_dir: str | Path, video_id: str, *, table: pd.DataFrame | None = None) -> VideoRecord:
    """The record of one video as stored, crops left on disk and read on demand (for the figure strip and inspector).

    `table` is dataset_table(data_dir) when the caller already has it (else it is built here).
    """
    table = dataset_table(data_dir) if table is None else table
    path = table.loc[table["video_id"] == video_id, "path"]
    if path.empty:
        raise KeyError(f"video {video_id!r} is not in {data_dir}")
    return load_record(resolve(data_dir, path.iloc[0]), warn=False, lazy=True)


# ------------------------------------------------------------------ the summary
def compact_paradox(paradox: pd.DataFrame) -> pd.DataFrame:
    """The paradox table as 'mean ± std' strings, one column per metric (for text summaries)."""
    df = paradox.reset_index()
    out = pd.DataFrame({"condition": df["condition"]})
    for col in [c for c in df.columns if c.endswith("_mean")]:
        m = col[: -len("_mean")]
        out[m.removeprefix("val_")] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(df[col], df[f"{m}_std"])]
    return out


def write_summary(out_dir: str | Path, paradox: pd.DataFrame, diffs: pd.DataFrame | None, figures: list[Path],
                  heldout: pd.DataFrame | None = None) -> Path:
    """summary.md: the paradox table, the paired differences, the held-out videos' P(Fake) and the figures."""
    out = Path(out_dir) / "summary.md"
    lines = ["# Study summary", "", "## Video-level validation metrics beside REAL-frame behaviour (mean ± std over folds)",
             "", "```", compact_paradox(paradox).to_string(index=False), "```", ""]
    if diffs is not None and len(diffs):
        cols = [c for c in ("condition", "metric", "diff_mean", "ci_lo", "ci_hi", "paired") if c in diffs.columns]
        lines += ["## Differences against the baseline (bootstrap 95% CI over folds)", "",
                  "```", diffs[cols].round(4).to_string(index=False), "```", ""]
    if heldout is not None and len(heldout):
        lines += ["## Per-frame P(Fake) of the held-out videos (notebook 03: full density, fold ensemble)", "",
                  "```", heldout.round(4).to_string(index=False), "```", ""]
    lines += ["## Figures", ""] + [f"- {f}" for f in figures]
    out.write_text("\n".join(lines) + "\n")
    return out


def heldout_table(run_dir: str | Path, density: str = "full") -> pd.DataFrame:
    """Per condition and video, P(Fake) statistics of the videos notebook 03 scored (empty when it has not run)."""
    path = Path(run_dir) / "03_temporal_pfake" / "temporal_stats.csv"
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path)
    df = df[df["density"] == density]
    cols = [c for c in ("condition", "video_id", "label", "n_frames", "mean", "min", "max", "share_above",
                        "majority_label") if c in df.columns]
    return df[cols].reset_index(drop=True)
