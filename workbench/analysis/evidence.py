"""Evidence that the demo is learnable: a baseline K-fold run against chance."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.core.conditions import condition_config
from workbench.evaluation.metrics import fold_auc_permutation
from workbench.training.engine import run_kfold


def learnability(npz: str | Path, out: str | Path = "outputs/demo_evidence", preset: str = "cpu",
                 folds: int = 5, progress: bool = False) -> dict:
    """Evidence the demo is learnable: the baseline K-fold run's honest out-of-fold ROC-AUC (nested selection)
    and its within-fold label-permutation p-value against chance (resumable)."""
    cfg = condition_config(str(npz), str(out), "baseline", {}, preset, folds=folds, progress=progress)
    res = run_kfold(cfg, log=lambda line: None)
    scored = [pd.read_csv(Path(out) / f"fold_{f['fold']}" / "outer_videos.csv") for f in res["folds"]]
    perm = fold_auc_permutation([(d["label"].to_numpy(), d["p_fake"].to_numpy()) for d in scored])
    return {"mean_roc_auc": res["mean"]["outer_roc_auc"], "std_roc_auc": res["std"]["outer_roc_auc"],
            "p_chance": perm["p"], "chance_q95": perm["null_q95"], "mean_acc": res["mean"]["outer_acc"],
            "folds": len(res["folds"]), "out": str(out)}
