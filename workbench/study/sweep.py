"""The class-weight question (report 8.4, question 3: 1.3? 1.5? 2.0?): one condition per REAL class weight.

`workbench study --sweep-real-weight 1.0 1.3 1.5 2.0 3.0 [--base balanced] [--sweep-pick val_balanced_acc]`
turns the base condition (the balanced one by default: sampler plus weighted CE) into one condition per weight,
named `<base>_w<weight>` (e.g. balanced_w1.3), with `loss.weighted: true` and `loss.class_weights: [w, 1.0]`
(REAL, FAKE). Each runs as every other condition does (notebook 02 of `workbench study`: nested selection on
each fold's inner part, scored on its outer fold and on the held-out test). Then, in `<run_dir>/sweep_<base>/`:

    conditions.yaml   the grid the sweep ran (the conditions file given to the study runner)
    sweep.csv         one row per weight: the class prior it trains towards (model.losses.describe_priors:
                      train_fake_prior), the pick metric on the inner parts (mean over folds), and each outer
                      metric's mean over folds with its 95 % t-interval (mean ± t(0.975, n-1) s / sqrt(n))
    sweep.png         the outer metrics against the weight with those intervals, and the FAKE prior
    sweep.json        the table, and the pick: `picked` is the weight whose inner-part metric (val_*, the chosen
                      epochs' metrics in kfold_results.json) is best on average, reported with its outer metrics;
                      `nested` picks per fold on that fold's inner part alone and reports the mean of each fold's
                      outer metric at its own pick: the honest estimate of choosing a weight this way (the
                      averaged pick reads inner parts whose clips are other folds' outer clips)

No outer number chooses anything. Ties on the pick metric go to val_roc_auc, then to the weight nearest 1
(the least prior distortion). val_loss is a poor pick metric here: the weighted loss's scale changes with w.
The cross-condition notebooks (01, 03-06) are not run by the sweep; `workbench study --out <same folder>`
adds them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from workbench.core.conditions import load_conditions
from workbench.core.config import Config, deep_merge
from workbench.core.metric_names import metric_mode
from workbench.data.records import write_json
from workbench.model.losses import describe_priors
from workbench.study.runner import StudyReport, run_study

OUTER_METRICS = ("outer_balanced_acc", "outer_acc", "outer_roc_auc", "outer_f1", "outer_real_frame_pfake_mean",
                 "outer_real_frame_acc")
DEFAULT_PICK = "val_balanced_acc"
TIE_BREAK = "val_roc_auc"


# ------------------------------------------------------------------ conditions
def sweep_name(base: str, weight: float) -> str:
    """balanced_w1.3: the condition of one REAL class weight."""
    return f"{base}_w{weight:g}"


def sweep_conditions(grid: dict[str, dict], base: str, weights: Sequence[float]) -> dict[str, dict]:
    """Condition name -> overrides: the base condition with weighted CE at [w, 1.0] (REAL, FAKE), one per weight."""
    if base not in grid:
        raise KeyError(f"unknown base condition {base!r}; known: {list(grid)}")
    if not weights:
        raise ValueError("--sweep-real-weight needs at least one weight")
    bad = [w for w in weights if not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0)]
    if bad:
        raise ValueError(f"REAL class weights must be positive numbers, got {bad}")
    names = [sweep_name(base, float(w)) for w in weights]
    if len(set(names)) != len(names):
        raise ValueError(f"repeated weights in {list(weights)}")
    out = {n: deep_merge(grid[base], {"loss": {"weighted": True, "class_weights": [float(w), 1.0]}})
           for n, w in zip(names, weights)}
    for n, ov in out.items():
        Config.from_dict(ov)  # a bad override fails here, not in a notebook
    return out


# ------------------------------------------------------------------ reading the runs
def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of the t-interval over folds; half-width NaN with fewer than 2 finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))


def _fold_values(results: dict, metric: str) -> dict[int, float]:
    return {int(f["fold"]): math.nan if f["metrics"].get(metric) is None else float(f["metrics"][metric])
            for f in results["folds"]}


def _train_fake_prior(run_dir: Path, results: dict) -> float:
    """The FAKE prior the condition's objective trains towards, at the pool's class counts (out-of-fold table)."""
    cfg = Config.from_dict(results["config"])
    pool = pd.read_csv(run_dir / "predictions_videos.csv")
    counts = [int((pool["label"] == 0).sum()), int((pool["label"] == 1).sum())]
    return float(describe_priors(cfg.loss, counts, cfg.train.weighted_sampler).loc["FAKE", "train_prior"])


def load_sweep(run_dir: str | Path, names: dict[str, float]) -> dict[str, dict]:
    """Condition -> its kfold_results.json; a missing or incomplete condition is a named error."""
    out = {}
    for name in names:
        path = Path(run_dir) / name / "kfold_results.json"
        if not path.exists():
            raise FileNotFoundError(f"sweep condition {name} has no {path}; did it fail? (see study.json)")
        out[name] = json.loads(path.read_text())
    return out


def sweep_table(run_dir: str | Path, names: dict[str, float], results: dict[str, dict], pick: str = DEFAULT_PICK,
                metrics: Sequence[str] = OUTER_METRICS) -> pd.DataFrame:
    """One row per weight: prior, inner pick metric (mean over folds), outer metrics with t-intervals."""
    rows = []
    for name, w in names.items():
        res = results[name]
        row: dict[str, Any] = {"weight": w, "condition": name, "n_folds": len(res["folds"]),
                               "train_fake_prior": _train_fake_prior(Path(run_dir) / name, res)}
        for m in (pick, TIE_BREAK):
            row[m] = t_interval(list(_fold_values(res, m).values()))[0]
        for m in metrics:
            mean, half = t_interval(list(_fold_values(res, m).values()))
            row.update({m: mean, f"{m}_half": half, f"{m}_lo": mean - half, f"{m}_hi": mean + half})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("weight", ignore_index=True)


def _best(candidates: list[tuple[float, float, float]], pick: str) -> float:
    """The weight of the best (pick value, tie-break value, weight) triple: pick first, then TIE_BREAK, then |log w|."""
    sign = 1.0 if metric_mode(pick) == "max" else -1.0
    tie = 1.0 if metric_mode(TIE_BREAK) == "max" else -1.0
    key = lambda c: (sign * _finite(c[0]), tie * _finite(c[1]), -abs(math.log(c[2])))  # noqa: E731
    return max(candidates, key=key)[2]


def _finite(x: float) -> float:
    return x if x is not None and math.isfinite(x) else -math.inf


def pick_weight(table: pd.DataFrame, names: dict[str, float], results: dict[str, dict], pick: str = DEFAULT_PICK,
                metrics: Sequence[str] = OUTER_METRICS) -> dict:
    """The averaged pick (inner means) with its outer metrics, and the nested per-fold pick with its outer estimate."""
    if not pick.startswith("val_"):
        raise ValueError(f"a weight is picked on the inner parts: the pick metric must be a val_* metric, got {pick!r}")
    metric_mode(pick)  # unknown metric: a named error
    w = _best([(r[pick], r[TIE_BREAK], r["weight"]) for _, r in table.iterrows()], pick)
    row = table.loc[table["weight"] == w].iloc[0]
    picked = {"weight": float(w), "condition": row["condition"], "inner": float(row[pick]),
              "outer": {m: {"mean": float(row[m]), "half": float(row[f"{m}_half"])} for m in metrics}}
    return {"pick_metric": pick, "picked": picked, "nested": _nested_pick(names, results, pick, metrics)}


def _nested_pick(names: dict[str, float], results: dict[str, dict], pick: str, metrics: Sequence[str]) -> dict:
    """Per fold: the weight best on that fold's inner part; the mean ± t-interval of the outer metric at each pick."""
    plans = {n: {int(f["fold"]): sorted(f.get("outer_ids") or []) for f in r["folds"]} for n, r in results.items()}
    first = next(iter(plans.values()))
    if any(p != first for p in plans.values()):
        return {"reason": "the sweep's conditions were not run on the same folds (another seed, split or dataset)"}
    inner = {n: (_fold_values(results[n], pick), _fold_values(results[n], TIE_BREAK)) for n in names}
    per_fold = {k: _best([(inner[n][0][k], inner[n][1][k], w) for n, w in names.items()], pick) for k in sorted(first)}
    by_weight = {w: n for n, w in names.items()}
    outer = {m: t_interval([_fold_values(results[by_weight[w]], m)[k] for k, w in per_fold.items()]) for m in metrics}
    return {"per_fold": {str(k): float(w) for k, w in per_fold.items()},
            "outer": {m: {"mean": mean, "half": half} for m, (mean, half) in outer.items()}}


