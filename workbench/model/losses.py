"""Training objectives under class imbalance, the weighted sampler, and what each does to the prior.

Classes are 0 = REAL and 1 = FAKE. Every class-imbalance switch of ``LossConfig`` combines:
class weights (``weighted``), focal alpha, class-balanced (effective-number) weights all multiply
into one per-class weight vector ``w``; the classification loss is then a weighted mean with the
semantics of ``F.cross_entropy(weight=w)``: ``sum_i w_{y_i} l_i / sum_i w_{y_i}``. Because it is a
weighted *mean*, only the ratio of the weights matters (``focal_alpha = 0.5`` is a no-op).

Frame-level loss (``on = "frame"``): every valid frame (mask True) is scored against its own label
(``frame_labels``, 1 on manipulated frames of a partial fake) or, without per-frame labels, its video's
label; a video's loss is the mean over its valid frames, and the batch loss is the weighted mean of
those video losses, so each VIDEO counts equally however many frames it has. Videos without a
single valid frame are left out. The two levels of imbalance stay separate: the video-level weight
vector ``w`` weighs each video by its video label (frames carrying their video's label get exactly the
video loss's per-sample term; a genuine frame inside a FAKE video gets ``w_FAKE`` times its unweighted
loss), and with ``frame_weighted`` the mean inside a video is weighted by ``frame_class_weights`` of each
frame's own label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.config import LossConfig, choices_of

CLASS_NAMES = ("REAL", "FAKE")
LOSS_KINDS = choices_of("loss.kind")  # the config validates them; named here for tables and tests
LOSS_ON = choices_of("loss.on")


# ---------------------------------------------------------------------------- priors and weights
def _counts(counts: Sequence[int], n_classes: int | None = None) -> np.ndarray:
    """Validated class counts as a float array (every class must be present)."""
    arr = np.asarray(list(counts), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"class counts must be a non-empty 1-D sequence, got {counts!r}")
    if n_classes is not None and arr.size != n_classes:
        raise ValueError(f"expected {n_classes} class counts [REAL, FAKE], got {counts!r}")
    if np.any(arr <= 0) or not np.all(np.isfinite(arr)):
        raise ValueError(f"every class count must be a positive number, got {counts!r}")
    return arr


def effective_number_weights(counts: Sequence[int], beta: float) -> torch.Tensor:
    """Class-balanced weights (Cui et al. 2019) (1-beta)/(1-beta^n_c), normalised to sum to n_classes."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"cb_beta must lie in [0, 1), got {beta}")
    n = _counts(counts)
    w = (1.0 - beta) / (1.0 - np.power(beta, n))
    w = w / w.sum() * n.size
    return torch.tensor(w, dtype=torch.float32)


def logit_offsets(counts: Sequence[int], tau: float) -> torch.Tensor:
    """Logit-adjustment offsets tau * log(prior_c) (Menon et al. 2021)."""
    n = _counts(counts)
    return torch.tensor(tau * np.log(n / n.sum()), dtype=torch.float32)


def posthoc_adjust(logits: torch.Tensor, counts: Sequence[int], tau: float) -> torch.Tensor:
    """Post-hoc logit adjustment logits - tau*log(prior) over the last (class) axis."""
    if tau == 0:
        return logits
    off = logit_offsets(counts, tau).to(device=logits.device, dtype=logits.dtype)
    if logits.shape[-1] != off.numel():
        raise ValueError(f"logits have {logits.shape[-1]} classes but {off.numel()} class counts were given")
    return logits - off


