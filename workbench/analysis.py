"""Analysis of K-fold runs: fold tables, aggregation rules, calibration, condition comparison and audits.

Everything takes DataFrames, arrays or run folders and returns data (the figures live in
``workbench.plots``). Labels are 0 = REAL, 1 = FAKE; ``p_fake`` is P(Fake) and a sample is
predicted FAKE when ``p_fake > threshold`` (the convention of ``workbench.metrics``).
Calibrators are always fitted on validation predictions of *other* folds and applied to
held-out ones, so no reported number is fitted on the data it is measured on.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.metrics import (
    aggregate_frames,
    bootstrap_ci,
    brier,
    expected_calibration_error,
    video_metrics,
)
from workbench.study import condition_dirs

LABEL_NAMES = {0: "REAL", 1: "FAKE"}
VIDEO_METRICS = ("val_acc", "val_f1", "val_roc_auc", "val_balanced_acc")
REAL_FRAME_METRICS = ("val_real_frame_acc", "val_real_frame_pfake_mean", "val_real_frame_above_05")
SHORTCUT_FEATURES = ("duration", "n_frames", "lead_silence", "trail_silence", "mean_brightness")
CALIBRATION_METHODS = ("temperature", "platt", "f1_threshold")
_EPS = 1e-6


# ============================================================================ loading a run
@dataclass
class Run:
    """One condition's K-fold run folder, loaded."""

    name: str
    path: Path
    config: dict[str, Any]
    results: dict[str, Any]
    history: pd.DataFrame  # every fold's history.csv with a `fold` column
    videos: pd.DataFrame  # out-of-fold video predictions
    frames: pd.DataFrame  # out-of-fold frame predictions

    @property
    def folds(self) -> list[dict[str, Any]]:
        """The per-fold entries of kfold_results.json."""
        return list(self.results.get("folds", []))


def _need(path: Path) -> Path:
    """The path, or a FileNotFoundError naming the missing file and its run folder."""
    if not path.exists():
        raise FileNotFoundError(f"run folder {path.parent} is missing {path.name!r} (expected at {path})")
    return path


def load_run(run_dir: str | Path, require_history: bool = True) -> Run:
    """Read kfold_results.json, config.yaml, fold_*/history.csv and the out-of-fold prediction CSVs."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    results = json.loads(_need(run_dir / "kfold_results.json").read_text())
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists():
        config = yaml.safe_load(cfg_path.read_text()) or {}
    elif "config" in results:
        config = dict(results["config"])
    else:
        _need(cfg_path)
    videos = pd.read_csv(_need(run_dir / "predictions_videos.csv"))
    frames = pd.read_csv(_need(run_dir / "predictions_frames.csv"))
    fold_ids = [int(f["fold"]) for f in results.get("folds", [])]
    fold_ids += [int(m.group(1)) for d in run_dir.glob("fold_*") if (m := re.fullmatch(r"fold_(\d+)", d.name))]
    histories = []
    for k in sorted(set(fold_ids)):
        h_path = run_dir / f"fold_{k}" / "history.csv"
        if not h_path.exists():
            if require_history:
                _need(h_path)
            continue
        h = pd.read_csv(h_path)
        h.insert(0, "fold", k)
        histories.append(h)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=["fold", "epoch"])
    name = str(results.get("condition") or config.get("name") or run_dir.name)
    return Run(name, run_dir, config, results, history, videos, frames)


def load_runs(run_dir: str | Path, names: Sequence[str] | None = None) -> dict[str, Run]:
    """The finished conditions of a study folder (study.condition_dirs), loaded: all, or those named, in that order."""
    dirs = condition_dirs(run_dir)
    missing = [n for n in names or () if n not in dirs]
    if missing:
        raise KeyError(f"no finished run of condition(s) {missing} in {run_dir}; finished: {list(dirs)}")
    return {n: load_run(dirs[n]) for n in (names or dirs)}


def _as_runs(runs: Run | str | Path | Iterable[Run | str | Path] | Mapping[str, Run | str | Path]) -> dict[str, Run]:
    """Runs keyed by condition name, from runs, paths, a list of either or a name -> run mapping."""
    if isinstance(runs, (Run, str, Path)):
        runs = [runs]
    if isinstance(runs, Mapping):
        items = [(str(k), v if isinstance(v, Run) else load_run(v)) for k, v in runs.items()]
    else:
        loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
        items = [(r.name, r) for r in loaded]
    out: dict[str, Run] = {}
    for name, run in items:
        if name in out:
            raise ValueError(f"two runs share the condition name {name!r}; pass a dict name -> run")
        out[name] = run
    return out


def _metric_order(names: Iterable[str]) -> list[str]:
    """Metric names with the study's headline metrics first, the rest alphabetical."""
    names = list(dict.fromkeys(names))
    head = [m for m in (*VIDEO_METRICS, *REAL_FRAME_METRICS) if m in names]
    return head + sorted(m for m in names if m not in head)


