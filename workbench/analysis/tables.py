"""Analysis of K-fold runs: fold tables, aggregation rules, condition comparison and audits.

Everything takes DataFrames, arrays or run folders and returns data (the figures live in
``workbench.reporting.plots``, calibration in ``workbench.evaluation.calibration``). Labels are 0 = REAL, 1 = FAKE;
``p_fake`` is P(Fake) and a sample is predicted FAKE when ``p_fake > threshold`` (the convention
of ``workbench.evaluation.metrics``). Reported fold metrics are the outer (scoring) fold's, `outer_*`, at the
epoch chosen on the selection part; standard deviations across folds use ddof=1.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy.stats import t as t_dist
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.analysis.runs import FoldResult, KFoldRun, as_float, condition_dirs, read_run
from workbench.evaluation.metrics import aggregate_frames, corrected_ttest, video_metrics
from workbench.evaluation.power import min_detectable

LABEL_NAMES = {0: "REAL", 1: "FAKE"}
VIDEO_METRICS = ("outer_acc", "outer_f1", "outer_roc_auc", "outer_balanced_acc")
REAL_FRAME_METRICS = ("outer_real_frame_acc", "outer_real_frame_pfake_mean", "outer_real_frame_above_05")
TEST_METRICS = ("test_acc", "test_roc_auc", "test_balanced_acc", "test_real_frame_pfake_mean", "test_real_frame_above_05",
                "test_fake_frame_pfake_mean")
SHORTCUT_FEATURES = ("duration", "n_frames", "lead_silence", "trail_silence", "mean_brightness")


# ============================================================================ loading a run
@dataclass
class Run:
    """One condition's K-fold run folder, loaded."""

    name: str
    path: Path
    config: dict[str, Any]
    kfold: KFoldRun  # kfold_results.json, typed
    history: pd.DataFrame  # every fold's history.csv with a `fold` column
    videos: pd.DataFrame  # out-of-fold video predictions (outer folds, chosen epochs)
    frames: pd.DataFrame  # out-of-fold frame predictions (the outer folds' evaluation clips)
    inner_videos: pd.DataFrame | None = None  # each fold model on its own selection part (for calibration)
    inner_frames: pd.DataFrame | None = None
    test_videos: pd.DataFrame | None = None  # held-out test: each fold model and fold = "ensemble"
    test_frames: pd.DataFrame | None = None

    @property
    def results(self) -> dict[str, Any]:
        """kfold_results.json as written."""
        return self.kfold.raw

    @property
    def folds(self) -> list[FoldResult]:
        """The folds of kfold_results.json, in fold order."""
        return self.kfold.folds

    @property
    def selection(self) -> str:
        """inner (epoch chosen on each fold's inner part), last (a fixed budget: nothing chosen) or outer (chosen on
        the scoring fold: optimistic)."""
        return self.kfold.selection


def _need(path: Path) -> Path:
    """The path, or a FileNotFoundError naming the missing file and its run folder."""
    if not path.exists():
        raise FileNotFoundError(f"run folder {path.parent} is missing {path.name!r} (expected at {path})")
    return path


def _histories(run_dir: Path, folds: list[int], require: bool) -> pd.DataFrame:
    """Every fold's history.csv with a `fold` column (a missing one is an error when `require`)."""
    histories = []
    for k in folds:
        h_path = run_dir / f"fold_{k}" / "history.csv"
        if not h_path.exists():
            if require:
                _need(h_path)
            continue
        h = pd.read_csv(h_path)
        h.insert(0, "fold", k)
        histories.append(h)
    return pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=["fold", "epoch"])