def loss_class_weights(cfg: LossConfig, class_counts: Sequence[int]) -> torch.Tensor | None:
    """The per-class weight vector [REAL, FAKE] the objective applies (None when all are 1)."""
    w = torch.ones(2, dtype=torch.float32)
    used = False
    if cfg.weighted:
        if len(cfg.class_weights) != 2:
            raise ValueError(f"loss.class_weights must be [REAL, FAKE], got {cfg.class_weights!r}")
        w = w * torch.tensor(cfg.class_weights, dtype=torch.float32)
        used = True
    if cfg.kind == "focal" and cfg.focal_alpha is not None:
        if not 0.0 <= cfg.focal_alpha <= 1.0:
            raise ValueError(f"loss.focal_alpha must lie in [0, 1], got {cfg.focal_alpha}")
        w = w * torch.tensor([1.0 - cfg.focal_alpha, cfg.focal_alpha], dtype=torch.float32)
        used = True
    if cfg.kind == "class_balanced":
        w = w * effective_number_weights(_counts(class_counts, 2), cfg.cb_beta)
        used = True
    if used and (torch.any(w < 0) or float(w.sum()) <= 0):
        raise ValueError(f"class weights must be non-negative and not all zero, got {w.tolist()}")
    return w if used else None


def frame_class_weights(cfg: LossConfig) -> torch.Tensor | None:
    """The per-frame weights [REAL, FAKE] inside a video's frame loss (None unless loss.frame_weighted)."""
    if not cfg.frame_weighted:
        return None
    w = cfg.frame_class_weights
    if len(w) != 2 or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"loss.frame_class_weights must be [REAL, FAKE], non-negative, not both zero; got {w!r}")
    return torch.tensor(w, dtype=torch.float32)


# ---------------------------------------------------------------------------- focal loss
class FocalLoss(nn.Module):
    """Focal loss sum_c q_c w_c (1-p_c)^gamma (-log p_c) with smoothed targets q; gamma=0 is cross-entropy."""

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | None = None,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be one of mean, sum, none; got {reduction!r}")
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction
        if alpha is not None:  # binary: alpha weighs FAKE (class 1), 1 - alpha weighs REAL
            a = torch.tensor([1.0 - alpha, alpha], dtype=torch.float32)
            weight = a if weight is None else weight.float() * a
        self.register_buffer("weight", None if weight is None else weight.float())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (N, C) logits against (N,) class indices, reduced like F.cross_entropy."""
        per, w = focal_per_sample(logits, target, self.gamma, self.weight, self.label_smoothing)
        if self.reduction == "none":
            return per
        if self.reduction == "sum":
            return per.sum()
        return per.sum() / w.sum()


def focal_per_sample(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    weight: torch.Tensor | None,
    label_smoothing: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample weighted focal losses (N,) and the weight w_{y_i} of each sample (N,), in float32."""
    logits = logits.float()
    n_classes = logits.shape[-1]
    logp = F.log_softmax(logits, dim=-1)
    q = F.one_hot(target, n_classes).float() * (1.0 - label_smoothing) + label_smoothing / n_classes
    term = -logp * q
    if gamma != 0:
        term = term * (1.0 - logp.exp()).pow(gamma)
    if weight is not None:
        weight = weight.to(device=logits.device, dtype=torch.float32)
        term = term * weight
        w = weight[target]
    else:
        w = torch.ones_like(target, dtype=torch.float32)
    return term.sum(-1), w


