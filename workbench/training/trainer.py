"""The training loop: one model, one training set, a selection set, callbacks on every epoch.

Adam + cosine schedule, AMP (bf16 on CPUs that support it, bf16/fp16 on CUDA), gradient
clipping, early stopping on a configurable monitor, the best checkpoint by a configurable
metric plus the last one. Metrics of the selection set are `val_*` (early stopping and the best
checkpoint read only these); a scoring set, when given, is evaluated every epoch as `outer_*`
and never used for a choice. The last checkpoint holds every RNG state, so an interrupted fit
resumed from it ends with the same weights as an uninterrupted one.

The study's further methods inside the loop (`methods`, all off by default): a supervised contrastive term
(Khosla et al. 2020) on the pooled fused embedding beside the objective (`supcon_weight`, `supcon_temperature`),
or SupCon alone for the first `supcon_pretrain_epochs` epochs (rows `phase` = pretrain, never selected), then
fine-tuning; hard-negative mining (`hard_negatives_*`): after the warm-up each epoch's draws are weighted by the
previous epoch's training P(REAL) (workbench.data.loading.hard_negative_weights), which the checkpoints keep.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from workbench.core.config import Config
from workbench.core.runtime import amp_dtype, autocast, init_seed, resolve_device, rng_state, set_rng_state
from workbench.data.dataset import ClipDataset, to_device
from workbench.data.loading import LoaderPool, hard_negative_weights
from workbench.evaluation.metrics import evaluation_metrics
from workbench.model.contrastive import EmbeddingTap, supcon_loss
from workbench.model.losses import build_objective, posthoc_adjust
from workbench.model.mmmsba import MMMSBA
from workbench.training.callbacks import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    EvalResult,
    FitState,
    HistoryCSV,
    LastCheckpoint,
    TensorBoard,
)


# ------------------------------------------------------------------ checkpoints
def checkpoint_name(cfg: Config, kind: str = "best") -> str:
    """The study's names: mmms-ba_best.pth, or mmms-ba_balanced_best.pth with a sampler or loss weighting."""
    balanced = cfg.train.weighted_sampler or cfg.loss.weighted or cfg.loss.kind != "ce"
    return f"mmms-ba{'_balanced' if balanced else ''}_{kind}.pth"


