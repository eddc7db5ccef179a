"""Figures of notebook 06: localization per condition, and P(Fake) with each modality removed."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from workbench.core.config import LocalizationConfig
from workbench.evaluation.localization import proposals
from workbench.reporting.plots import PathLike, _finish, _grouped_bars, _no_data, _spans, _subplots

MODALITY_COLORS = {"face": "#457b9d", "lip": "#e9c46a", "audio": "#9d4edd"}


def localization_figure(table: pd.DataFrame, metrics: Sequence[str] = ("loc_ap_iou50", "loc_ar_at50", "loc_score",
                                                                      "true_frame_roc_auc"),
                        title: str = "Held-out test, fold ensemble", path: PathLike = None) -> Figure:
    """Grouped bars: one group per condition (rows of a localization table), one bar per metric."""
    fig, axes = _subplots(1, 1, (max(6.0, 1.6 * len(metrics) + 2), 3.6))
    ax = axes[0, 0]
    shown = [m for m in metrics if m in table.columns]
    if table.empty or not shown:
        _no_data(ax, "no localization table")
    else:
        _grouped_bars(ax, table.set_index("condition")[shown], shown)
        ax.set_title(title)
    return _finish(fig, path)


def ablation_figure(frames: pd.DataFrame, replacement: str = "donor", cfg: LocalizationConfig | None = None,
                    title: str = "", path: PathLike = None) -> Figure:
    """P(Fake) over time with everything and with each modality replaced; true fake frames shaded, the full
    curve's proposals as bars along the top."""
    fig, axes = _subplots(1, 1, (11, 3.6))
    ax = axes[0, 0]
    t = frames["timestamp"].to_numpy(dtype=np.float64)
    _spans(ax, t, frames["frame_label"].to_numpy() == 1, color="#e63946", alpha=0.15, label="true fake segments")
    ax.plot(t, frames["p_fake"], color="black", lw=1.6, label="all modalities")
    for mod, color in MODALITY_COLORS.items():
        col = f"p_fake_without_{mod}_{replacement}"
        if col in frames:
            ax.plot(t, frames[col], color=color, lw=1.1, label=f"without {mod} ({replacement})")
    for i, r in enumerate(proposals(t, frames["p_fake"].to_numpy(), cfg).itertuples()):
        ax.plot([r.start, r.end], [0.985, 0.985], color="#e63946", lw=4, solid_capstyle="butt",
                transform=ax.get_xaxis_transform(), label="proposals" if i == 0 else None)
    ax.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(Fake)")
    ax.set_title(title or "P(Fake) with each modality removed (bars on top: proposals from the full curve)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _finish(fig, path)