# ============================================================================ tables of one run
def fold_table(run: Run, metrics: Sequence[str] | None = None, ddof: int = 1) -> pd.DataFrame:
    """Per-fold best-epoch metrics plus `mean` and `std` rows (std across folds with `ddof`)."""
    folds = run.folds
    if not folds:
        raise ValueError(f"run {run.name!r} has no folds in kfold_results.json")
    if metrics is None:
        metrics = _metric_order(k for f in folds for k in f.get("metrics", {}) if k.startswith("val_"))
    rows = {}
    for f in folds:
        row = {"best_epoch": f.get("best_epoch", math.nan)}
        row.update({m: f.get("metrics", {}).get(m, math.nan) for m in metrics})
        rows[int(f["fold"])] = row
    table = pd.DataFrame.from_dict(rows, orient="index").astype(float)
    stats = pd.DataFrame({"mean": table.mean(), "std": table.std(ddof=ddof)}).T
    out = pd.concat([table, stats])
    out.index = pd.Index(list(table.index) + ["mean", "std"], name="fold", dtype=object)
    return out


def _video_scores(frames_df: pd.DataFrame, rule: str, k: float) -> pd.DataFrame:
    """One row per video: label, fold (when present) and the frame-aggregated score under `rule`."""
    keys = ["video_id", "label"] + (["fold"] if "fold" in frames_df else [])
    g = frames_df.groupby(keys, sort=True)["p_fake"]
    return g.apply(lambda s: aggregate_frames(s.to_numpy(), rule, k=k)).rename("p_fake").reset_index()


