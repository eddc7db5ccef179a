"""Supervised contrastive loss (Khosla et al., NeurIPS 2020) on the model's fused video embedding.

The loss is SupCon's L_out: for every anchor i with at least one positive (another sample of its
class) in the batch,

    l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )

with z the L2-normalised embeddings and t the temperature; the batch loss is the mean of l_i over the
anchors that have a positive. Anchors without a positive (the one REAL clip of a batch of 8) add
nothing as anchors but still sit in the other anchors' denominators. A batch holding a single class
has nothing to contrast and gives 0.

This is the definition of pytorch-metric-learning's ``SupConLoss`` (2.x: cosine similarity, positives
of the same label but not the anchor itself, denominator over every other sample) except for one
place: its default reducer (``AvgNonZeroReducer``) averages over the anchors whose loss is > 0, this
one over the anchors that have a positive. The two differ only where an anchor with a positive has a
loss that rounds to exactly 0 (its negatives' exp() underflow next to its positives': perfectly
separated embeddings at a small temperature); pml then leaves it out of the mean, here it counts as
0 (it is satisfied, not absent).

The embedding: MMMSBA's classifier is linear and applied to every frame's fused feature h (B, T, 900),
and the video logit is the masked mean of the frame logits, so it equals the classifier applied to the
masked mean of h. That mean is the video embedding the contrastive loss and feature SMOTE
(workbench.model.feature_smote) use; ``EmbeddingTap`` reads it off the classifier's input with a forward
hook, without changing the model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SupCon L_out of (B, D) embeddings (L2-normalised here) with (B,) labels: mean over anchors with a positive."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if embeddings.ndim != 2 or labels.ndim != 1 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(f"expected (B, D) embeddings and (B,) labels, got {tuple(embeddings.shape)} and "
                         f"{tuple(labels.shape)}")
    z = F.normalize(embeddings.float(), dim=1)
    b = z.shape[0]
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    same = labels[:, None] == labels[None, :]
    pos = same & ~eye
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()) or bool(same.all()):  # no positive pair, or no negative: nothing to contrast
        return z.sum() * 0.0  # keeps the graph
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))  # the anchor is not its own candidate
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = -log_prob.masked_fill(~pos, 0.0).sum(1)[has] / n_pos[has]
    return per_anchor.mean()


def pooled_embedding(frame_features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over valid frames of (B, T, D) frame features -> (B, D) video embeddings."""
    w = mask.to(frame_features.dtype)[..., None]  # (B, T, 1)
    return (frame_features * w).sum(1) / w.sum(1).clamp(min=1.0)


class EmbeddingTap:
    """Context manager: records the input of ``model.classifier`` (the fused frame features) at each forward.

    ``tap.embedding(mask)`` is then the (B, D) video embedding of the last forward (``pooled_embedding``),
    with gradients; the model is unchanged and the hook is removed on exit. With dropout before the head
    (``model.dropout`` > 0) in training mode this is the dropped-out feature the classifier saw.
    """

    def __init__(self, model: nn.Module) -> None:
        self.head = model.classifier
        self.features: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module: nn.Module, args: tuple) -> None:
        self.features = args[0]

    def __enter__(self) -> "EmbeddingTap":
        self._handle = self.head.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None

    def embedding(self, mask: torch.Tensor) -> torch.Tensor:
        """The (B, D) masked-mean embedding of the last forward's (B, T, D) classifier input."""
        if self.features is None:
            raise RuntimeError("no forward pass ran inside the EmbeddingTap")
        return pooled_embedding(self.features.float(), mask)
