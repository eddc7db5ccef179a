"""Figures for the notebooks: training curves, confusions, calibration, class balance, conditions, time.

Every function returns a matplotlib ``Figure`` built without pyplot (no global state, nothing to
close, Agg-safe) and writes a PNG when ``path`` is given. In a notebook, leave the figure as the
cell's last expression or call ``display(fig)``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from workbench.analysis.tables import class_balance_table
from workbench.data.segments import runs as true_runs  # (first, end) of every run of True, end exclusive
from workbench.evaluation.metrics import expected_calibration_error, reliability_curve, video_metrics

DPI = 110
CLASS_COLORS = {"REAL": "#2a9d8f", "FAKE": "#e63946"}
PathLike = str | Path | None


# ------------------------------------------------------------------ helpers
def _figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout Figure with an Agg canvas (no pyplot)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kw: Any) -> tuple[Figure, np.ndarray]:
    """Figure and a 2-D array of seaborn-styled axes."""
    fig = _figure(figsize)
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _finish(fig: Figure, path: PathLike) -> Figure:
    """Save a PNG at `path` (parents created) and return the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    return fig


def _class_names(labels: Any) -> np.ndarray:
    """0/1 labels as REAL/FAKE strings."""
    return np.where(np.asarray(labels).astype(int) == 1, "FAKE", "REAL")


def _spans(ax: Axes, t: np.ndarray, mask: np.ndarray, min_width: float = 0.0, **kw: Any) -> PolyCollection | None:
    """Full-height bands over the time stretches where mask is True (one artist), each at least
    `min_width` (a share of the time range) wide so that single frames of a long video stay visible."""
    runs = true_runs(mask)  # (first, end): end exclusive, so t[end - 1] is a run's last frame
    if not runs:
        return None
    half = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
    grow = [max(0.0, (min_width * float(t[-1] - t[0]) - (t[e - 1] - t[a] + 2 * half)) / 2) for a, e in runs]
    verts = [[(t[a] - half - g, 0), (t[e - 1] + half + g, 0), (t[e - 1] + half + g, 1), (t[a] - half - g, 1)]
             for (a, e), g in zip(runs, grow)]
    coll = PolyCollection(verts, transform=ax.get_xaxis_transform(), **kw)
    ax.add_collection(coll, autolim=False)
    return coll


def _edges(t: np.ndarray) -> np.ndarray:
    """Cell edges around sample times (midpoints, extended half a step at both ends)."""
    if t.size == 1:
        return np.array([t[0] - 0.5, t[0] + 0.5])
    mid = (t[1:] + t[:-1]) / 2
    return np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])


def _times(pred_df: pd.DataFrame, fps: float = 30.0) -> np.ndarray:
    """Frame times in seconds (timestamp column, else frame / fps)."""
    if "timestamp" in pred_df:
        return pred_df["timestamp"].to_numpy(dtype=np.float64)
    return pred_df["frame"].to_numpy(dtype=np.float64) / fps


def _no_data(ax: Axes, text: str) -> None:
    """An empty panel carrying a message."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------ training
CURVE_STYLE = {"train": "-", "val": "--", "outer": ":"}  # training clips, selection part, scoring fold


def training_curves_figure(history: pd.DataFrame, metric: str = "outer_f1", path: PathLike = None,
                           best_epochs: Mapping[int, int] | None = None) -> Figure:
    """Per fold: loss and accuracy of the training clips, the selection part (val) and the scoring fold (outer),
    and one chosen metric, against epoch; a marker at each fold's chosen epoch when `best_epochs` is given."""
    fig, axes = _subplots(1, 3, (14, 4))
    hist = history if "fold" in history else history.assign(fold=0)
    folds = sorted(hist["fold"].unique())
    colors = sns.color_palette("tab10", max(len(folds), 1))
    panels = [("loss", ["train_loss", "val_loss", "outer_loss"]), ("accuracy", ["train_acc", "val_acc", "outer_acc"]),
              (metric, [metric])]
    for ax, (name, cols) in zip(axes[0], panels):
        for c, k in zip(colors, folds):
            h = hist[hist["fold"] == k].sort_values("epoch")
            for col in cols:
                if col in h:
                    part = col.split("_")[0]
                    ax.plot(h["epoch"], h[col], CURVE_STYLE.get(part, "-") if len(cols) > 1 else "-", color=c,
                            marker="o", ms=3, label=f"fold {k} {part}" if len(cols) > 1 else f"fold {k}")
                    if best_epochs and k in best_epochs and best_epochs[k] in set(h["epoch"]):
                        y = h.loc[h["epoch"] == best_epochs[k], col].iloc[0]
                        ax.plot([best_epochs[k]], [y], "*", color=c, ms=11, mec="k", mew=0.5)
        ax.set(title=name, xlabel="epoch")
    axes[0, 0].legend(fontsize=7, ncol=3)
    axes[0, 2].legend(fontsize=7)
    fig.suptitle("Training curves (solid: training clips, dashed: selection part, dotted: scoring fold; * chosen epoch)")
    return _finish(fig, path)


