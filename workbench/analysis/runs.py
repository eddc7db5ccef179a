"""Reading K-fold run folders: one typed reader of kfold_results.json, a study's conditions, their checkpoints.

`read_run(cond_dir)` is the only place that parses kfold_results.json (written by
`workbench.training.kfold.collect`, whose format this module follows and never changes). Older runs
name the scoring fold `val_ids`; `FoldResult.outer_ids` reads either.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core import paths
from workbench.core.metric_names import as_float

RESULTS = "kfold_results.json"


def missing_run(cond_dir: str | Path) -> FileNotFoundError:
    """The error for a condition folder without kfold_results.json, naming the commands that make one."""
    cond_dir = Path(cond_dir)
    study = paths.missing_study(cond_dir.parent, f"no finished condition {cond_dir.name!r}")
    return FileNotFoundError(f"{study} (a single run: `workbench kfold --data DATA --out {cond_dir}`)")


@dataclass(frozen=True)
class FoldResult:
    """One fold of a K-fold run, as kfold_results.json records it."""

    fold: int
    train_ids: list[str]  # what the fold model fitted on
    inner_ids: list[str]  # its selection part (empty under selection=outer)
    outer_ids: list[str]  # the scoring fold (`val_ids` in older runs)
    metrics: dict[str, Any]  # train_* / val_* / outer_* at the chosen epoch (None = NaN)
    best_epoch: float  # NaN when not recorded
    checkpoint: Path | None  # the chosen checkpoint, absolute (None when not recorded)
    selection: str
    selection_optimism: dict[str, dict[str, float]]  # metric -> protocol, honest, optimism, protocol_epoch
    test_metrics: dict[str, Any]  # the fold model on the held-out test (empty without one)
    raw: dict[str, Any] = field(repr=False)  # the entry as written

    @classmethod
    def from_json(cls, d: dict[str, Any], run_dir: Path) -> FoldResult:
        ckpt = d.get("checkpoint")
        return cls(fold=int(d["fold"]), train_ids=[str(v) for v in d.get("train_ids") or []],
                   inner_ids=[str(v) for v in d.get("inner_ids") or []],
                   outer_ids=[str(v) for v in d.get("outer_ids") or d.get("val_ids") or []],
                   metrics=dict(d.get("metrics") or {}), best_epoch=d.get("best_epoch", math.nan),
                   checkpoint=Path(run_dir) / ckpt if ckpt else None, selection=str(d.get("selection", "")),
                   selection_optimism=dict(d.get("selection_optimism") or {}),
                   test_metrics=dict(d.get("test_metrics") or {}), raw=d)

    def metric(self, name: str) -> float:
        """One metric at the chosen epoch (NaN when absent)."""
        return as_float(self.metrics.get(name))

    @property
    def trained_ids(self) -> set[str]:
        """Every clip the fold model saw while fitting or selecting (it cannot score them fairly)."""
        return set(self.train_ids) | set(self.inner_ids)


@dataclass(frozen=True)
class KFoldRun:
    """A condition's kfold_results.json, typed: its folds in fold order, their mean and std, the held-out test."""

    path: Path
    condition: str
    selection: str  # inner (nested selection), last (a fixed budget) or outer (the original protocol; also unrecorded)
    folds: list[FoldResult]
    mean: dict[str, Any]
    std: dict[str, Any]
    std_ddof: int
    selection_optimism: dict[str, dict[str, Any]]  # metric -> mean, std, per_fold
    test: dict[str, Any] | None  # n_real, n_fake, video_ids, folds, mean, std, ensemble (None without a test split)
    complete: bool
    config: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)  # the file as written

    @property
    def checkpoints(self) -> list[Path]:
        """The chosen checkpoint of every fold, in fold order."""
        missing = [f.fold for f in self.folds if f.checkpoint is None]
        if missing:
            raise ValueError(f"{self.path / RESULTS}: fold(s) {missing} record no checkpoint")
        return [f.checkpoint for f in self.folds]

    def fold_values(self, metric: str) -> np.ndarray:
        """The metric of every fold (NaN where a fold lacks it)."""
        return np.array([f.metric(metric) for f in self.folds], dtype=np.float64)


def read_run(cond_dir: str | Path) -> KFoldRun:
    """The K-fold results of a condition folder; a missing file is an error naming the command that makes it."""
    cond_dir = Path(cond_dir)
    path = cond_dir / RESULTS
    if not path.is_file():
        raise missing_run(cond_dir)
    res = json.loads(path.read_text())
    folds = sorted((FoldResult.from_json(f, cond_dir) for f in res.get("folds") or []), key=lambda f: f.fold)
    return KFoldRun(path=cond_dir, condition=str(res.get("condition") or cond_dir.name),
                    selection=str(res.get("selection", "outer")), folds=folds, mean=dict(res.get("mean") or {}),
                    std=dict(res.get("std") or {}), std_ddof=int(res.get("std_ddof", 1)),
                    selection_optimism=dict(res.get("selection_optimism") or {}), test=res.get("test") or None,
                    complete=bool(res.get("complete")), config=dict(res.get("config") or {}), raw=res)


def has_run(cond_dir: str | Path) -> bool:
    """Whether a condition folder holds K-fold results (finished or not)."""
    return (Path(cond_dir) / RESULTS).is_file()


def condition_dirs(run_dir: str | Path) -> dict[str, Path]:
    """Every finished condition folder of a study (those with kfold_results.json), by name.

    A missing study folder, or one without a finished condition, is an error naming the command that makes it.
    """
    run_dir = Path(run_dir)
    found = {p.parent.name: p.parent for p in sorted(run_dir.glob(f"*/{RESULTS}"))}
    if not found:
        raise paths.missing_study(run_dir, "no finished condition" if run_dir.is_dir() else "nothing")
    return found


def finished_conditions(run_dir: str | Path, names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The named conditions that have finished, in the order named; every finished one (condition_dirs' order)
    when none is named."""
    found = condition_dirs(run_dir)
    return [c for c in (names or list(found)) if c in found]


def fold_checkpoints(cond_dir: str | Path) -> list[Path]:
    """The best checkpoint of every fold of a condition, in fold order."""
    return read_run(cond_dir).checkpoints


def models_for(cond_dir: str | Path, video_id: str) -> tuple[list[Path], str]:
    """The checkpoints that may score a video without having trained on it, and what that makes the score.

    A video no fold trained on (the held-out test) gets the fold ensemble: "held-out". A pool video gets only the
    model of the fold that scored it: "out-of-fold (fold k)"; the other fold models trained on it.
    """
    run = read_run(cond_dir)
    if not any(video_id in f.trained_ids for f in run.folds):
        return run.checkpoints, "held-out"
    scoring = [f for f in run.folds if video_id in f.outer_ids]
    if not scoring:
        raise KeyError(f"video {video_id!r} was trained on by every fold of {cond_dir}; nothing can score it fairly")
    f = scoring[0]
    return [f.checkpoint], f"out-of-fold (fold {f.fold})"


__all__ = ["RESULTS", "FoldResult", "KFoldRun", "as_float", "condition_dirs", "finished_conditions", "fold_checkpoints",
           "has_run", "missing_run", "models_for", "read_run"]