# ---------------------------------------------------------------------------- the objective
class Objective(nn.Module):
    """Classification loss on video and/or frame logits plus the temporal-consistency penalty."""

    def __init__(
        self,
        on: str = "video",
        gamma: float = 0.0,
        weight: torch.Tensor | None = None,
        offsets: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        temporal_lambda: float = 0.0,
        frame_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.on = on
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.temporal_lambda = float(temporal_lambda)
        self.register_buffer("weight", None if weight is None else weight.float())
        self.register_buffer("offsets", None if offsets is None else offsets.float())
        self.register_buffer("frame_weight", None if frame_weight is None else frame_weight.float())

    def _per_sample(self, logits: torch.Tensor, labels: torch.Tensor,
                    weighted: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses (class-weighted unless ``weighted`` is False) and sample weights of (N, 2) logits."""
        weight = self.weight if weighted else None
        if self.offsets is not None:
            logits = logits + self.offsets
        if self.gamma == 0:
            per = F.cross_entropy(
                logits, labels, weight=weight, label_smoothing=self.label_smoothing, reduction="none"
            )
            w = weight[labels] if weight is not None else torch.ones_like(per)
            return per, w
        return focal_per_sample(logits, labels, self.gamma, weight, self.label_smoothing)

    def video_loss(self, video_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Weighted mean loss of (B, 2) video logits."""
        per, w = self._per_sample(video_logits.float(), labels)
        return per.sum() / w.sum()

    def frame_loss(self, frame_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                   frame_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per video the (frame-weighted) mean loss over its valid frames, then the weighted mean over videos.

        ``frame_labels`` (B, T) are the per-frame targets (None: every frame has its video's label).
        """
        b, t, c = frame_logits.shape
        logits = frame_logits.float().reshape(b * t, c)
        video_labels = labels[:, None].expand(b, t)  # (B, T)
        target = video_labels if frame_labels is None else frame_labels.long()
        per, _ = self._per_sample(logits, target.reshape(-1))  # (B*T,) weighted by the target's class
        per = per.reshape(b, t)
        w_video = self.weight[labels] if self.weight is not None else torch.ones(b, device=per.device)  # (B,)
        if frame_labels is not None and self.weight is not None:  # a frame off its video's label: w_video x plain loss
            plain, _ = self._per_sample(logits, target.reshape(-1), weighted=False)
            per = torch.where(target == video_labels, per, w_video[:, None] * plain.reshape(b, t))
        m = mask.to(per.dtype)
        if self.frame_weight is not None:
            m = m * self.frame_weight[target]
        n_valid = m.sum(1)
        has = n_valid > 0
        if not bool(has.any()):
            return frame_logits.float().sum() * 0.0  # keeps the graph; nothing to learn from
        video = (per * m).sum(1)[has] / n_valid[has]
        return video.sum() / w_video[has].sum()

    def temporal(self, frame_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean |p_t - p_{t-1}| of per-frame P(Fake) over adjacent pairs of valid frames."""
        p = torch.softmax(frame_logits.float(), dim=-1)[..., 1]
        pair = (mask[:, 1:] & mask[:, :-1]).to(p.dtype)
        n = pair.sum()
        if float(n) == 0:
            return p.sum() * 0.0
        return ((p[:, 1:] - p[:, :-1]).abs() * pair).sum() / n

    def forward(
        self,
        frame_logits: torch.Tensor | None,
        video_logits: torch.Tensor | None,
        labels: torch.Tensor,
        mask: torch.Tensor | None = None,
        frame_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """{"loss", "cls", "temporal"} (plus "cls_video"/"cls_frame" when on="both"); mask None = all valid.

        ``frame_labels`` (B, T), 1 on manipulated frames, are the frame loss's targets (None: the video label).
        """
        labels = labels.long()
        if self.on in ("frame", "both") or self.temporal_lambda > 0:
            if frame_logits is None:
                raise ValueError(f"loss.on={self.on!r} / temporal_lambda needs frame_logits (B, T, 2)")
            if mask is None:
                mask = torch.ones(frame_logits.shape[:2], dtype=torch.bool, device=frame_logits.device)
            mask = mask.bool()
        if self.on in ("video", "both") and video_logits is None:
            raise ValueError(f"loss.on={self.on!r} needs video_logits (B, 2)")

        out: dict[str, torch.Tensor] = {}
        if self.on == "video":
            cls = self.video_loss(video_logits, labels)
        elif self.on == "frame":
            cls = self.frame_loss(frame_logits, labels, mask, frame_labels)
        else:
            out["cls_video"] = self.video_loss(video_logits, labels)
            out["cls_frame"] = self.frame_loss(frame_logits, labels, mask, frame_labels)
            cls = 0.5 * (out["cls_video"] + out["cls_frame"])

        if self.temporal_lambda > 0:
            temporal = self.temporal(frame_logits, mask)
        else:
            temporal = torch.zeros((), dtype=torch.float32, device=cls.device)
        out.update(loss=cls + self.temporal_lambda * temporal, cls=cls, temporal=temporal)
        return out


def build_objective(cfg: LossConfig, class_counts: Sequence[int]) -> Objective:
    """The objective of a LossConfig; class_counts [n_REAL, n_FAKE] of the training fold."""
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ValueError(f"loss.label_smoothing must lie in [0, 1), got {cfg.label_smoothing}")
    if cfg.temporal_lambda < 0:
        raise ValueError(f"loss.temporal_lambda must be >= 0, got {cfg.temporal_lambda}")
    offsets = logit_offsets(_counts(class_counts, 2), cfg.la_tau) if cfg.kind == "logit_adjusted" else None
    return Objective(
        frame_weight=frame_class_weights(cfg),
        on=cfg.on,
        gamma=cfg.focal_gamma if cfg.kind == "focal" else 0.0,
        weight=loss_class_weights(cfg, class_counts),
        offsets=offsets,
        label_smoothing=cfg.label_smoothing,
        temporal_lambda=cfg.temporal_lambda,
    )


# ---------------------------------------------------------------------------- what the model "sees"
def describe_priors(cfg: LossConfig, class_counts: Sequence[int], weighted_sampler: bool) -> pd.DataFrame:
    """Per class: data prior, sampler prior, applied weights/offsets and the effective prior (see notes).

    The effective prior is the class prior that a model fitting the objective perfectly would
    carry in its (evaluation) logits: p(y|x) of a Bayes-optimal model of a weighted CE is
    proportional to sampler_prior_y * w_y * p(x|y); training on logits + tau*log(prior) divides
    that by prior_y^tau; post-hoc adjustment at evaluation divides it by prior_y^posthoc_tau. So

        train_prior     ∝ sampler_prior * loss_weight * exp(-logit_offset)
        effective_prior ∝ train_prior * exp(-posthoc_offset)

    each renormalised to sum 1. Focal gamma and label smoothing reshape the loss but are not a
    prior shift, so they are left out (focal alpha is in loss_weight).
    """
    n = _counts(class_counts, 2)
    prior = n / n.sum()
    sampler = np.full(2, 0.5) if weighted_sampler else prior.copy()
    ce_w = np.asarray(cfg.class_weights, dtype=np.float64) if cfg.weighted else np.ones(2)
    alpha_w = (
        np.array([1.0 - cfg.focal_alpha, cfg.focal_alpha])
        if cfg.kind == "focal" and cfg.focal_alpha is not None
        else np.ones(2)
    )
    cb_w = effective_number_weights(n, cfg.cb_beta).double().numpy() if cfg.kind == "class_balanced" else np.ones(2)
    weights = loss_class_weights(cfg, n)
    loss_w = np.ones(2) if weights is None else weights.double().numpy()
    la = cfg.la_tau * np.log(prior) if cfg.kind == "logit_adjusted" else np.zeros(2)
    ph = cfg.posthoc_tau * np.log(prior) + 0.0  # + 0.0 turns -0.0 into 0.0

    def norm(v: np.ndarray) -> np.ndarray:
        return v / v.sum()

    train_prior = norm(sampler * loss_w * np.exp(-la))
    effective = norm(train_prior * np.exp(-ph))
    return pd.DataFrame(
        {
            "count": n.astype(int),
            "data_prior": prior,
            "sampler_prior": sampler,
            "ce_weight": ce_w,
            "focal_alpha_weight": alpha_w,
            "cb_weight": cb_w,
            "loss_weight": loss_w,
            "logit_offset": la,
            "posthoc_offset": ph,
            "train_prior": train_prior,
            "effective_prior": effective,
        },
        index=pd.Index(CLASS_NAMES, name="class"),
    )


def effective_fake_prior(cfg: LossConfig, class_counts: Sequence[int], weighted_sampler: bool) -> float:
    """The effective prior of FAKE from describe_priors (one number for plots)."""
    return float(describe_priors(cfg, class_counts, weighted_sampler).loc["FAKE", "effective_prior"])


__all__ = [
    "CLASS_NAMES",
    "LOSS_KINDS",
    "LOSS_ON",
    "FocalLoss",
    "Objective",
    "build_objective",
    "describe_priors",
    "effective_fake_prior",
    "effective_number_weights",
    "focal_per_sample",
    "frame_class_weights",
    "logit_offsets",
    "loss_class_weights",
    "posthoc_adjust",
]