def confusion_matrices_figure(videos_df: pd.DataFrame, threshold: float = 0.5, path: PathLike = None) -> Figure:
    """Video-level confusion matrix per fold plus the pooled out-of-fold one."""
    parts = ([(f"fold {int(k)}", g) for k, g in videos_df.groupby("fold")] if "fold" in videos_df else [])
    parts.append(("pooled", videos_df))
    fig, axes = _subplots(1, len(parts), (3.2 * len(parts), 3.2))
    for ax, (name, g) in zip(axes[0], parts):
        m = video_metrics(g["label"].to_numpy(), g["p_fake"].to_numpy(), threshold)
        cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
        sns.heatmap(cm, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax, square=True,
                    xticklabels=["REAL", "FAKE"], yticklabels=["REAL", "FAKE"])
        ax.set(title=f"{name}\nacc {m['acc']:.3f}, bal {m['balanced_acc']:.3f}", xlabel="predicted", ylabel="true")
    return _finish(fig, path)


def pfake_histogram_figure(df: pd.DataFrame, threshold: float = 0.5, bins: int = 30, title: str = "Validation P(Fake)",
                           path: PathLike = None) -> Figure:
    """Histogram of P(Fake) by true class (videos or frames) with the decision threshold."""
    fig, axes = _subplots(1, 1, (6, 3.8))
    ax = axes[0, 0]
    data = pd.DataFrame({"P(Fake)": df["p_fake"].to_numpy(dtype=float), "class": _class_names(df["label"])})
    sns.histplot(data=data, x="P(Fake)", hue="class", bins=np.linspace(0, 1, bins + 1), palette=CLASS_COLORS,
                 hue_order=[c for c in ("REAL", "FAKE") if c in set(data["class"])], element="step", ax=ax)
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.set(title=title, xlim=(0, 1))
    return _finish(fig, path)


# ------------------------------------------------------------------ video vs frame, aggregation
def _grouped_bars(ax: Axes, table: pd.DataFrame, metrics: Sequence[str], err: pd.DataFrame | None = None) -> None:
    """Bars of table[metrics] per row, grouped by row, one colour per metric."""
    n, m = len(table), len(metrics)
    width = 0.8 / max(m, 1)
    x = np.arange(n)
    for j, (col, c) in enumerate(zip(metrics, sns.color_palette("Set2", m))):
        vals = table[col].to_numpy(dtype=float)
        yerr = err[col].to_numpy(dtype=float) if err is not None and col in err else None
        bars = ax.bar(x + (j - (m - 1) / 2) * width, vals, width, yerr=yerr, capsize=3, color=c, label=col)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, [str(i) for i in table.index], rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def video_vs_frame_figure(
    paradox_df: pd.DataFrame,
    metrics: Sequence[str] = ("outer_acc", "outer_balanced_acc", "outer_real_frame_acc", "outer_real_frame_above_05"),
    path: PathLike = None,
) -> Figure:
    """Video-level metrics beside REAL-frame metrics per condition (bars: fold mean, whiskers: std)."""
    fig, axes = _subplots(1, 1, (max(6, 1.6 * len(paradox_df) + 3), 4))
    means = pd.DataFrame({m: paradox_df[f"{m}_mean"] for m in metrics if f"{m}_mean" in paradox_df})
    stds = pd.DataFrame({m: paradox_df[f"{m}_std"] for m in metrics if f"{m}_std" in paradox_df})
    _grouped_bars(axes[0, 0], means, list(means.columns), stds)
    axes[0, 0].set_title("Video-level accuracy vs REAL-frame behaviour")
    return _finish(fig, path)


