"""The data-loading policy of a fit: which sampler draws the training clips, how many loader workers read them,
and which loaders keep their workers for the whole fit.

The RAM cache is filled first (before workers fork, so they share it); workers then read the other clips' frames
from disk while the model computes. The loaders of the sets every epoch visits (training, selection, scoring)
keep their workers for the whole fit, forked once (a fork per epoch cost each epoch's first training step about
3 s at the reference sizes); each epoch gives the kept training loader its new draws. Each loader draws its
worker seeds from its own generator, not from the global RNG that dropout uses, so a result depends neither on
the workers nor on how many loaders a fit starts.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler

from workbench.core.config import Config
from workbench.data.augment import active as augment_active
from workbench.data.dataset import ClipDataset, DrawSampler, collate, loader_context, loader_workers
from workbench.data.hard_negatives import hard_weights
from workbench.data.sampling import make_weighted_sampler


def hard_negative_weights(cfg: Config, labels: Sequence[int], p_real_prev: np.ndarray | None,
                          epoch: int) -> np.ndarray | None:
    """The epoch's draw weights under hard-negative mining (methods.hard_negatives_*), or None for the plain draws.

    None while mining is off, before `hard_negatives_warmup` epochs have passed, or without the previous epoch's
    training predictions: those epochs draw exactly as a run without mining. Afterwards the base weights (inverse
    class frequency under train.weighted_sampler, else uniform) with the hardest clips boosted (hard_weights).
    """
    m = cfg.methods
    if m.hard_negatives_fraction <= 0 or p_real_prev is None or epoch < max(1, m.hard_negatives_warmup):
        return None
    y = np.asarray(labels, dtype=np.int64)
    base = 1.0 / np.bincount(y, minlength=2)[y] if cfg.train.weighted_sampler else np.ones(len(y))
    return hard_weights(p_real_prev, y, m.hard_negatives_fraction, m.hard_negatives_boost,
                        m.hard_negatives_include_real, base_weights=base)


def training_sampler(cfg: Config, ds: ClipDataset, epoch: int, weights: np.ndarray | None = None) -> DrawSampler:
    """The epoch's draws, keyed by seed and epoch: by `weights` (with replacement) when given, else a weighted
    (inverse class frequency) or a uniform random order."""
    seed = cfg.seed * 1000 + epoch
    if weights is not None:
        if len(weights) != len(ds):
            raise ValueError(f"{len(weights)} draw weights for {len(ds)} training clips")
        base = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples=len(ds),
                                     replacement=True, generator=torch.Generator().manual_seed(seed))
    elif cfg.train.weighted_sampler:
        base = make_weighted_sampler(ds.labels, seed=seed)
    else:
        base = RandomSampler(ds, generator=torch.Generator().manual_seed(seed))
    return DrawSampler(base, epoch)


class LoaderPool:
    """DataLoaders of one fit; those of the `kept` datasets keep their workers until close()."""

    def __init__(self, cfg: Config, device: torch.device, kept: tuple[ClipDataset | None, ...] = ()):
        self.cfg, self.device = cfg, device
        self.kept = tuple(ds for ds in kept if ds is not None)
        self._loaders: dict[int, DataLoader] = {}  # id(dataset) -> a loader whose workers live for the fit

    def loader(self, ds: ClipDataset, train: bool, epoch: int, weights: np.ndarray | None = None) -> DataLoader:
        """Batches of `ds` for this epoch; training draws come from a DrawSampler (each its own clip and augmentation),
        by `weights` when given (hard_negative_weights)."""
        ds.set_epoch(epoch)
        sampler = training_sampler(self.cfg, ds, epoch, weights) if train else None
        all_cached = ds.preload()
        busy = not all_cached or (train and augment_active(self.cfg.augment))
        workers = loader_workers(self.cfg, self.device, busy=busy)
        kept = self._loaders.pop(id(ds), None)
        if kept is not None and kept.num_workers == workers:
            self._loaders[id(ds)] = kept
            if sampler is not None:
                kept.sampler.draws = sampler.draws
            return kept
        keep = workers > 0 and any(ds is x for x in self.kept)
        loader = DataLoader(ds, batch_size=self.cfg.train.batch_size, sampler=sampler, collate_fn=collate,
                            num_workers=workers, pin_memory=self.device.type == "cuda", persistent_workers=keep,
                            drop_last=False, multiprocessing_context=loader_context(workers),
                            generator=torch.Generator().manual_seed(self.cfg.seed))
        if keep:
            self._loaders[id(ds)] = loader
        return loader

    def close(self) -> None:
        """Stop the kept loaders' workers."""
        self._loaders.clear()
