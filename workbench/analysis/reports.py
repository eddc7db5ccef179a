"""The steps the numbered notebooks share, as functions (notebooks stay thin)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from workbench.analysis.runs import models_for
from workbench.analysis.tables import temporal_stats
from workbench.core import paths
from workbench.core.config import Config
from workbench.core.runtime import resolve_device
from workbench.data.dataset import load_for_model
from workbench.data.records import IndexRow, VideoRecord, load_record, resolve, scan_folder
from workbench.data.splits import make_folds
from workbench.evaluation.parts import part_of
from workbench.model.losses import describe_priors
from workbench.training.predict import load_ensemble, mc_rate, predict_record, training_density


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
    pool = table[(table["split"] != "test") & (table["label"] >= 0)].reset_index(drop=True)  # as load_dataset
    rows = read_index_like(pool)
    cfg = Config.from_dict({"seed": seed, "split": {"kind": kind, "kfold": folds}})
    ids = pool["video_id"].to_numpy()
    return [(list(ids[tr]), list(ids[va])) for tr, va in make_folds(rows, cfg)]


def read_index_like(df: pd.DataFrame) -> list:
    """IndexRow objects from a dataset table (for the split functions)."""
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


def pick_videos(data_dir: str | Path, videos: list[str], n_fake: int = 1, *,
                table: pd.DataFrame | None = None) -> list[str]:
    """The videos to plot: the ones asked for, else the held-out test's long videos (longer than every pool clip:
    where the study's paradox shows) and its first short REAL, short whole FAKE and partial fake, and `n_fake` pool
    FAKE ones.

    `table` is dataset_table(data_dir) when the caller already has it (else it is built here).
    """
    if videos:
        return list(videos)
    table = dataset_table(data_dir) if table is None else table
    pool = table[(table["split"] != "test") & (table["label"] >= 0)]
    longest = int(pool["n_frames"].max()) if len(pool) else 0
    test = table[table["split"] == "test"]
    part = pd.Series([part_of(int(n), longest, str(t).startswith("partial")) for n, t in
                      zip(test["n_frames"], test["fake_type"])], index=test.index)
    chosen = set(test.loc[part == "long", "video_id"])
    for kind, label in (("short", 0), ("short", 1), ("partial", 1)):  # the first of each kind
        chosen |= set(test.loc[(part == kind) & (test["label"] == label), "video_id"].head(1))
    fake = pool[pool["label"] == 1]["video_id"].tolist()[:n_fake]
    return [v for v in test["video_id"] if v in chosen] + fake


def temporal_predictions(run_dir: str | Path, conditions: list[str], data_dir: str | Path, videos: list[str], *,
                         out_dir: str | Path, mc_samples: int = 0, device: str = "auto", chunk: int | None = None,
                         table: pd.DataFrame | None = None) -> pd.DataFrame:
    """P(Fake) of each video under each condition, at full and at training frame density, from models that never
    trained on it (`models_for`: the fold ensemble for held-out videos, the scoring fold's model for pool ones).

    MC-dropout samples (`mc_samples` per model) use the trained model's rate (`training.predict.mc_rate`); none when the
    model has no dropout (`mc_p` 0 in the returned rows: the band is then the fold models' spread only).
    Writes `<out_dir>/<condition>/<video>_<density>.csv`; returns one row per (condition, video, density).
    `table` is dataset_table(data_dir) when the caller already has it (else it is built here).
    """
    dev = resolve_device(device)
    table = (dataset_table(data_dir) if table is None else table).set_index("video_id")
    rows = []
    for cond in conditions:
        loaded: dict[tuple, tuple] = {}
        for vid in videos:
            if vid not in table.index:
                raise KeyError(f"video {vid!r} is not in {data_dir}")
            ckpts, status = models_for(Path(run_dir) / cond, vid)
            models, cfg = loaded.setdefault(tuple(ckpts), load_ensemble(ckpts, dev))
            density = training_density(cfg, read_index_like(table.reset_index().query("split != 'test'")))
            rec = load_for_model(resolve(data_dir, table.loc[vid, "path"]), cfg)
            for name, fps in (("full", None), ("train_density", density)):
                df = predict_record(models, rec, fps=fps, chunk=chunk or cfg.train.chunk_size, device=dev,
                                    amp=cfg.train.amp, mc_samples=mc_samples, mc_p=mc_rate(cfg))
                path = Path(out_dir) / cond / f"{vid}_{name}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                df.to_csv(path, index=False)
                rows.append({"condition": cond, "video_id": vid, "label": rec.label, "status": status,
                             "n_models": len(models), "mc_p": mc_rate(cfg) if mc_samples else 0.0, "density": name,
                             "fps": rec.fps if fps is None else fps, "n_frames": len(df), "path": str(path)})
    return pd.DataFrame(rows)


def read_curves(preds: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every per-frame P(Fake) table temporal_predictions wrote, read once: its `path` -> the table."""
    return {r.path: pd.read_csv(r.path) for r in preds.itertuples()}


def temporal_tables(preds: pd.DataFrame, curves: Mapping[str, pd.DataFrame],
                    bin_seconds: float = 10.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """temporal_stats of every curve of `preds` (curves: its `path` -> the per-frame P(Fake) table).

    Returns the summary (one row per condition, video and density) and the P(Fake) statistics per time
    bin (one row per bin, keyed the same way).
    """
    rows, bins = [], []
    for r in preds.itertuples():
        key = {"condition": r.condition, "video_id": r.video_id, "label": r.label,
               "status": getattr(r, "status", ""), "density": r.density}
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
    if "selection" in df:
        out["selection"] = df["selection"]
    for col in [c for c in df.columns if c.endswith("_mean") and f"{c[:-5]}_std" in df.columns]:
        m = col[: -len("_mean")]
        out[m.removeprefix("outer_")] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(df[col], df[f"{m}_std"])]
    if "selection_optimism_acc" in df:
        out["optimism_acc"] = df["selection_optimism_acc"].map(lambda v: f"{v:+.3f}")
    return out


def _block(title: str, df: pd.DataFrame, note: str = "") -> list[str]:
    return [f"## {title}", ""] + ([note, ""] if note else []) + ["```", df.to_string(index=False), "```", ""]


def _selection_note(paradox: pd.DataFrame) -> str:
    modes = set(paradox.get("selection", pd.Series(["inner"])).astype(str))
    if modes == {"inner"}:
        return ("Outer-fold (scoring-fold) metrics at the epoch chosen on each fold's inner part: no reported number "
                "was used to choose anything. Standard deviations over folds use ddof=1.")
    if modes <= {"inner", "last"}:
        return ("Outer-fold (scoring-fold) metrics at the epoch chosen on each fold's inner part (selection = inner) "
                "or at the last epoch of a fixed budget (selection = last): no reported number was used to choose "
                "anything. Standard deviations over folds use ddof=1.")
    return ("Some conditions were selected on the scoring fold (selection = outer, the original study's protocol): "
            "their numbers are optimistic by construction. Standard deviations over folds use ddof=1.")


def resolution_note(diffs: pd.DataFrame) -> str:
    """What the paired comparisons can resolve: the accuracy step per fold and the median half-width per metric."""
    parts = []
    steps = diffs["step"].dropna()
    if len(steps):
        parts.append(f"With {1 / steps.median():.0f} scoring clips per fold, one clip moves a fold's accuracy by "
                     f"{steps.median():.3f}.")
    hw = diffs.groupby("metric")["half_width"].median().dropna()
    if len(hw):
        parts.append("A difference smaller than the interval's half-width cannot be told from fold noise; median "
                     "half-width per metric: " + ", ".join(f"{m.removeprefix('outer_')} {v:.3f}" for m, v in hw.items()) + ".")
    p80 = diffs.groupby("metric")["power80"].median().dropna() if "power80" in diffs else pd.Series(dtype=float)
    if len(p80):
        parts.append("A true difference is found 4 times in 5 only from power80 up (80% power at these folds' own "
                     "spread); median power80 per metric: "
                     + ", ".join(f"{m.removeprefix('outer_')} {v:.3f}" for m, v in p80.items()) + ".")
    return " ".join(parts)


def write_summary(out_dir: str | Path, paradox: pd.DataFrame, diffs: pd.DataFrame | None, figures: list[Path],
                  heldout: pd.DataFrame | None = None, optimism: pd.DataFrame | None = None,
                  curves: pd.DataFrame | None = None, extra: dict[str, pd.DataFrame] | None = None) -> Path:
    """summary.md: the paradox table, selection optimism, the held-out test, the paired differences with what they
    can resolve, per-video P(Fake) curves (notebook 03), any `extra` tables (title -> table) and the figures."""
    out = Path(out_dir) / "summary.md"
    lines = ["# Study summary", ""]
    lines += _block("Video-level metrics beside REAL-frame behaviour (mean ± std over outer folds)",
                    compact_paradox(paradox), _selection_note(paradox))
    if optimism is not None and len(optimism):
        cols = ["condition", "metric", "selection", "protocol_mean", "honest_mean", "optimism_mean", "optimism_std"]
        lines += _block("Selection optimism: the original protocol's figure minus the honest one", optimism[cols].round(4),
                        "protocol = the scoring fold's metric at the epoch that maximises it (what choosing the best "
                        "epoch on the reported fold prints); honest = at the epoch chosen on the inner part; same run.")
    if heldout is not None and len(heldout):
        lines += _block("Held-out test (clips no model of the run trained on; fold ensemble)", heldout.round(4))
    if diffs is not None and len(diffs):
        cols = [c for c in ("condition", "metric", "diff_mean", "ci_lo", "ci_hi", "half_width", "power80", "p_value",
                            "paired")
                if c in diffs.columns]
        lines += _block("Differences against the baseline (corrected resampled t-test over folds, 95% CI)",
                        diffs[cols].round(4), resolution_note(diffs))
    for title, table in (extra or {}).items():
        if table is not None and len(table):
            lines += _block(title, table.round(4))
    if curves is not None and len(curves):
        lines += _block("Per-frame P(Fake) of chosen videos (notebook 03, full density)", curves.round(4),
                        "held-out: scored by the fold ensemble, which never trained on it; out-of-fold (fold k): a pool "
                        "video scored by the one fold model that did not train on it.")
    lines += ["## Figures", ""] + [f"- {f}" for f in figures]
    out.write_text("\n".join(lines) + "\n")
    return out


LOCALIZATION_HEADLINE = ["condition", "scope", "fold", "protocol", "loc_ap_iou50", "loc_ap_iou75", "loc_ar_at50", "loc_ar_at5",
                         "loc_score", "true_frame_roc_auc", "true_frame_ap", "true_real_frame_pfake_mean",
                         "n_segments", "n_proposals", "n_proposals_real"]
ATTRIBUTION_HEADLINE = ["condition", "video_id", "label", "fake_type", "p_fake", "blames_mean", "blames_donor",
                        "drive_face_donor", "drive_lip_donor", "drive_audio_donor"]
# (file under the study folder, title in summaries, columns, rows kept): what later notebooks carry when present
NOTEBOOK_TABLES = (
    ("06_localization_attribution/localization.csv", "Temporal localization per condition (notebook 06: every frame; "
     "test = fold ensemble on the held-out test, oof = each pool video by its own fold model)",
     LOCALIZATION_HEADLINE, "fold in ['ensemble', 'oof']"),
    ("06_localization_attribution/attribution.csv", "Which modality drives the held-out test videos' P(Fake) "
     "(notebook 06: drive = P(Fake) minus P(Fake) with that modality replaced)", ATTRIBUTION_HEADLINE, "label == 0"),
)


def notebook_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Title -> headline of every NOTEBOOK_TABLES file that exists in the study folder (its columns, rows kept)."""
    out = {}
    for f, title, cols, rows in NOTEBOOK_TABLES:
        path = Path(run_dir) / f
        if path.exists():
            df = pd.read_csv(path, dtype={"fold": str})
            df = df.query(rows) if len(df) else df
            out[title] = df[[c for c in cols if c in df.columns]].reset_index(drop=True)
    return out


def curves_table(run_dir: str | Path, density: str = "full") -> pd.DataFrame:
    """Per condition and video, P(Fake) statistics of the videos notebook 03 scored (empty when it has not run)."""
    path = Path(run_dir) / "03_temporal_pfake" / "temporal_stats.csv"
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path)
    df = df[df["density"] == density]
    cols = [c for c in ("condition", "video_id", "label", "status", "n_frames", "mean", "min", "max", "share_above",
                        "majority_label") if c in df.columns]
    return df[cols].reset_index(drop=True)
