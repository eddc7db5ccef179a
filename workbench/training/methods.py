"""The study's further methods that act on a fold around its fit: self-training before it, a head refit after it.

Both keep the fold's honest evaluation: nothing they add reaches the fold's inner (selection) part, its
outer (scoring) fold or the held-out test.

pseudo_label (methods.pseudo_label_rounds = R > 0; report 8.3, semi-supervised learning). Clips with
split=unlabeled or label -1 (``DatasetSplit.unlabeled_rows``, their label set to -1 on reading, so a withheld
label in the files is never seen) are candidates. A candidate whose group equals the group of any clip the fold
selects on (inner part), scores (outer fold) or tests (held-out test) is left out of that fold. Round r fits a
model on the fold's training part plus the clips pseudo-labelled in round r-1 (round 0: none), selected on the
inner part as usual (fold_k/pseudo_round_r/), and scores the candidates with its chosen checkpoint; those with
max(P(REAL), P(FAKE)) >= pseudo_label_threshold (and, with pseudo_label_real_only, called REAL) are labelled
with the call. The fold's own fit (fold_k/) then trains on the training part plus the last round's pseudo-labelled
clips, and is the model that is selected, scored and tested. fold_k/pseudo_labels.csv lists every candidate per
round (p_fake, pseudo_label, joined) and the candidates left out by group.

feature_smote (methods.feature_smote). After the fit, the chosen checkpoint embeds the fold's training clips
(the pooled fused feature of their evaluation clip, workbench.model.contrastive); SMOTE adds synthetic REAL rows
up to the FAKE count (k = min(feature_smote_k, n_REAL - 1)), and the linear classifier is refitted on them
(workbench.model.feature_smote). MMMS-BA's one linear head gives both the frame and the video logits, so both
change together; the encoder is untouched. The refitted model is saved (fold_k/mmms-ba*_smote.pth, the fold's
`checkpoint`), and it is the model that is scored on the inner part, the outer fold and the test. With fewer
than 2 REAL training clips the head is refitted without synthetic rows and `feature_smote.reason` says why.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from workbench.core.config import Config
from workbench.core.runtime import autocast
from workbench.data.dataset import PSEUDO_SPLIT, UNLABELED_SPLIT, ClipDataset, DatasetSplit, to_device
from workbench.data.records import IndexRow
from workbench.data.splits import FoldPlan
from workbench.model.contrastive import EmbeddingTap
from workbench.model.feature_smote import refit_head, smote_embeddings
from workbench.model.losses import posthoc_adjust
from workbench.training.callbacks import save_checkpoint
from workbench.training.trainer import FitResult, Trainer, checkpoint_name

Log = Callable[[str], None]
BEFORE_KEYS = ("loss", "acc", "balanced_acc", "roc_auc", "f1", "ece", "real_frame_acc", "real_frame_pfake_mean")


# ------------------------------------------------------------------ predictions of the current model
@torch.no_grad()
def forward_rows(trainer: Trainer, ds: ClipDataset, embed: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """P(Fake) (n,) of each clip of an evaluation dataset in row order, and with `embed` its (n, D) pooled embedding.

    No labels are read (unlabelled clips carry -1); post-hoc logit adjustment applies as in Trainer.evaluate.
    """
    model = trainer.model.eval()
    p, emb = np.full(len(ds), np.nan), None
    for batch in trainer.loaders.loader(ds, False, 0):
        idx = batch["index"].numpy()
        batch = to_device(batch, trainer.device)
        tap = EmbeddingTap(model) if embed else None
        with tap or contextlib.nullcontext(), autocast(trainer.device, trainer.dtype):
            out = model(batch)
        vl = posthoc_adjust(out["video_logits"].float(), trainer.class_counts, trainer.cfg.loss.posthoc_tau)
        p[idx] = torch.softmax(vl, -1)[:, 1].cpu().numpy()
        if tap is not None:
            e = tap.embedding(batch["mask"]).cpu().numpy()
            emb = np.zeros((len(ds), e.shape[1]), dtype=np.float32) if emb is None else emb
            emb[idx] = e
    return p, emb


def _load_best(trainer: Trainer, path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)
    trainer.model.load_state_dict(state["model"])
    return state


# ------------------------------------------------------------------ pseudo-labelling
def pseudo_candidates(plan: FoldPlan, data: DatasetSplit) -> tuple[list[IndexRow], list[IndexRow]]:
    """(eligible, blocked) unlabelled rows of a fold: blocked when its group is inner, outer or test in this fold."""
    seen = set(plan.inner_ids) | set(plan.outer_ids)
    groups = {r.group for r in data.rows if r.video_id in seen} | {r.group for r in data.test_rows}
    rows = [replace(r, label=-1, split=UNLABELED_SPLIT) for r in data.unlabeled_rows]  # never a withheld label
    return [r for r in rows if r.group not in groups], [r for r in rows if r.group in groups]


def choose_pseudo(p_fake: np.ndarray, threshold: float, real_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """(labels, take): the call (FAKE when P(Fake) > 0.5) and whether its confidence reaches the threshold."""
    labels = (p_fake > 0.5).astype(np.int64)
    take = np.maximum(p_fake, 1.0 - p_fake) >= threshold
    return labels, (take & (labels == 0)) if real_only else take


def _pseudo_round(cfg: Config, rnd: int, base: ClipDataset, pseudo: list[IndexRow], sel_ds: ClipDataset | None,
                  pool: ClipDataset, fdir: Path) -> tuple[np.ndarray, int]:
    """One self-training round: fit on base + pseudo, select on the inner part, score the pool: (P(Fake), best epoch)."""
    ds = ClipDataset(base.rows + pseudo, base.root, cfg, train=True, cache=base.cache, seed=base.seed)
    trainer = Trainer(cfg, ds, sel_ds, fdir / f"pseudo_round_{rnd}")
    fit = trainer.fit()
    _load_best(trainer, fit.best_path)
    try:
        return forward_rows(trainer, pool)[0], fit.best_epoch
    finally:
        trainer.close()


def pseudo_label_rounds(cfg: Config, plan: FoldPlan, data: DatasetSplit, fit_ds: ClipDataset, sel_ds: ClipDataset | None,
                        fdir: Path, log: Log = print) -> tuple[ClipDataset, dict]:
    """Self-training rounds before the fold's fit: its training set with the last round's pseudo-labelled clips added.

    Returns (training dataset, record for the fold's results under `pseudo_label`).
    """
    m = cfg.methods
    eligible, blocked = pseudo_candidates(plan, data)
    info = {"rounds": m.pseudo_label_rounds, "threshold": m.pseudo_label_threshold, "real_only": m.pseudo_label_real_only,
            "n_unlabeled": len(data.unlabeled_rows), "n_eligible": len(eligible),
            "blocked_by_group": [r.video_id for r in blocked], "per_round": [], "n_joined": 0, "reason": None}
    table = [{"round": -1, "video_id": r.video_id, "group": r.group, "p_fake": np.nan, "pseudo_label": -1,
              "joined": False, "note": "group selected, scored or tested in this fold"} for r in blocked]
    pseudo: list[IndexRow] = []
    if not eligible:
        info["reason"] = ("no unlabelled clips (split=unlabeled or label -1) in the dataset" if not data.unlabeled_rows
                          else "every unlabelled clip shares a group with a clip this fold selects on, scores or tests")
        log(f"[{cfg.name}] fold {plan.fold}: pseudo-labelling adds nothing: {info['reason']}")
    else:
        pool = ClipDataset(eligible, data.root, cfg, train=False, full=cfg.data.eval_clip == "full", cache=fit_ds.cache)
        for rnd in range(m.pseudo_label_rounds):
            p_fake, best = _pseudo_round(cfg, rnd, fit_ds, pseudo, sel_ds, pool, fdir)
            labels, take = choose_pseudo(p_fake, m.pseudo_label_threshold, m.pseudo_label_real_only)
            pseudo = [replace(r, label=int(y), split=PSEUDO_SPLIT) for r, y, t in zip(eligible, labels, take) if t]
            table += [{"round": rnd, "video_id": r.video_id, "group": r.group, "p_fake": float(p), "pseudo_label": int(y),
                       "joined": bool(t), "note": ""} for r, p, y, t in zip(eligible, p_fake, labels, take)]
            info["per_round"].append({"round": rnd, "best_epoch": best, "n_joined": int(take.sum()),
                                      "n_real": int((take & (labels == 0)).sum()), "n_fake": int((take & (labels == 1)).sum())})
            log(f"[{cfg.name}] fold {plan.fold}: pseudo-label round {rnd}: {int(take.sum())} of {len(eligible)} "
                f"unlabelled clip(s) join training ({len(blocked)} left out by group)")
        info["n_joined"] = len(pseudo)
    fdir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table, columns=["round", "video_id", "group", "p_fake", "pseudo_label", "joined", "note"]).to_csv(
        fdir / "pseudo_labels.csv", index=False)
    if not pseudo:
        return fit_ds, info
    return ClipDataset(fit_ds.rows + pseudo, data.root, cfg, train=True, cache=fit_ds.cache, seed=fit_ds.seed), info


# ------------------------------------------------------------------ feature SMOTE
def feature_smote_refit(trainer: Trainer, best_path: Path, cfg: Config, plan: FoldPlan, fit_ds: ClipDataset,
                        fdir: Path) -> tuple[Path, dict]:
    """Refit the classifier of the chosen checkpoint on SMOTE-oversampled REAL training embeddings; save it.

    Returns the refitted checkpoint and the record for the fold's results under `feature_smote`.
    """
    state = _load_best(trainer, best_path)
    emb_ds = ClipDataset(fit_ds.rows, fit_ds.root, cfg, train=False, full=cfg.data.eval_clip == "full",
                         cache=fit_ds.cache)
    _, X = forward_rows(trainer, emb_ds, embed=True)
    y = np.asarray(emb_ds.labels, dtype=np.int64)
    seed = cfg.seed + plan.fold
    X_res, y_res, info = smote_embeddings(X, y, k=cfg.methods.feature_smote_k, seed=seed)
    head, history = refit_head(trainer.model.classifier, X_res, y_res, seed=seed)
    trainer.model.classifier.load_state_dict(head.state_dict())
    state["model"] = trainer.model.state_dict()
    state["feature_smote"] = info
    path = fdir / checkpoint_name(cfg, "smote")
    save_checkpoint(path, state)
    info.update(refit=True, from_checkpoint=best_path.name, checkpoint=path.name, refit_loss_start=history[0],
                refit_loss_end=history[-1])
    return path, info


def rescore(trainer: Trainer, sel_ds: ClipDataset | None, outer_ds: ClipDataset, fdir: Path) -> dict[str, float]:
    """val_* and outer_* metrics of the trainer's current model; its predictions replace the chosen epoch's CSVs."""
    metrics: dict[str, float] = {}
    for name, ds in (("val", sel_ds), ("outer", outer_ds)):
        if ds is None:  # selection=last: no selection part
            continue
        ev = trainer.evaluate(ds, prefix=f"{name}_")
        ev.videos.to_csv(fdir / f"{name}_videos.csv", index=False)
        ev.frames.to_csv(fdir / f"{name}_frames.csv", index=False)
        metrics.update(ev.metrics)
    return metrics


def after_fit(trainer: Trainer, fit: FitResult, cfg: Config, plan: FoldPlan, fit_ds: ClipDataset,
              sel_ds: ClipDataset | None, outer_ds: ClipDataset, fdir: Path, extra: dict) -> tuple[Path, dict[str, float]]:
    """The model to score: the chosen checkpoint, or under feature_smote its refitted copy (with its val_* and
    outer_* metrics, which replace the chosen epoch's; the epoch's own go to extra['feature_smote']['before'])."""
    if not cfg.methods.feature_smote:
        return fit.best_path, {}
    path, info = feature_smote_refit(trainer, fit.best_path, cfg, plan, fit_ds, fdir)
    info["before"] = {f"{p}{k}": fit.best_metrics.get(f"{p}{k}") for p in ("val_", "outer_") for k in BEFORE_KEYS}
    extra["feature_smote"] = info
    return path, rescore(trainer, sel_ds, outer_ds, fdir)