# ------------------------------------------------------------------ figure and driver
def sweep_figure(table: pd.DataFrame, picked: float | None = None,
                 metrics: Sequence[str] = ("outer_balanced_acc", "outer_roc_auc", "outer_real_frame_pfake_mean")) -> Figure:
    """Each outer metric against the REAL weight (mean ± t-interval over folds), and the FAKE prior it trains towards."""
    fig = Figure(figsize=(4.0 * (len(metrics) + 1), 3.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics) + 1)
    w = table["weight"].to_numpy(dtype=float)
    for ax, m in zip(axes, metrics):
        ax.errorbar(w, table[m], yerr=table[f"{m}_half"].fillna(0.0), marker="o", capsize=3)
        ax.set(title=m.removeprefix("outer_"), xlabel="REAL class weight", ylabel="outer folds, mean ± 95% t-interval")
    axes[-1].plot(w, table["train_fake_prior"], marker="s", color="tab:red")
    axes[-1].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[-1].set(title="FAKE prior trained towards", xlabel="REAL class weight", ylabel="P(FAKE)", ylim=(0, 1))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(w, [f"{x:g}" for x in w])
        if picked is not None:
            ax.axvline(picked, color="tab:green", lw=1, ls="--")
    return fig


def summarize_sweep(run_dir: str | Path, base: str, weights: Sequence[float], pick: str = DEFAULT_PICK) -> dict:
    """sweep.csv, sweep.png and sweep.json in <run_dir>/sweep_<base>/ from the finished conditions; returns sweep.json."""
    names = {sweep_name(base, float(w)): float(w) for w in weights}
    results = load_sweep(run_dir, names)
    table = sweep_table(run_dir, names, results, pick)
    choice = pick_weight(table, names, results, pick)
    out = Path(run_dir) / f"sweep_{base}"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    sweep_figure(table, choice["picked"]["weight"]).savefig(out / "sweep.png", dpi=110)
    summary = {"base": base, "weights": [float(w) for w in weights], "conditions": list(names), **choice,
               "table": table.to_dict(orient="records"), "files": ["sweep.csv", "sweep.png"]}
    write_json(out / "sweep.json", summary)
    return summary