def aggregation_figure(agg_df: pd.DataFrame, metrics: Sequence[str] = ("acc", "balanced_acc", "f1", "roc_auc"),
                       path: PathLike = None) -> Figure:
    """Video-level metrics per frame-to-video aggregation rule (from analysis.aggregation_table)."""
    fig, axes = _subplots(1, 1, (max(6, 1.4 * len(agg_df) + 3), 4))
    _grouped_bars(axes[0, 0], agg_df, [m for m in metrics if m in agg_df])
    axes[0, 0].set_title("Frame-to-video aggregation rules")
    return _finish(fig, path)


# ------------------------------------------------------------------ calibration
def reliability_figure(y: Any, probs: Mapping[str, Any] | Any, n_bins: int = 15, title: str = "Reliability",
                       path: PathLike = None) -> Figure:
    """Reliability diagram (fake rate vs mean P(Fake) per bin) for each named set of probabilities, with ECE."""
    if not isinstance(probs, Mapping):
        probs = {"P(Fake)": probs}
    fig = _figure((5.5, 6))
    with sns.axes_style("whitegrid"):
        ax, hx = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect")
    edges = np.linspace(0, 1, n_bins + 1)
    for (name, p), c in zip(probs.items(), sns.color_palette("tab10", len(probs))):
        frac, conf, _ = reliability_curve(y, p, n_bins)
        ece = expected_calibration_error(y, p, n_bins)
        ax.plot(conf, frac, "o-", color=c, label=f"{name} (ECE {ece:.3f})")
        hx.hist(np.asarray(p, dtype=float), bins=edges, histtype="step", color=c)
    ax.set(ylabel="fraction FAKE", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(fontsize=8)
    hx.set(xlabel="mean P(Fake) in bin", ylabel="count", yscale="log")
    return _finish(fig, path)


# ------------------------------------------------------------------ class balance
def class_balance_figure(df: pd.DataFrame, folds: Sequence[Any] | None = None, path: PathLike = None,
                         table: pd.DataFrame | None = None) -> Figure:
    """Class counts, REAL:FAKE ratio per fold and duration by class (`table`: analysis.class_balance_table(df, folds),
    computed here when not given)."""
    if table is None:

        table = class_balance_table(df, folds)
    fig, axes = _subplots(1, 3, (15, 4))
    ax = axes[0, 0]
    counts = table.loc["all", ["n_real", "n_fake"]].to_numpy(dtype=int)
    bars = ax.bar(["REAL", "FAKE"], counts, color=[CLASS_COLORS["REAL"], CLASS_COLORS["FAKE"]])
    ax.bar_label(bars)
    ax.set(title=f"videos per class ({table.loc['all', 'ratio']})", ylabel="videos")
    ax = axes[0, 1]
    ratio = table["fake_per_real"].replace(np.inf, np.nan)
    colors = ["grey" if i == "all" else ("#457b9d" if i.endswith("train") else "#f4a261") for i in table.index]
    ax.bar(range(len(table)), ratio.to_numpy(dtype=float), color=colors)
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set_xticks(range(len(table)), list(table.index), rotation=45, ha="right", fontsize=8)
    ax.set(title="FAKE per REAL (1.0 = balanced)", ylabel="n_fake / n_real")
    ax = axes[0, 2]
    if "duration" in df:
        dur, names = df["duration"].to_numpy(dtype=float), _class_names(df["label"])
        groups = [dur[(names == c) & ~np.isnan(dur)] for c in ("REAL", "FAKE")]
        box = ax.boxplot(groups, tick_labels=["REAL", "FAKE"], patch_artist=True, widths=0.5)
        for patch, c in zip(box["boxes"], ("REAL", "FAKE")):
            patch.set(facecolor=CLASS_COLORS[c], alpha=0.6)
        if np.nanmax(dur) > 20 * max(float(np.nanmedian(dur)), 1e-9):
            ax.set_yscale("log")
        ax.set(title="duration by class", ylabel="duration (s)")
    else:
        _no_data(ax, "no duration column")
    return _finish(fig, path)


def effective_prior_figure(prior_df: pd.DataFrame, method_col: str = "method", prior_col: str = "effective_prior",
                           data_prior: float | None = None, path: PathLike = None) -> Figure:
    """The FAKE prior each imbalance method effectively trains towards (0.5 = balanced; data prior marked)."""
    fig, axes = _subplots(1, 1, (7, 0.45 * len(prior_df) + 1.5))
    ax = axes[0, 0]
    names = prior_df[method_col].astype(str).tolist() if method_col in prior_df else [str(i) for i in prior_df.index]
    vals = prior_df[prior_col].to_numpy(dtype=float)
    bars = ax.barh(names, vals, color=sns.color_palette("crest", len(vals)))
    ax.bar_label(bars, fmt="%.2f", padding=2)
    ax.axvline(0.5, color="k", ls=":", lw=1, label="balanced (0.5)")
    if data_prior is None and "data_prior" in prior_df:
        data_prior = float(prior_df["data_prior"].iloc[0])
    if data_prior is not None:
        ax.axvline(data_prior, color=CLASS_COLORS["FAKE"], ls="--", lw=1, label=f"data prior ({data_prior:.2f})")
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="effective P(FAKE) prior", title="Effective prior per imbalance method")
    ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, path)