def load_run(run_dir: str | Path, require_history: bool = True) -> Run:
    """Read kfold_results.json, config.yaml, fold_*/history.csv and the out-of-fold prediction CSVs."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    kfold = read_run(run_dir)
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists():
        config = yaml.safe_load(cfg_path.read_text()) or {}
    elif "config" in kfold.raw:
        config = dict(kfold.config)
    else:
        _need(cfg_path)
    videos = pd.read_csv(_need(run_dir / "predictions_videos.csv"))
    frames = pd.read_csv(_need(run_dir / "predictions_frames.csv"))
    fold_ids = [f.fold for f in kfold.folds]
    fold_ids += [int(m.group(1)) for d in run_dir.glob("fold_*") if (m := re.fullmatch(r"fold_(\d+)", d.name))]
    fold_ids = sorted(set(fold_ids))
    history = _histories(run_dir, fold_ids, require_history)
    name = str(kfold.raw.get("condition") or config.get("name") or run_dir.name)
    inner = {n: _fold_csvs(run_dir, fold_ids, f"val_{n}.csv") if kfold.raw.get("selection") == "inner" else None
             for n in ("videos", "frames")}
    test = {n: pd.read_csv(run_dir / f"predictions_test_{n}.csv") if (run_dir / f"predictions_test_{n}.csv").exists()
            else None for n in ("videos", "frames")}
    return Run(name, run_dir, config, kfold, history, videos, frames, inner["videos"], inner["frames"],
               test["videos"], test["frames"])


def _fold_csvs(run_dir: Path, folds: list[int], name: str) -> pd.DataFrame | None:
    """fold_k/<name> of every fold that has it, with a `fold` column (None when none has)."""
    parts = [pd.read_csv(run_dir / f"fold_{k}" / name).assign(fold=k) for k in folds
             if (run_dir / f"fold_{k}" / name).exists()]
    return pd.concat(parts, ignore_index=True) if parts else None


def load_runs(run_dir: str | Path, names: Sequence[str] | None = None) -> dict[str, Run]:
    """The finished conditions of a study folder (runs.condition_dirs), loaded: all, or those named, in that order."""
    dirs = condition_dirs(run_dir)
    missing = [n for n in names or () if n not in dirs]
    if missing:
        raise KeyError(f"no finished run of condition(s) {missing} in {run_dir}; finished: {list(dirs)}")
    return {n: load_run(dirs[n]) for n in (names or dirs)}


def as_runs(runs: Run | str | Path | Iterable[Run | str | Path] | Mapping[str, Run | str | Path]) -> dict[str, Run]:
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
        metrics = _metric_order(k for f in folds for k in f.metrics if k.startswith("outer_"))
    rows = {}
    for f in folds:
        row = {"best_epoch": f.best_epoch}
        row.update({m: f.metrics.get(m, math.nan) for m in metrics})
        rows[f.fold] = row
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


# ============================================================================ comparing conditions
def _mean_std(v: np.ndarray, ddof: int = 1) -> tuple[float, float]:
    v = v[~np.isnan(v)]
    return (float(v.mean()) if v.size else math.nan), (float(v.std(ddof=ddof)) if v.size > ddof else math.nan)


def paradox_table(
    runs: Any,
    video_cols: Sequence[str] = VIDEO_METRICS,
    frame_cols: Sequence[str] = REAL_FRAME_METRICS,
    test_cols: Sequence[str] = TEST_METRICS,
    ddof: int = 1,
) -> pd.DataFrame:
    """One row per condition: outer-fold video metrics beside REAL-frame metrics (`<metric>_mean`, `_std`, ddof=1),
    how selection was done, the selection optimism of accuracy, and the held-out test (fold ensemble)."""
    rows = {}
    for name, run in as_runs(runs).items():
        row: dict[str, Any] = {"n_folds": len(run.folds), "selection": run.selection}
        for m in (*video_cols, *frame_cols):
            row[f"{m}_mean"], row[f"{m}_std"] = _mean_std(run.kfold.fold_values(m), ddof)
        opt = run.kfold.selection_optimism.get("acc") or {}
        row["selection_optimism_acc"] = as_float(opt.get("mean"))
        ens = (run.kfold.test or {}).get("ensemble") or {}
        for m in test_cols:
            row[m] = as_float(ens.get(m))
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "condition"
    return out


def selection_optimism_table(runs: Any) -> pd.DataFrame:
    """Per condition and metric: what the original protocol prints (max over epochs of the scoring fold's metric),
    the honest figure (at the epoch chosen on the selection part) and their gap, mean ± std over folds."""
    rows = []
    for name, run in as_runs(runs).items():
        for m, s in run.kfold.selection_optimism.items():
            per = [f.selection_optimism[m] for f in run.folds if m in f.selection_optimism]
            rows.append({"condition": name, "metric": m, "selection": run.selection,
                         "protocol_mean": float(np.mean([p["protocol"] for p in per])),
                         "honest_mean": float(np.mean([p["honest"] for p in per])),
                         "optimism_mean": as_float(s.get("mean")), "optimism_std": as_float(s.get("std")),
                         "per_fold": [round(p["optimism"], 6) for p in per]})
    return pd.DataFrame(rows)


def heldout_test_table(runs: Any) -> pd.DataFrame:
    """Per condition and metric: the held-out test clips (no model of the run trained on them), scored by the fold
    ensemble and by each fold model (mean ± std over folds, ddof=1)."""
    rows = []
    for name, run in as_runs(runs).items():
        test = run.kfold.test
        if not test:
            continue
        for m in TEST_METRICS:
            rows.append({"condition": name, "metric": m.removeprefix("test_"), "n_real": test["n_real"],
                         "n_fake": test["n_fake"], "ensemble": as_float(test["ensemble"].get(m)),
                         "folds_mean": as_float(test["mean"].get(m)), "folds_std": as_float(test["std"].get(m))})
    return pd.DataFrame(rows)


def triage_table(runs: Any) -> pd.DataFrame:
    """Per condition and set (held-out test: the fold models' spread; out of fold: MC dropout): the error rate of the
    mean vote, the area under its risk-coverage curve (AURC) beside random abstention's, the uncertainty-weighted
    vote's AURC, and the coverage at which the kept videos' error stays within the target risk; why when missing."""
    rows = []
    for name, run in as_runs(runs).items():
        triage = run.kfold.raw.get("triage") or {}
        for s in ("test", "out_of_fold"):
            sec = triage.get(s) or {}
            mean, weighted = (sec.get("votes") or {}).get("mean", {}), (sec.get("votes") or {}).get("weighted", {})
            rows.append({"condition": name, "set": s, "spread_of": sec.get("members"), "n_videos": sec.get("n_videos"),
                         "error_rate": as_float(mean.get("error_rate")), "aurc": as_float(mean.get("aurc")),
                         "random_aurc": as_float(mean.get("random_aurc")), "aurc_weighted": as_float(weighted.get("aurc")),
                         "coverage_at_target": as_float(mean.get("coverage_at_target")),
                         "target_risk": as_float(triage.get("target_risk")), "reason": sec.get("reason")})
    return pd.DataFrame(rows)


def _match_folds(run: Run, base: Run) -> tuple[list[tuple[int, int]], str]:
    """(condition fold index, baseline fold index) pairs when every fold's scoring clips match, and a note."""
    def key(f: FoldResult) -> frozenset:
        return frozenset(f.outer_ids)

    base_keys = {key(f): i for i, f in enumerate(base.folds)}
    if any(not k for k in base_keys) or any(not key(f) for f in run.folds):
        return [], "unpaired: fold membership not recorded"
    pairs = [(i, base_keys[key(f)]) for i, f in enumerate(run.folds) if key(f) in base_keys]
    if len(pairs) == len(run.folds) == len(base.folds):
        return pairs, "paired: identical fold membership"
    return [], f"unpaired: fold membership differs ({len(pairs)} of {len(run.folds)} folds match)"


def scored_fitted_ratio(run: Run) -> float:
    """Mean n_scored / n_fitted over folds (Nadeau & Bengio's n_test / n_train; 1/(K-1) for plain K-fold)."""
    r = [len(f.outer_ids) / max(1, len(f.train_ids)) for f in run.folds if f.train_ids]
    k = max(len(run.folds), 2)
    return float(np.mean(r)) if r else 1.0 / (k - 1)


def resolution_step(run: Run, metric: str) -> float:
    """The smallest change one fold's metric can show: 1 / (clips per outer fold) for a video-level share
    (accuracy, balanced accuracy counts each class), NaN for continuous metrics (AUC, frame means)."""
    n = [len(f.outer_ids) for f in run.folds]
    base = metric.split("_", 1)[1] if metric.startswith(("outer_", "val_", "test_")) else metric
    return 1.0 / float(np.median(n)) if n and base in ("acc", "recall", "precision") else math.nan


def paired_differences(runs: Any, baseline: str, metrics: Sequence[str] = (*VIDEO_METRICS, *REAL_FRAME_METRICS),
                       alpha: float = 0.05) -> pd.DataFrame:
    """Per metric, condition - baseline over matching folds: the corrected resampled t-test (Nadeau & Bengio 2003,
    `evaluation.metrics.corrected_ttest`), whose false-positive rate holds at K = 5, with its interval, half-width (the
    smallest observed difference it calls significant), p-value and `power80` (the true difference it would detect
    with 80% power at these folds' own spread, workbench.evaluation.power). Folds that differ in membership are compared
    unpaired (difference of fold means, the same corrected variance for each, df = 2K - 2)."""
    runs = as_runs(runs)
    if baseline not in runs:
        raise KeyError(f"baseline {baseline!r} not among the conditions {list(runs)}")
    base = runs[baseline]
    rows = []
    for name, run in runs.items():
        if name == baseline:
            continue
        pairs, note = _match_folds(run, base)
        ratio = scored_fitted_ratio(run)
        for m in metrics:
            a, b = run.kfold.fold_values(m), base.kfold.fold_values(m)
            if pairs:
                d = np.array([a[i] - b[j] for i, j in pairs])
                t = corrected_ttest(d, ratio, alpha)
            else:
                d = np.array([])
                t = _unpaired(a, b, ratio, alpha)
            rows.append({"condition": name, "baseline": baseline, "metric": m, "paired": bool(pairs), "pairing": note,
                         "n_folds": len(a), "condition_mean": _mean_std(a)[0], "baseline_mean": _mean_std(b)[0],
                         "diff_mean": t["mean"], "ci_lo": t["lo"], "ci_hi": t["hi"], "half_width": t["half_width"],
                         "p_value": t["p"], "significant": bool(t["p"] < alpha) if not math.isnan(t["p"]) else False,
                         "power80": _power80(d, ratio, alpha),
                         "step": resolution_step(run, m), "fold_diffs": d.round(6).tolist(),
                         "method": "corrected resampled t (Nadeau & Bengio 2003)"})
    return pd.DataFrame(rows)


def _power80(d: np.ndarray, ratio: float, alpha: float) -> float:
    """The true difference these paired folds would detect with 80% power, at their own fold-to-fold SD."""
    d = d[~np.isnan(d)]
    if d.size < 2 or not np.std(d, ddof=1) > 0:
        return math.nan
    return min_detectable(float(np.std(d, ddof=1)), int(d.size), ratio, alpha)


def _unpaired(a: np.ndarray, b: np.ndarray, ratio: float, alpha: float) -> dict[str, float]:
    """Difference of two fold means, each with the corrected variance (1/K + ratio) s^2; t with n_a + n_b - 2 df."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "half_width": math.nan, "p": math.nan}
    mean = float(a.mean() - b.mean())
    se = math.sqrt((1 / a.size + ratio) * a.var(ddof=1) + (1 / b.size + ratio) * b.var(ddof=1))
    df = a.size + b.size - 2
    half = float(t_dist.ppf(1 - alpha / 2, df) * se)
    p = float(2 * t_dist.sf(abs(mean) / se, df)) if se > 0 else (1.0 if mean == 0 else 0.0)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "half_width": half, "p": p}


# ============================================================================ shortcut and leakage audit
def _fold_ids(folds: Sequence[Any]) -> list[tuple[list[str], list[str]]]:
    """(train_ids, val_ids) pairs from tuples, FoldResults or kfold_results fold dicts (val: the scoring fold)."""
    out = []
    for f in folds:
        f = FoldResult.from_json(f, Path()) if isinstance(f, Mapping) else f
        tr, va = (f.train_ids, f.outer_ids) if isinstance(f, FoldResult) else f
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


def _audit_classifier(model: str, seed: int):
    """The metadata-only classifier of the shortcut audit (median-imputed forest or logistic regression)."""
    if model == "forest":
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                             RandomForestClassifier(n_estimators=100, min_samples_leaf=3, class_weight="balanced",
                                                    random_state=seed, n_jobs=1))
    if model == "logistic":
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                             LogisticRegression(class_weight="balanced", max_iter=1000))
    raise ValueError(f"unknown audit model {model!r}; choose forest or logistic")


def _single_feature_auc(X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Per feature, its ROC-AUC alone on every video, direction-free (max(auc, 1 - auc)); NaN when undefined."""
    out = {}
    for f in X.columns:
        x, ok = X[f], X[f].notna()
        if ok.any() and y[ok].nunique() == 2:
            a = roc_auc_score(y[ok], x[ok])
            out[f] = float(max(a, 1 - a))
        else:
            out[f] = math.nan
    return out


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
        clf = _audit_classifier(model, seed + k)
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
    per_feature = _single_feature_auc(X_all, y_all)
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
    "REAL_FRAME_METRICS",
    "Run",
    "SHORTCUT_FEATURES",
    "TEST_METRICS",
    "VIDEO_METRICS",
    "aggregation_table",
    "class_balance_table",
    "fold_table",
    "as_runs",
    "heldout_test_table",
    "identity_overlap",
    "load_run",
    "load_runs",
    "metadata_shortcut_audit",
    "paired_differences",
    "paradox_table",
    "resolution_step",
    "selection_optimism_table",
    "temporal_stats",
    "scored_fitted_ratio",
]
