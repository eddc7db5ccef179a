"""What a fit does at the end of each epoch, as callbacks (minGPT / Lightning style).

The trainer owns the loop; each callback reads and updates the fit's state (`FitState`: history, the best
epoch, epochs without improvement), which the checkpoints save so that a resumed fit goes on exactly where
it stopped. The default order (`Trainer.default_callbacks`) matters: the best checkpoint is written before
early stopping counts the epoch, the history CSV and the last checkpoint after both.

    BestCheckpoint   the best epoch by `train.checkpoint_monitor`: its checkpoint and its predictions
    EarlyStopping    stop after `train.patience` epochs without improvement of `train.early_stop_monitor`
                     (both skip contrastive pre-training epochs, `phase` = pretrain in the row)
    HistoryCSV       history.csv, one row per epoch
    LastCheckpoint   the last epoch's checkpoint with every RNG state (exact resume)
    TensorBoard      every metric of the epoch as a scalar (optional dependency)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch

from workbench.core.metric_names import metric_mode
from workbench.data.records import atomic_write


@dataclass
class EvalResult:
    """Metrics and predictions of one evaluation of a set: video rows and frame rows."""

    metrics: dict[str, float]
    videos: pd.DataFrame
    frames: pd.DataFrame


class Trainer(Protocol):
    """What a callback uses of the trainer that runs it (workbench.training.trainer.Trainer)."""

    out_dir: Path

    def checkpoint_state(self, epoch: int, state: FitState) -> dict[str, Any]: ...


@dataclass
class FitState:
    """What a fit has done so far; the checkpoints save it (keys `history`, `best`, `bad_epochs`)."""

    history: list[dict] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"value": None, "epoch": -1, "metrics": {}, "es_value": None})
    bad_epochs: int = 0
    start: int = 0


def better(value: float, best: float | None, mode: str) -> bool:
    """Strict improvement; NaN never improves, anything beats no value yet."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return best is None
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return True
    return value > best if mode == "max" else value < best


def pretraining(row: dict) -> bool:
    """An epoch of contrastive pre-training (methods.supcon_pretrain_epochs): its classifier is untrained, so
    neither the best checkpoint nor early stopping reads it."""
    return row.get("phase") == "pretrain"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """torch.save to a temporary file, then rename: a crash never leaves half a checkpoint."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


class Callback:
    """Hooks of a fit; each gets the trainer and the fit's state."""

    def on_fit_start(self, trainer: Trainer, state: FitState) -> None:
        """Before the first epoch (after a resume)."""

    def should_stop(self, trainer: Trainer, state: FitState) -> bool:
        """Asked before each epoch: True ends the fit."""
        return False

    def on_epoch_end(self, trainer: Trainer, state: FitState, row: dict[str, float],
                     val: EvalResult | None, outer: EvalResult | None) -> None:
        """After an epoch was trained and evaluated (its row already in state.history)."""

    def on_fit_end(self, trainer: Trainer, state: FitState) -> None:
        """After the last epoch, also when the fit fails."""


class BestCheckpoint(Callback):
    """The best epoch by a monitor (None: every epoch, so the last one is kept): its checkpoint and the selection /
    scoring predictions of that epoch."""

    def __init__(self, path: Path, monitor: str | None):
        self.path, self.monitor = Path(path), monitor
        self.mode = metric_mode(monitor) if monitor else "max"

    def on_epoch_end(self, trainer, state, row, val, outer) -> None:
        if pretraining(row):
            return
        value = row.get(self.monitor) if self.monitor else None
        if self.monitor is None or better(value, state.best["value"], self.mode):
            state.best.update(value=value, epoch=int(row["epoch"]), metrics=dict(row))
            save_checkpoint(self.path, trainer.checkpoint_state(int(row["epoch"]), state))
            for name, ev in (("val", val), ("outer", outer)):
                if ev is not None:
                    ev.videos.to_csv(trainer.out_dir / f"{name}_videos.csv", index=False)
                    ev.frames.to_csv(trainer.out_dir / f"{name}_frames.csv", index=False)


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a strict improvement of the monitor (0 = never)."""

    def __init__(self, monitor: str, patience: int):
        self.monitor, self.patience, self.mode = monitor, patience, metric_mode(monitor)

    def should_stop(self, trainer, state) -> bool:
        return self.patience > 0 and state.bad_epochs >= self.patience

    def on_epoch_end(self, trainer, state, row, val, outer) -> None:
        if pretraining(row):
            return
        value = row.get(self.monitor)
        if better(value, state.best["es_value"], self.mode):
            state.best["es_value"], state.bad_epochs = value, 0
        else:
            state.bad_epochs += 1


class HistoryCSV(Callback):
    """history.csv: every epoch's row, rewritten after each epoch."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer, state, row, val, outer) -> None:
        pd.DataFrame(state.history).to_csv(self.path, index=False)


class LastCheckpoint(Callback):
    """The last epoch's checkpoint: model, optimiser, scheduler, RNG states and the fit's state."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer, state, row, val, outer) -> None:
        save_checkpoint(self.path, trainer.checkpoint_state(int(row["epoch"]), state))


class TensorBoard(Callback):
    """Every finite metric of an epoch as a TensorBoard scalar (needs the tensorboard package)."""

    def __init__(self, log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError("train.tensorboard needs the tensorboard package: pip install tensorboard") from e
        self.writer = SummaryWriter(str(log_dir))

    def on_epoch_end(self, trainer, state, row, val, outer) -> None:
        for k, v in row.items():
            if isinstance(v, float) and not math.isnan(v):
                self.writer.add_scalar(k, v, int(row["epoch"]))

    def on_fit_end(self, trainer, state) -> None:
        self.writer.close()