def aggregation_table(
    frames_df: pd.DataFrame,
    rules: Sequence[str] = ("mean", "majority", "max", "topk_mean"),
    threshold: float = 0.5,
    k: float = 0.1,
    videos_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Video-level metrics when each frame-to-video rule replaces the video head (row `video_head` from videos_df)."""
    rows = {}
    if videos_df is not None:
        rows["video_head"] = {"n_videos": len(videos_df),
                              **video_metrics(videos_df["label"].to_numpy(), videos_df["p_fake"].to_numpy(), threshold)}
    for rule in rules:
        v = _video_scores(frames_df, rule, k)
        rows[rule] = {"n_videos": len(v), **video_metrics(v["label"].to_numpy(), v["p_fake"].to_numpy(), threshold)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "rule"
    return out


# ============================================================================ calibration
def _logit(p: Any) -> np.ndarray:
    """log(p / (1 - p)) with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _two_classes(y: np.ndarray, who: str) -> None:
    """Fail clearly when a calibrator is asked to fit on one class."""
    if np.unique(y).size < 2:
        raise ValueError(f"{who}: fitting data holds one class only ({np.unique(y).tolist()}); need REAL and FAKE")


def fit_f1_threshold(y: Any, p: Any) -> float:
    """The threshold t maximising F1 of the rule `p > t` on (y, p), from precision_recall_curve."""
    y = np.ravel(np.asarray(y)).astype(int)
    p = np.ravel(np.asarray(p, dtype=np.float64))
    _two_classes(y, "fit_f1_threshold")
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = float(thresholds[int(np.argmax(f1))])  # curve predicts FAKE for p >= best
    below = p[p < best]
    # the same decisions under the strict rule p > t: a t between `best` and the next lower score
    return float((best + below.max()) / 2) if below.size else float(max(best - _EPS, 0.0))


@dataclass
class PlattScaler:
    """Platt scaling: a logistic regression on logit(P(Fake))."""

    C: float = 1e6  # inverse regularisation (large: plain maximum likelihood)
    coef_: float = field(default=math.nan, init=False)
    intercept_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "PlattScaler":
        """Fit slope and intercept on labels y and probabilities p."""
        y = np.ravel(np.asarray(y)).astype(int)
        _two_classes(y, "PlattScaler.fit")
        model = LogisticRegression(C=self.C, max_iter=1000).fit(_logit(p)[:, None], y)
        self.coef_, self.intercept_ = float(model.coef_[0, 0]), float(model.intercept_[0])
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated P(Fake)."""
        if math.isnan(self.coef_):
            raise RuntimeError("PlattScaler.transform before fit")
        return expit(self.coef_ * _logit(p) + self.intercept_)


@dataclass
class TemperatureScaler:
    """Temperature scaling: P(Fake) = sigmoid(logit / T) with the single T minimising the NLL."""

    bounds: tuple[float, float] = (1e-2, 1e2)
    temperature_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "TemperatureScaler":
        """Fit T on labels y and probabilities p (bounded search over log T)."""
        y = np.ravel(np.asarray(y)).astype(np.float64)
        z = _logit(p)

        def nll(log_t: float) -> float:
            s = z / math.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, s) - y * s))

        lo, hi = (math.log(b) for b in self.bounds)
        self.temperature_ = float(math.exp(minimize_scalar(nll, bounds=(lo, hi), method="bounded").x))
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated P(Fake)."""
        if math.isnan(self.temperature_):
            raise RuntimeError("TemperatureScaler.transform before fit")
        return expit(_logit(p) / self.temperature_)


@dataclass
class F1Threshold:
    """A decision threshold fitted for F1; probabilities stay as they are."""

    threshold_: float = field(default=math.nan, init=False)

    def fit(self, y: Any, p: Any) -> "F1Threshold":
        """Fit the threshold with fit_f1_threshold."""
        self.threshold_ = fit_f1_threshold(y, p)
        return self

    def transform(self, p: Any) -> np.ndarray:
        """P(Fake) unchanged."""
        return np.asarray(p, dtype=np.float64)


def make_calibrator(method: str) -> PlattScaler | TemperatureScaler | F1Threshold:
    """A fresh calibrator: platt | temperature | f1_threshold."""
    makers = {"platt": PlattScaler, "temperature": TemperatureScaler, "f1_threshold": F1Threshold}
    if method not in makers:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {sorted(makers)}")
    return makers[method]()


@dataclass
class Calibrated:
    """Cross-fold calibration output: both tables with `p_fake_cal` and `threshold_cal` columns."""

    method: str
    videos: pd.DataFrame
    frames: pd.DataFrame | None
    fitted: dict[int, Any]  # fold -> calibrator fitted on the other folds
    fit_folds: dict[int, list[int]]  # fold -> folds it was fitted on


def calibrate_cross_fold(
    videos_df: pd.DataFrame,
    frames_df: pd.DataFrame | None = None,
    method: str = "temperature",
    threshold: float = 0.5,
) -> Calibrated:
    """For each fold fit on the other folds' out-of-fold videos; apply to this fold's videos and frames."""
    if "fold" not in videos_df:
        raise ValueError("calibrate_cross_fold: videos_df needs a `fold` column (out-of-fold predictions)")
    folds = sorted(int(f) for f in videos_df["fold"].unique())
    if len(folds) < 2:
        raise ValueError(f"calibrate_cross_fold: need at least 2 folds to fit on other folds, got {folds}")
    videos = videos_df.copy()
    videos["p_fake_cal"] = np.nan
    videos["threshold_cal"] = float(threshold)
    frames = None
    if frames_df is not None:
        frames = frames_df.copy()
        if "fold" not in frames:
            fold_of = videos_df.set_index("video_id")["fold"]
            frames["fold"] = frames["video_id"].map(fold_of)
        frames["p_fake_cal"] = np.nan
        frames["threshold_cal"] = float(threshold)
    fitted, fit_folds = {}, {}
    for k in folds:
        train = videos_df[videos_df["fold"] != k]
        cal = make_calibrator(method).fit(train["label"].to_numpy(), train["p_fake"].to_numpy())
        thr = cal.threshold_ if isinstance(cal, F1Threshold) else threshold
        fitted[k], fit_folds[k] = cal, [f for f in folds if f != k]
        sel = videos["fold"] == k
        videos.loc[sel, "p_fake_cal"] = cal.transform(videos.loc[sel, "p_fake"].to_numpy())
        videos.loc[sel, "threshold_cal"] = thr
        if frames is not None:
            fsel = frames["fold"] == k
            frames.loc[fsel, "p_fake_cal"] = cal.transform(frames.loc[fsel, "p_fake"].to_numpy())
            frames.loc[fsel, "threshold_cal"] = thr
    return Calibrated(method, videos, frames, fitted, fit_folds)


def _decision_row(y: np.ndarray, p: np.ndarray, thr: Any, prefix: str) -> dict[str, float]:
    """Accuracy, balanced accuracy and F1 of `p > thr` (thr scalar or per row)."""
    pred = (p > np.asarray(thr, dtype=np.float64)).astype(int)
    return {f"{prefix}acc": float(accuracy_score(y, pred)),
            f"{prefix}balanced_acc": float(balanced_accuracy_score(y, pred)),
            f"{prefix}f1": float(f1_score(y, pred, zero_division=0))}


def _calibration_row(videos: pd.DataFrame, frames: pd.DataFrame | None, col: str, thr: Any, ftr: Any,
                     n_bins: int) -> dict[str, float]:
    """ECE, Brier, NLL and decision metrics at video level; ECE, Brier and REAL-frame P(Fake) at frame level."""
    y, p = videos["label"].to_numpy().astype(int), videos[col].to_numpy(dtype=np.float64)
    row = {"video_ece": expected_calibration_error(y, p, n_bins), "video_brier": brier(y, p),
           "video_nll": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
           **_decision_row(y, p, thr, "video_"), "threshold_mean": float(np.mean(thr))}
    if frames is not None and len(frames):
        fy, fp = frames["label"].to_numpy().astype(int), frames[col].to_numpy(dtype=np.float64)
        real = fy == 0
        ft = np.broadcast_to(np.asarray(ftr, dtype=np.float64), fp.shape)
        row.update({"frame_ece": expected_calibration_error(fy, fp, n_bins), "frame_brier": brier(fy, fp),
                    "real_frame_pfake_mean": float(fp[real].mean()) if real.any() else math.nan,
                    "real_frame_above_thr": float((fp[real] > ft[real]).mean()) if real.any() else math.nan})
    return row


def calibration_report(
    videos_df: pd.DataFrame,
    frames_df: pd.DataFrame | None = None,
    methods: Sequence[str] = CALIBRATION_METHODS,
    n_bins: int = 15,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """ECE/Brier at video and frame level and REAL frames' P(Fake), uncalibrated vs each cross-fold method."""
    rows = {"uncalibrated": _calibration_row(videos_df, frames_df, "p_fake", threshold, threshold, n_bins)}
    for method in methods:
        cal = calibrate_cross_fold(videos_df, frames_df, method, threshold)
        ftr = cal.frames["threshold_cal"].to_numpy() if cal.frames is not None else threshold
        rows[method] = _calibration_row(cal.videos, cal.frames, "p_fake_cal", cal.videos["threshold_cal"].to_numpy(),
                                        ftr, n_bins)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out


# ============================================================================ comparing conditions
def _fold_values(run: Run, metric: str) -> np.ndarray:
    """The metric of every fold (NaN where a fold lacks it)."""
    return np.array([f.get("metrics", {}).get(metric, math.nan) for f in run.folds], dtype=np.float64)


def paradox_table(
    runs: Any,
    video_cols: Sequence[str] = VIDEO_METRICS,
    frame_cols: Sequence[str] = REAL_FRAME_METRICS,
    ddof: int = 1,
) -> pd.DataFrame:
    """One row per condition: video-level val metrics beside REAL-frame metrics (`<metric>_mean`, `_std`)."""
    rows = {}
    for name, run in _as_runs(runs).items():
        row: dict[str, float] = {"n_folds": len(run.folds)}
        for m in (*video_cols, *frame_cols):
            v = _fold_values(run, m)
            v = v[~np.isnan(v)]
            row[f"{m}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{m}_std"] = float(v.std(ddof=ddof)) if v.size > ddof else math.nan
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "condition"
    return out


def _unpaired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int, alpha: float) -> tuple[float, float, float]:
    """(mean(a) - mean(b), lo, hi) resampling a and b independently."""
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(1)
    db = b[rng.integers(0, b.size, size=(n_boot, b.size))].mean(1)
    lo, hi = np.quantile(da - db, [alpha / 2, 1 - alpha / 2])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def _match_folds(run: Run, base: Run) -> tuple[list[tuple[int, int]], str]:
    """(condition fold index, baseline fold index) pairs when every fold's val_ids match, and a note."""
    def key(f: dict) -> frozenset:
        return frozenset(map(str, f.get("val_ids") or []))

    base_keys = {key(f): i for i, f in enumerate(base.folds)}
    if any(not k for k in base_keys) or any(not key(f) for f in run.folds):
        return [], "unpaired: val_ids not recorded"
    pairs = [(i, base_keys[key(f)]) for i, f in enumerate(run.folds) if key(f) in base_keys]
    if len(pairs) == len(run.folds) == len(base.folds):
        return pairs, "paired: identical fold membership"
    return [], f"unpaired: fold membership differs ({len(pairs)} of {len(run.folds)} folds match)"


def paired_differences(
    runs: Any,
    baseline: str,
    metrics: Sequence[str] = (*VIDEO_METRICS, *REAL_FRAME_METRICS),
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-fold differences (condition - baseline) with a bootstrap CI; paired only when val folds match."""
    runs = _as_runs(runs)
    if baseline not in runs:
        raise KeyError(f"baseline {baseline!r} not among the conditions {list(runs)}")
    base = runs[baseline]
    rows = []
    for name, run in runs.items():
        if name == baseline:
            continue
        pairs, note = _match_folds(run, base)
        for m in metrics:
            a, b = _fold_values(run, m), _fold_values(base, m)
            row = {"condition": name, "baseline": baseline, "metric": m, "paired": bool(pairs), "pairing": note,
                   "n_folds": len(a), "condition_mean": float(np.nanmean(a)) if a.size else math.nan,
                   "baseline_mean": float(np.nanmean(b)) if b.size else math.nan}
            if pairs:
                d = np.array([a[i] - b[j] for i, j in pairs])
                ok = ~np.isnan(d)
                stats = bootstrap_ci(d[ok], n_boot=n_boot, seed=seed, alpha=alpha) if ok.any() else (math.nan,) * 3
                row["fold_diffs"] = d.round(6).tolist()
            else:
                a_, b_ = a[~np.isnan(a)], b[~np.isnan(b)]
                stats = (_unpaired_bootstrap(a_, b_, n_boot, seed, alpha) if a_.size and b_.size
                         else (math.nan,) * 3)
                row["fold_diffs"] = []
            row["diff_mean"], row["ci_lo"], row["ci_hi"] = stats
            row["ci_excludes_0"] = bool(stats[1] > 0 or stats[2] < 0)
            rows.append(row)
    return pd.DataFrame(rows)


# ============================================================================ shortcut and leakage audit
def _fold_ids(folds: Sequence[Any]) -> list[tuple[list[str], list[str]]]:
    """(train_ids, val_ids) pairs from tuples or kfold_results fold dicts."""
    out = []
    for f in folds:
        tr, va = (f["train_ids"], f["val_ids"]) if isinstance(f, Mapping) else f
        out.append(([str(v) for v in tr], [str(v) for v in va]))
    return out


def _group_map(groups: Mapping[str, str] | pd.Series | pd.DataFrame) -> dict[str, str]:
    """video_id -> group from a dict, a Series indexed by video_id or a DataFrame with video_id and group."""
    if isinstance(groups, pd.DataFrame):
        return dict(zip(groups["video_id"].astype(str), groups["group"].astype(str)))
    return {str(k): str(v) for k, v in dict(groups).items()}


def identity_overlap(folds: Sequence[Any], groups: Mapping[str, str] | pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Per fold: identities in both train and val, how many val videos they touch, and shared video ids."""
    gmap = _group_map(groups)
    rows = []
    for k, (tr, va) in enumerate(_fold_ids(folds)):
        g_tr = {gmap[v] for v in tr if v in gmap}
        g_va = [gmap.get(v) for v in va]
        shared = sorted({g for g in g_va if g is not None and g in g_tr})
        affected = sum(g is not None and g in g_tr for g in g_va)
        rows.append({"fold": k, "n_train": len(tr), "n_val": len(va), "n_val_identities": len({g for g in g_va if g}),
                     "n_shared_identities": len(shared), "shared_identities": ", ".join(shared),
                     "val_videos_affected": affected, "val_share_affected": affected / len(va) if va else math.nan,
                     "shared_video_ids": len(set(tr) & set(va)),
                     "n_missing_group": sum(v not in gmap for v in (*tr, *va))})
    return pd.DataFrame(rows)


def metadata_shortcut_audit(
    metadata_df: pd.DataFrame,
    folds: Sequence[Any],
    features: Sequence[str] = SHORTCUT_FEATURES,
    seed: int = 0,
    model: str = "forest",
    auc_warn: float = 0.75,
) -> dict[str, Any]:
    """Train a metadata-only classifier on the same folds; warn when it beats chance by a wide margin."""
    used = [f for f in features if f in metadata_df.columns]
    missing = [f for f in features if f not in metadata_df.columns]
    if not used:
        raise ValueError(f"metadata_shortcut_audit: none of the features {list(features)} are in the metadata "
                         f"(columns: {list(metadata_df.columns)})")
    meta = metadata_df.assign(video_id=metadata_df["video_id"].astype(str)).drop_duplicates("video_id")
    meta = meta.set_index("video_id")
    X_all = meta[used].apply(pd.to_numeric, errors="coerce")
    y_all = meta["label"].astype(int)
    rows, importances = [], []
    for k, (tr, va) in enumerate(_fold_ids(folds)):
        tr = [v for v in tr if v in meta.index]
        va = [v for v in va if v in meta.index]
        if model == "forest":
            clf = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                RandomForestClassifier(n_estimators=100, min_samples_leaf=3, class_weight="balanced",
                                                       random_state=seed + k, n_jobs=1))
        elif model == "logistic":
            clf = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                LogisticRegression(class_weight="balanced", max_iter=1000))
        else:
            raise ValueError(f"unknown audit model {model!r}; choose forest or logistic")
        y_tr, y_va = y_all.loc[tr].to_numpy(), y_all.loc[va].to_numpy()
        if np.unique(y_tr).size < 2 or not va:
            rows.append({"fold": k, "n_train": len(tr), "n_val": len(va), "roc_auc": math.nan, "balanced_acc": math.nan})
            continue
        clf.fit(X_all.loc[tr].to_numpy(), y_tr)
        p = clf.predict_proba(X_all.loc[va].to_numpy())[:, 1]
        auc = float(roc_auc_score(y_va, p)) if np.unique(y_va).size == 2 else math.nan
        rows.append({"fold": k, "n_train": len(tr), "n_val": len(va), "roc_auc": auc,
                     "balanced_acc": float(balanced_accuracy_score(y_va, (p > 0.5).astype(int)))})
        last = clf[-1]
        imp = last.feature_importances_ if model == "forest" else np.abs(last.coef_[0])
        importances.append(imp)
    per_fold = pd.DataFrame(rows)
    mean_auc = float(per_fold["roc_auc"].mean())
    mean_bacc = float(per_fold["balanced_acc"].mean())
    per_feature = {}
    for f in used:  # single-feature AUC on all videos, direction-free
        x, ok = X_all[f], X_all[f].notna()
        if ok.any() and y_all[ok].nunique() == 2:
            a = roc_auc_score(y_all[ok], x[ok])
            per_feature[f] = float(max(a, 1 - a))
        else:
            per_feature[f] = math.nan
    warning = ""
    if not math.isnan(mean_auc) and mean_auc >= auc_warn:
        top = max(per_feature, key=lambda f: np.nan_to_num(per_feature[f], nan=-1.0))
        warning = (f"WARNING: shortcut - metadata alone ({', '.join(used)}) separates REAL from FAKE with mean "
                   f"ROC-AUC {mean_auc:.3f} (balanced acc {mean_bacc:.3f}) on the training folds; strongest single "
                   f"feature: {top} (AUC {per_feature[top]:.3f}). The detector may learn this instead of artefacts.")
        warnings.warn(warning, UserWarning, stacklevel=2)
    return {
        "features": used,
        "missing_features": missing,
        "model": model,
        "per_fold": per_fold,
        "mean_roc_auc": mean_auc,
        "mean_balanced_acc": mean_bacc,
        "per_feature_auc": pd.Series(per_feature, name="single_feature_auc"),
        "importance": pd.Series(np.mean(importances, axis=0) if importances else np.full(len(used), np.nan),
                                index=used, name="importance"),
        "warning": warning,
    }