# ------------------------------------------------------------------ conditions
def paradox_scatter_figure(paradox_df: pd.DataFrame, x: str = "outer_acc", y: str = "outer_real_frame_pfake_mean",
                           threshold: float = 0.5, path: PathLike = None) -> Figure:
    """Each condition at (video-level val metric, REAL-frame mean P(Fake)) with fold-std error bars."""
    fig, axes = _subplots(1, 1, (6.5, 5))
    ax = axes[0, 0]
    for (name, row), c in zip(paradox_df.iterrows(), sns.color_palette("tab10", len(paradox_df))):
        ax.errorbar(row[f"{x}_mean"], row[f"{y}_mean"], xerr=row.get(f"{x}_std"), yerr=row.get(f"{y}_std"),
                    fmt="o", ms=8, capsize=3, color=c, label=str(name))
        ax.annotate(str(name), (row[f"{x}_mean"], row[f"{y}_mean"]), xytext=(6, 6), textcoords="offset points",
                    fontsize=8)
    ax.axhline(threshold, color="grey", ls="--", lw=1)
    ax.set(xlabel=f"{x} (video level, outer-fold mean)", ylabel=f"{y} (REAL frames)",
           title="Video accuracy vs REAL-frame P(Fake)")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def forest_plot_figure(diff_df: pd.DataFrame, path: PathLike = None) -> Figure:
    """Condition - baseline differences with their 95% intervals, one panel per metric (hollow marker: unpaired;
    red: p < 0.05 under the corrected resampled t-test)."""
    metrics = list(dict.fromkeys(diff_df["metric"]))
    ncols = min(3, max(len(metrics), 1))
    nrows = max(math.ceil(len(metrics) / ncols), 1)
    conds = list(dict.fromkeys(diff_df["condition"]))
    fig, axes = _subplots(nrows, ncols, (4.2 * ncols, 0.5 * len(conds) * nrows + 1.6 * nrows), sharey=True)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(axes.ravel(), metrics):
        d = diff_df[diff_df["metric"] == m]
        for _, r in d.iterrows():
            yy = conds.index(r["condition"])
            err = [[r["diff_mean"] - r["ci_lo"]], [r["ci_hi"] - r["diff_mean"]]]
            colour = "#e63946" if r.get("significant", False) else "#1d3557"
            ax.errorbar(r["diff_mean"], yy, xerr=err, fmt="o", capsize=3, color=colour,
                        mfc=colour if r["paired"] else "white")
        ax.axvline(0, color="grey", ls="--", lw=1)
        ax.set_yticks(range(len(conds)), conds)
        ax.set_title(m, fontsize=9)
    base = diff_df["baseline"].iloc[0] if len(diff_df) else ""
    fig.suptitle(f"Difference vs {base} (95% CI, corrected resampled t over folds; hollow = unpaired, red = p < 0.05)")
    return _finish(fig, path)


