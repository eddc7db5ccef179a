"""Tables of the cross-dataset sections (kfold_results.json cross[<name>], written by `workbench evaluate`).

Read straight from each run folder's kfold_results.json, like analysis.tables.heldout_test_table reads `test`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from workbench.core.metric_names import as_float

CROSS_METRICS = ("test_acc", "test_roc_auc", "test_balanced_acc", "test_real_frame_pfake_mean",
                 "test_real_frame_above_05", "test_fake_frame_pfake_mean")  # those of the held-out test table


def _results(runs: str | Path | Iterable[str | Path] | Mapping[str, str | Path]) -> dict[str, dict]:
    """kfold_results.json of each run folder, by condition name (a mapping's keys, else the file's condition)."""
    if isinstance(runs, (str, Path)):
        runs = [runs]
    items = runs.items() if isinstance(runs, Mapping) else [(None, r) for r in runs]
    out = {}
    for name, path in items:
        file = Path(path) / "kfold_results.json"
        if not file.exists():
            raise FileNotFoundError(f"{path} is not a finished run: no kfold_results.json")
        res = json.loads(file.read_text())
        out[str(name or res.get("condition") or Path(path).name)] = res
    return out


def cross_test_table(runs: str | Path | Iterable[str | Path] | Mapping[str, str | Path]) -> pd.DataFrame:
    """Per condition, other dataset and metric: the fold ensemble and the fold models (mean ± std, ddof=1) on that
    dataset's labelled videos; empty when no run has a cross section."""
    rows = []
    for name, res in _results(runs).items():
        for dataset, sec in (res.get("cross") or {}).items():
            for m in CROSS_METRICS:
                rows.append({"condition": name, "dataset": dataset, "metric": m.removeprefix("test_"),
                             "n_real": sec["n_real"], "n_fake": sec["n_fake"], "ensemble": as_float(sec["ensemble"].get(m)),
                             "folds_mean": as_float(sec["mean"].get(m)), "folds_std": as_float(sec["std"].get(m))})
    return pd.DataFrame(rows, columns=["condition", "dataset", "metric", "n_real", "n_fake", "ensemble", "folds_mean",
                                       "folds_std"])


__all__ = ["CROSS_METRICS", "cross_test_table"]