def load_model(path: str | Path, cfg: Config | None = None, device: str | torch.device = "cpu") -> tuple[MMMSBA, Config]:
    """Rebuild the model of a checkpoint; a mismatched `cfg.model` fails loudly."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    saved = Config.from_dict(ckpt["config"])
    if cfg is not None and (cfg.model != saved.model or cfg.audio.n_mfcc != saved.audio.n_mfcc):
        diff = {k: (v, getattr(saved.model, k)) for k, v in vars(cfg.model).items() if getattr(saved.model, k) != v}
        raise ValueError(f"checkpoint {path} was trained with a different model config: "
                         f"{{field: (requested, in checkpoint)}} = {diff}")
    model = MMMSBA(saved.model, saved.audio.n_mfcc)
    model.load_state_dict(ckpt["model"])
    return model.to(device, memory_format=torch.channels_last).eval(), saved


@dataclass
class FitResult:
    """What one fit leaves behind."""

    best_epoch: int
    best_metrics: dict[str, float]
    history: pd.DataFrame
    best_path: Path
    last_path: Path
    stopped_early: bool = False
    seconds: float = 0.0


class Trainer:
    """Fits MMMS-BA on `train_ds`, selects on `val_ds` each epoch, scores `outer_ds` (never a choice), writes to `out_dir`.

    `outer_ds` may be `val_ds` itself (selection on the scoring fold, `split.selection=outer`): it is then
    evaluated once per epoch and reported under both prefixes.
    """

    def __init__(self, cfg: Config, train_ds: ClipDataset, val_ds: ClipDataset | None, out_dir: str | Path,
                 outer_ds: ClipDataset | None = None):
        self.cfg = cfg
        self.train_ds, self.val_ds, self.outer_ds = train_ds, val_ds, outer_ds
        self.out_dir = Path(out_dir)
        self.device = resolve_device(cfg.train.device)
        self.dtype = amp_dtype(self.device, cfg.train.amp)
        init_seed(cfg.seed)
        self.model = MMMSBA(cfg.model, cfg.audio.n_mfcc)
        if cfg.model.audio_norm == "train":  # MFCC statistics of the training fold only, kept in the checkpoint
            self.model.set_audio_stats(*train_ds.audio_stats())
        self.model = self.model.to(self.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # static shapes: with automatic dynamic shapes Inductor fails on the CNN patches' strides on the CPU (bench --compile)
        self.forward = torch.compile(self.model, dynamic=False) if cfg.train.compile else self.model
        labels = np.asarray(train_ds.labels)
        self.class_counts = [int((labels == 0).sum()), int((labels == 1).sum())]
        self.objective = build_objective(cfg.loss, self.class_counts).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.train.t_max, eta_min=cfg.train.eta_min)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self.loaders = LoaderPool(cfg, self.device, kept=(train_ds, val_ds, outer_ds))
        self.p_real_prev: np.ndarray | None = None  # hard-negative mining: last epoch's P(REAL) per training clip
        if cfg.methods.supcon_pretrain_epochs >= cfg.train.epochs:
            raise ValueError(f"methods.supcon_pretrain_epochs={cfg.methods.supcon_pretrain_epochs} leaves no epoch of "
                             f"fine-tuning in train.epochs={cfg.train.epochs}; pre-train for fewer epochs")
        for m in (cfg.train.early_stop_monitor, cfg.train.checkpoint_monitor):
            if m.startswith("val_loc_") and not (val_ds is not None and val_ds.full):
                raise ValueError(f"monitor {m!r} is a localization score, computed only when the selection part is "
                                 f"scored on every frame: set data.eval_clip=full")

    # ------------------------------------------------------------------ callbacks (minGPT style)
    def add_callback(self, event: str, fn: Callable) -> None:
        """Register fn(trainer, **info) for `on_epoch_end` or `on_batch_end`."""
        self.callbacks[event].append(fn)

    def trigger(self, event: str, **info: Any) -> None:
        for fn in self.callbacks.get(event, []):
            fn(self, **info)

    # ------------------------------------------------------------------ loaders
    def _loader(self, ds: ClipDataset, train: bool, epoch: int, weights: np.ndarray | None = None) -> DataLoader:
        """Batches of `ds` from the fit's loader pool (workbench.data.loading: the data-loading policy)."""
        return self.loaders.loader(ds, train, epoch, weights)

    def close(self) -> None:
        """Stop the kept loaders' workers (a fit does this when it ends)."""
        self.loaders.close()

    # ------------------------------------------------------------------ one epoch
    def pretraining(self, epoch: int) -> bool:
        """True in the contrastive pre-training epochs (methods.supcon_pretrain_epochs): SupCon alone, never selected."""
        return epoch < self.cfg.methods.supcon_pretrain_epochs

    def batch_loss(self, batch: dict[str, torch.Tensor], epoch: int) -> tuple[torch.Tensor, dict, torch.Tensor | None]:
        """(loss, model output, SupCon term or None) of one batch: the objective, plus methods.supcon_weight x SupCon
        on the pooled fused embedding (workbench.model.contrastive), or SupCon alone while pre-training."""
        m = self.cfg.methods
        pre = self.pretraining(epoch)
        tap = EmbeddingTap(self.model) if pre or m.supcon_weight > 0 else None  # off: the plain forward, no hook
        with tap or contextlib.nullcontext(), autocast(self.device, self.dtype):
            out = self.forward(batch)
        sc = None if tap is None else supcon_loss(tap.embedding(batch["mask"]), batch["label"], m.supcon_temperature)
        if pre:
            return sc, out, sc
        loss = self.objective(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"],
                              frame_labels=batch["frame_label"])["loss"]
        return (loss if sc is None else loss + m.supcon_weight * sc), out, sc

    def _step(self, loss: torch.Tensor) -> None:
        """Backward, clip, optimiser step (through the fp16 scaler when there is one)."""
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if self.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training clips; returns train_loss and train_acc (and train_supcon when it is on).

        Under hard-negative mining the epoch's draws are weighted by the previous epoch's training predictions
        (`p_real_prev`, kept in the checkpoints), and this epoch's are recorded for the next.
        """
        self.model.train()
        weights = hard_negative_weights(self.cfg, self.train_ds.labels, self.p_real_prev, epoch)
        loader = self._loader(self.train_ds, train=True, epoch=epoch, weights=weights)
        track = self.cfg.methods.hard_negatives_fraction > 0
        p_sum, p_n = np.zeros(len(self.train_ds)), np.zeros(len(self.train_ds))
        total, sc_total, sc_n, correct, n = 0.0, 0.0, 0, 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not self.cfg.train.progress)
        for step, batch in enumerate(bar):
            batch = to_device(batch, self.device)
            loss, out, sc = self.batch_loss(batch, epoch)
            lv = loss.item()  # one host sync per step
            if not math.isfinite(lv):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}, step {step}")
            self._step(loss)
            B = batch["label"].shape[0]
            total += lv * B
            if sc is not None:
                sc_total, sc_n = sc_total + float(sc.detach()) * B, sc_n + B
            correct += int((out["video_logits"].argmax(-1) == batch["label"]).sum())
            n += B
            if track:  # P(REAL) of each drawn clip, averaged over its draws
                idx = batch["index"].cpu().numpy()
                np.add.at(p_sum, idx, torch.softmax(out["video_logits"].detach().float(), -1)[:, 0].cpu().numpy())
                np.add.at(p_n, idx, 1)
            bar.set_postfix(loss=f"{total / n:.4f}")
            self.trigger("on_batch_end", epoch=epoch, step=step, loss=lv)
        self.sched.step()
        if track:
            self.p_real_prev = np.where(p_n > 0, p_sum / np.maximum(p_n, 1), np.nan)
        row = {"train_loss": total / max(n, 1), "train_acc": correct / max(n, 1)}
        if self.cfg.methods.supcon_weight > 0 or self.cfg.methods.supcon_pretrain_epochs > 0:
            row["train_supcon"] = sc_total / sc_n if sc_n else math.nan  # NaN: not computed (fine-tuning, weight 0)
        return row

    @torch.no_grad()
    def evaluate(self, ds: ClipDataset, prefix: str = "val_") -> EvalResult:
        """Video and frame predictions on `ds` and every metric (FAKE positive, threshold 0.5)."""
        self.model.eval()
        loader = self._loader(ds, train=False, epoch=0)
        vids, frames, total, n = [], [], 0.0, 0
        for batch in loader:
            batch = to_device(batch, self.device)
            with autocast(self.device, self.dtype):
                out = self.forward(batch)
            fl, vl = out["frame_logits"].float(), out["video_logits"].float()
            total += float(self.objective(fl, vl, batch["label"], batch["mask"],
                                          frame_labels=batch["frame_label"])["loss"]) * vl.shape[0]
            n += vl.shape[0]
            if self.cfg.loss.posthoc_tau > 0:
                fl = posthoc_adjust(fl, self.class_counts, self.cfg.loss.posthoc_tau)
                vl = posthoc_adjust(vl, self.class_counts, self.cfg.loss.posthoc_tau)
            vids += self._video_rows(ds, batch, vl)
            frames += self._frame_tables(ds, batch, torch.softmax(fl, -1)[..., 1].cpu().numpy())
        videos = pd.DataFrame(vids)
        frames_df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        loc = self.cfg.localization if ds.full else None  # localization only on tables of every frame
        metrics = {"loss": total / max(n, 1), **evaluation_metrics(videos, frames_df, loc)}
        metrics = {f"{prefix}{k}": float(v) for k, v in metrics.items()}
        return EvalResult(metrics, videos, frames_df)

    @staticmethod
    def _video_rows(ds: ClipDataset, batch: dict[str, torch.Tensor], vl: torch.Tensor) -> list[dict]:
        """One row per video of a batch: its index row and the pooled P(Fake) and logits."""
        vp, vl = torch.softmax(vl, -1)[:, 1].cpu().numpy(), vl.cpu().numpy()
        rows = []
        for b, i in enumerate(batch["index"].tolist()):
            r = ds.rows[i]
            rows.append(dict(video_id=r.video_id, label=r.label, group=r.group, duration=r.duration,
                             n_frames=r.n_frames, split=r.split, p_fake=float(vp[b]),
                             logit_real=float(vl[b, 0]), logit_fake=float(vl[b, 1])))
        return rows

    @staticmethod
    def _frame_tables(ds: ClipDataset, batch: dict[str, torch.Tensor], fp: np.ndarray) -> list[pd.DataFrame]:
        """Per video of a batch, its valid frames: index, time, P(Fake), face found and the true frame label."""
        mask = batch["mask"].cpu().numpy()
        out = []
        for b, i in enumerate(batch["index"].tolist()):
            r, m = ds.rows[i], mask[b]
            out.append(pd.DataFrame(dict(
                video_id=r.video_id, label=r.label, frame=batch["frame_idx"][b][m].numpy(),
                timestamp=batch["timestamps"][b][m].numpy(), p_fake=fp[b][m],
                face_found=batch["face_found"][b][m].numpy(), frame_label=batch["frame_label"][b][m].cpu().numpy())))
        return out

    # ------------------------------------------------------------------ the loop
    def checkpoint_state(self, epoch: int, state: FitState) -> dict[str, Any]:
        """Everything a resumed fit needs: weights, optimiser, scheduler, scaler, the fit's state, RNG states."""
        history = state.history
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict() if self.scaler else None,
                "epoch": epoch, "history": history, "best": state.best, "bad_epochs": state.bad_epochs,
                "metrics": history[-1] if history else {}, "config": self.cfg.to_dict(),
                "fingerprint": self.cfg.fingerprint(), "rng": rng_state(), "p_real_prev": self.p_real_prev}

    def _resume(self, last_path: Path) -> FitState:
        """Model, optimiser, scheduler, scaler and RNG states from the last checkpoint; the fit's state."""
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != self.cfg.fingerprint():
            raise RuntimeError(f"{last_path} belongs to a different configuration; "
                               f"use another output folder or delete it to start over")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("rng") is not None:
            set_rng_state(state["rng"])
        self.p_real_prev = state.get("p_real_prev")  # what the next epoch's hard-negative draws read
        return FitState(state["history"], state["best"], state["bad_epochs"], state["epoch"] + 1)

    def _epoch(self, epoch: int) -> tuple[dict[str, float], EvalResult | None, EvalResult | None]:
        """Train one epoch, evaluate the selection set (val_*) and the scoring set (outer_*): (row, val, outer)."""
        row = {"epoch": epoch, "lr": self.opt.param_groups[0]["lr"]}
        if self.cfg.methods.supcon_pretrain_epochs > 0:  # pre-training epochs are never selected (callbacks)
            row["phase"] = "pretrain" if self.pretraining(epoch) else "train"
        row.update(self.train_epoch(epoch))
        val = self.evaluate(self.val_ds, "val_") if self.val_ds is not None else None
        if self.outer_ds is None:
            outer = None
        elif self.outer_ds is self.val_ds:
            outer = EvalResult({f"outer_{k[4:]}": v for k, v in val.metrics.items()}, val.videos, val.frames)
        else:
            outer = self.evaluate(self.outer_ds, "outer_")
        for ev in (val, outer):
            if ev is not None:
                row.update(ev.metrics)
        return row, val, outer

    def default_callbacks(self) -> list[Callback]:
        """Best checkpoint, early stopping, history.csv, last checkpoint (and TensorBoard), in that order."""
        cfg = self.cfg
        if cfg.split.selection == "last":  # a fixed budget: every epoch is "best" until the last; no stopping
            cbs: list[Callback] = [BestCheckpoint(self.best_path, None)]
        else:
            cbs = [BestCheckpoint(self.best_path, cfg.train.checkpoint_monitor),
                   EarlyStopping(cfg.train.early_stop_monitor, cfg.train.patience)]
        cbs += [HistoryCSV(self.out_dir / "history.csv"), LastCheckpoint(self.last_path)]
        if cfg.train.tensorboard:
            cbs.append(TensorBoard(self.out_dir / "tensorboard"))
        return cbs

    @property
    def best_path(self) -> Path:
        return self.out_dir / checkpoint_name(self.cfg, "best")

    @property
    def last_path(self) -> Path:
        return self.out_dir / checkpoint_name(self.cfg, "last")

    def fit(self, callbacks: list[Callback] | None = None) -> FitResult:
        """Train for `train.epochs` (resuming from the last checkpoint when one matches this config)."""
        t0 = time.time()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = self._resume(self.last_path) if self.last_path.exists() else FitState()
        cbs = self.default_callbacks() if callbacks is None else callbacks
        try:
            for cb in cbs:
                cb.on_fit_start(self, state)
            for epoch in range(state.start, self.cfg.train.epochs):
                if any(cb.should_stop(self, state) for cb in cbs):
                    break
                row, val, outer = self._epoch(epoch)
                state.history.append(row)
                for cb in cbs:
                    cb.on_epoch_end(self, state, row, val, outer)
                self.trigger("on_epoch_end", epoch=epoch, row=row, best_epoch=state.best["epoch"])
        finally:
            for cb in cbs:
                cb.on_fit_end(self, state)
            self.close()
        stopped = any(cb.should_stop(self, state) for cb in cbs) and len(state.history) < self.cfg.train.epochs
        return FitResult(best_epoch=int(state.best["epoch"]), best_metrics=state.best["metrics"],
                         history=pd.DataFrame(state.history), best_path=self.best_path, last_path=self.last_path,
                         stopped_early=stopped, seconds=time.time() - t0)


def epoch_line(row: dict[str, float], keys: tuple[str, ...] = ("train_loss", "train_acc", "val_loss", "val_acc",
                                                              "outer_acc", "outer_roc_auc",
                                                              "outer_real_frame_pfake_mean")) -> str:
    """One log line for an epoch."""
    parts = [f"epoch {int(row['epoch']):3d}"] + [f"{k} {row[k]:.4f}" for k in keys if k in row]
    return "  ".join(parts)