# ------------------------------------------------------------------ one video over time
TRUTH_COLOR = "#7b2cbf"  # true manipulated frames (frame_label == 1)


def above_title(p: np.ndarray, threshold: float = 0.5, prefix: str = "") -> str:
    """'4 of 1800 frames (0.2%) above 0.5': the count and the share with one decimal."""
    n_above = int((np.asarray(p) > threshold).sum())
    return f"{prefix}{n_above} of {np.size(p)} frames ({100 * n_above / max(np.size(p), 1):.1f}%) above {threshold:g}"


def pfake_panel(ax: Axes, pred_df: pd.DataFrame, threshold: float = 0.5, frame_label: Any = None) -> None:
    """A per-frame P(Fake) curve on ax: fold-model curves, ± std band, frames above threshold shaded over
    the full height, stretches without a face hatched, true fake frames as a bar along the top, the 0.5 line.

    `pred_df` is sorted by time; `frame_label` (else its `frame_label` column, when present) marks the
    manipulated frames. Every element is in the legend.
    """
    t, p = _times(pred_df), pred_df["p_fake"].to_numpy(dtype=np.float64)
    face = pred_df["face_found"].astype(bool).to_numpy() if "face_found" in pred_df else np.ones(p.size, bool)
    if frame_label is None and "frame_label" in pred_df:
        frame_label = pred_df["frame_label"].to_numpy()
    above = p > threshold
    if _spans(ax, t, above, min_width=0.004, color=CLASS_COLORS["FAKE"], alpha=0.2, lw=0) is not None:
        ax.fill_between([], [], color=CLASS_COLORS["FAKE"], alpha=0.35, lw=0, label=f"P(Fake) > {threshold:g}")
    ax.fill_between(t, threshold, p, where=above, interpolate=True, color=CLASS_COLORS["FAKE"], alpha=0.45, lw=0)
    if "p_fake_std" in pred_df:
        s = pred_df["p_fake_std"].to_numpy(dtype=np.float64)
        ax.fill_between(t, np.clip(p - s, 0, 1), np.clip(p + s, 0, 1), color="#457b9d", alpha=0.25, lw=0,
                        label="± std over models")
    folds = [c for c in pred_df.columns if re.fullmatch(r"p_fake_fold\d+", c)]
    for j, col in enumerate(folds):
        ax.plot(t, pred_df[col].to_numpy(dtype=float), color="grey", lw=0.6, alpha=0.7,
                label=f"fold models ({len(folds)})" if j == 0 else None)
    if _spans(ax, t, ~face, color="grey", alpha=0.25, lw=0, hatch="//") is not None:
        ax.fill_between([], [], color="grey", alpha=0.25, hatch="//", label="no face")
    if frame_label is not None and np.asarray(frame_label).astype(bool).any():
        truth = np.asarray(frame_label).astype(bool)
        half = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
        for a, e in true_runs(truth):  # end exclusive
            ax.axvspan(t[a] - half, t[e - 1] + half, ymin=0.94, ymax=1.0, color=TRUTH_COLOR, lw=0)
        ax.fill_between([], [], color=TRUTH_COLOR, label="true fake frames")
    ax.plot(t, p, color="#1d3557", lw=1.2, label="P(Fake) (ensemble)")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(ylim=(0, 1), ylabel="P(Fake)")


def _strip_times(pred_t: np.ndarray, n_frames: int, frame_times: Any) -> np.ndarray:
    """Times of the given frames: frame_times, else the prediction times when counts match, else evenly spaced."""
    if frame_times is not None:
        return np.asarray(frame_times, dtype=np.float64)
    if n_frames == pred_t.size:
        return pred_t
    return np.linspace(pred_t.min(), pred_t.max(), n_frames)