def run_sweep(data_dir: str | Path, run_dir: str | Path, weights: Sequence[float], base: str = "balanced",
              conditions_file: str | Path | None = None, pick: str = DEFAULT_PICK,
              **study: Any) -> tuple[StudyReport, dict | None]:
    """Run one condition per weight through the study runner (notebook 02 each), then summarize_sweep."""
    metric_mode(pick)
    grid = load_conditions(conditions_file)
    sweep = sweep_conditions(grid, base, weights)
    out = Path(run_dir) / f"sweep_{base}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "conditions.yaml"
    path.write_text(yaml.safe_dump({**grid, **sweep}, sort_keys=False))
    report = run_study(data_dir, run_dir, conditions=list(sweep), conditions_file=path, after=(), **study)
    done = [n for n in sweep if n not in report.failed]
    if not done:
        return report, None
    return report, summarize_sweep(run_dir, base, [w for n, w in zip(sweep, weights) if n in done], pick)


def format_sweep(summary: dict) -> str:
    """The sweep's table and pick as text."""
    t = pd.DataFrame(summary["table"])
    lines = [f"REAL class-weight sweep on {summary['base']} (outer folds: mean ± 95% t-interval; "
             f"pick on the inner parts by {summary['pick_metric']})",
             "weight  FAKE prior  " + "  ".join(f"{m.removeprefix('outer_'):>22s}" for m in OUTER_METRICS[:3])]
    for _, r in t.iterrows():
        lines.append(f"{r['weight']:6g}  {r['train_fake_prior']:10.3f}  " + "  ".join(
            f"{r[m]:12.4f} ± {r[f'{m}_half']:7.4f}" for m in OUTER_METRICS[:3]))
    p = summary["picked"]
    lines.append(f"picked on the inner parts: w = {p['weight']:g} ({p['condition']}, {summary['pick_metric']} "
                 f"{p['inner']:.4f}); its outer balanced_acc {p['outer']['outer_balanced_acc']['mean']:.4f}")
    nested = summary["nested"]
    if "reason" in nested:
        lines.append(f"nested pick: {nested['reason']}")
    else:
        o = nested["outer"]["outer_balanced_acc"]
        lines.append(f"nested pick (per fold on its inner part: {nested['per_fold']}): outer balanced_acc "
                     f"{o['mean']:.4f} ± {o['half']:.4f}")
    return "\n".join(lines)