# ============================================================================ one video over time
def temporal_stats(pred_df: pd.DataFrame, bin_seconds: float = 10.0, threshold: float = 0.5,
                   fps: float = 30.0) -> dict[str, Any]:
    """Summary of a per-frame P(Fake) curve and a per-time-bin table (timestamps from `frame / fps` if absent)."""
    if pred_df.empty:
        raise ValueError("temporal_stats: no frames")
    p = pred_df["p_fake"].to_numpy(dtype=np.float64)
    t = (pred_df["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in pred_df
         else pred_df["frame"].to_numpy(dtype=np.float64) / fps)
    face = (pred_df["face_found"].astype(bool).to_numpy() if "face_found" in pred_df
            else np.ones(p.size, dtype=bool))
    above = p > threshold
    share = float(above.mean())
    bin_id = np.floor((t - t.min()) / bin_seconds).astype(int)
    df = pd.DataFrame({"bin": bin_id, "p": p, "above": above, "face": face})
    g = df.groupby("bin")
    bins = pd.DataFrame({"n_frames": g.size(), "p_fake_mean": g["p"].mean(), "p_fake_min": g["p"].min(),
                         "p_fake_max": g["p"].max(), "share_above": g["above"].mean(), "face_share": g["face"].mean()})
    bins.insert(0, "t_start", t.min() + bins.index.to_numpy() * bin_seconds)
    bins.insert(1, "t_end", bins["t_start"] + bin_seconds)
    out = {"n_frames": int(p.size), "duration": float(t.max() - t.min()), "mean": float(p.mean()),
           "min": float(p.min()), "max": float(p.max()), "frames_above": int(above.sum()), "share_above": share,
           "majority_label": "FAKE" if share > 0.5 else "REAL", "no_face_share": float((~face).mean()),
           "bins": bins.reset_index(drop=True)}
    if "p_fake_std" in pred_df:
        out["std_mean"] = float(pred_df["p_fake_std"].mean())
    return out


# ============================================================================ class balance
def _balance_row(df: pd.DataFrame) -> dict[str, Any]:
    """Counts, REAL:FAKE ratio, durations and identities by class, fake types."""
    y = df["label"].astype(int)
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    row: dict[str, Any] = {"n": len(df), "n_real": n_real, "n_fake": n_fake,
                           "share_fake": n_fake / len(df) if len(df) else math.nan,
                           "fake_per_real": n_fake / n_real if n_real else math.inf,
                           "ratio": f"1 : {n_fake / n_real:.2f}" if n_real else "0 REAL"}
    for c, name in LABEL_NAMES.items():
        part = df[y == c]
        if "duration" in df:
            row[f"duration_mean_{name.lower()}"] = float(part["duration"].mean()) if len(part) else math.nan
            row[f"duration_total_{name.lower()}"] = float(part["duration"].sum())
        if "group" in df:
            row[f"identities_{name.lower()}"] = int(part["group"].nunique())
    if "fake_type" in df:
        types = df.loc[y == 1, "fake_type"].fillna("unknown").astype(str).value_counts()
        row.update({f"fake_type={k}": int(v) for k, v in types.sort_index().items()})
    return row


def class_balance_table(df: pd.DataFrame, folds: Sequence[Any] | None = None) -> pd.DataFrame:
    """Class counts and REAL:FAKE ratio overall and per fold (train/val from `folds`, else val from a `fold` column)."""
    rows = {"all": _balance_row(df)}
    if folds is not None:
        by_id = df.assign(video_id=df["video_id"].astype(str)).set_index("video_id")
        for k, (tr, va) in enumerate(_fold_ids(folds)):
            rows[f"fold {k} train"] = _balance_row(by_id.loc[by_id.index.intersection(tr)])
            rows[f"fold {k} val"] = _balance_row(by_id.loc[by_id.index.intersection(va)])
    elif "fold" in df:
        for k in sorted(df["fold"].unique()):
            rows[f"fold {int(k)} val"] = _balance_row(df[df["fold"] == k])
    out = pd.DataFrame.from_dict(rows, orient="index")
    type_cols = [c for c in out.columns if c.startswith("fake_type=")]
    out[type_cols] = out[type_cols].fillna(0).astype(int)
    out.index.name = "scope"
    return out


__all__ = [
    "CALIBRATION_METHODS",
    "Calibrated",
    "F1Threshold",
    "PlattScaler",
    "REAL_FRAME_METRICS",
    "Run",
    "SHORTCUT_FEATURES",
    "TemperatureScaler",
    "VIDEO_METRICS",
    "aggregation_table",
    "calibrate_cross_fold",
    "calibration_report",
    "class_balance_table",
    "fit_f1_threshold",
    "fold_table",
    "identity_overlap",
    "load_run",
    "load_runs",
    "make_calibrator",
    "metadata_shortcut_audit",
    "paired_differences",
    "paradox_table",
    "temporal_stats",
]