def temporal_figure(
    pred_df: pd.DataFrame,
    frames_uint8: Any = None,
    frame_times: Any = None,
    title: str = "",
    threshold: float = 0.5,
    path: PathLike = None,
    n_strip: int = 8,
) -> Figure:
    """The study's figure: a strip of face frames, the P(Fake) curve (shaded above threshold), a heat strip."""
    pred_df = pred_df.sort_values("timestamp" if "timestamp" in pred_df else "frame")
    t = _times(pred_df)
    p = pred_df["p_fake"].to_numpy(dtype=np.float64)
    has_frames = frames_uint8 is not None and len(frames_uint8) > 0
    fig = _figure((14, 7.5 if has_frames else 5))
    gs = fig.add_gridspec(3 if has_frames else 2, 1, height_ratios=([1.4] if has_frames else []) + [1.8, 0.35])
    row = 0
    if has_frames:  # only the strip's frames are read (frames may be a record's on-disk StoredFrames)
        frames = frames_uint8 if hasattr(frames_uint8, "shape") else np.asarray(frames_uint8)
        ft = _strip_times(t, len(frames), frame_times)
        pick = np.unique(np.linspace(0, len(frames) - 1, min(n_strip, len(frames))).round().astype(int))
        sub = gs[0].subgridspec(1, len(pick))
        for j, i in enumerate(pick):
            ax = fig.add_subplot(sub[0, j])
            ax.imshow(frames[i])
            k = int(np.clip(np.searchsorted(t, ft[i]), 0, t.size - 1))
            if k > 0 and abs(t[k - 1] - ft[i]) < abs(t[k] - ft[i]):
                k -= 1
            ax.set_title(f"{ft[i]:.1f} s\nP(Fake) {p[k]:.2f}", fontsize=9,
                         color=CLASS_COLORS["FAKE"] if p[k] > threshold else CLASS_COLORS["REAL"])
            ax.axis("off")
        row = 1
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot(gs[row])
    heat = fig.add_subplot(gs[row + 1], sharex=ax)
    pfake_panel(ax, pred_df, threshold)
    ax.set_title(above_title(p, threshold, prefix=f"mean P(Fake) {p.mean():.2f}; "))
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    ax.tick_params(labelbottom=False)
    mesh = heat.pcolormesh(_edges(t), [0, 1], p[None, :], cmap="RdYlGn_r", vmin=0, vmax=1, shading="flat")
    heat.set(yticks=[], xlabel="time (s)", xlim=(_edges(t)[0], _edges(t)[-1]))
    fig.colorbar(mesh, ax=[ax, heat], label="P(Fake)", shrink=0.8, pad=0.01)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def density_comparison_figure(dfs: Mapping[str, pd.DataFrame], threshold: float = 0.5, title: str = "",
                              path: PathLike = None) -> Figure:
    """P(Fake) curves of one video at several frame densities, and their distributions."""
    fig, axes = _subplots(1, 2, (15, 4.2), width_ratios=[3, 1])
    ax, dx = axes[0]
    for (name, df), c in zip(dfs.items(), sns.color_palette("tab10", len(dfs))):
        df = df.sort_values("timestamp" if "timestamp" in df else "frame")
        t, p = _times(df), df["p_fake"].to_numpy(dtype=float)
        lbl = f"{name} (n={p.size}, mean {p.mean():.2f}, {(p > threshold).mean():.0%} > {threshold})"
        ax.plot(t, p, color=c, lw=1.0 if p.size > 200 else 1.5, marker="o" if p.size <= 100 else None, ms=3,
                label=lbl, alpha=0.85)
        sns.ecdfplot(x=p, ax=dx, color=c, label=name)
    ax.axhline(threshold, color="k", ls="--", lw=1)
    ax.set(ylim=(0, 1), xlabel="time (s)", ylabel="P(Fake)", title=title or "P(Fake) at different frame densities")
    ax.legend(fontsize=8)
    dx.axvline(threshold, color="k", ls="--", lw=1)
    dx.set(xlim=(0, 1), xlabel="P(Fake)", title="ECDF")
    return _finish(fig, path)


__all__ = [
    "above_title",
    "aggregation_figure",
    "class_balance_figure",
    "confusion_matrices_figure",
    "density_comparison_figure",
    "effective_prior_figure",
    "forest_plot_figure",
    "paradox_scatter_figure",
    "pfake_histogram_figure",
    "pfake_panel",
    "reliability_figure",
    "temporal_figure",
    "training_curves_figure",
    "video_vs_frame_figure",
]
