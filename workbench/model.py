"""MMMS-BA: Multi-Modal Multi-Sequence Bi-Modal Attention for audio-visual deepfake detection.

    face (B,T,224,224,3) uint8 -> FrameCNN -> (B,T,256) -> Bi-GRU -> dense+tanh -> F (B,T,100)
    lip  (B,T,112,112,3) uint8 -> FrameCNN -> (B,T,128) -> Bi-GRU -> dense+tanh -> L (B,T,100)
    mfcc (B,Ta,40)             ->             Bi-GRU at the MFCC rate -> dense+tanh -> (B,Ta,100)
                                  -> gathered at each frame's timestamp -> A (B,T,100)
    bi-modal attention on (F,L), (A,F), (L,A), both ways -> 6 x (B,T,100)
    concat with F, L, A -> (B,T,900) -> linear -> per-frame logits (B,T,2)
    video logit = masked mean over frames of the per-frame logits (B,2)

The classifier is linear, so the video logit equals the classifier applied to the masked mean
of the frame features: the same head gives video and per-frame outputs. Which of the two the
loss sees is the `loss.on` setting.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from workbench.config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameCNN(nn.Module):
    """conv3x3 s2 -> pool -> conv3x3 s2 -> pool -> conv3x3 s2 -> global pool: one vector per frame."""

    def __init__(self, channels: list[int]):
        super().__init__()
        c1, c2, c3 = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.BatchNorm2d(c2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.out_dim = c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, H, W, 3) uint8 -> the permuted view is already channels-last in memory
        x = x.permute(0, 3, 1, 2).float()  # (N, 3, H, W)
        x = (x - self.mean) / self.std
        return self.net(x.contiguous(memory_format=torch.channels_last))  # (N, C)


class SequenceEncoder(nn.Module):
    """One Bi-GRU over a padded sequence (packed, so padding never leaks), then dense + tanh."""

    def __init__(self, d_in: int, hidden: int, dense: int, dropout: float = 0.0):
        super().__init__()
        self.gru = nn.GRU(d_in, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * hidden, dense)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        packed = pack_padded_sequence(x.float(), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, 2*hidden)
        return torch.tanh(self.proj(self.drop(out)))  # (B, T, dense)


def bimodal_attention(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Parameter-free bi-modal attention (Ghosal et al. 2018) over valid frames, both ways."""
    # x, y: (B, T, D); mask: (B, T) True on valid frames
    key_pad = ~mask[:, None, :]  # (B, 1, T)
    m1 = x @ y.transpose(1, 2)  # (B, T, T)
    m2 = y @ x.transpose(1, 2)  # (B, T, T)
    n1 = torch.softmax(m1.float().masked_fill(key_pad, float("-inf")), dim=-1).to(y.dtype)
    n2 = torch.softmax(m2.float().masked_fill(key_pad, float("-inf")), dim=-1).to(x.dtype)
    a1 = (n1 @ y) * x  # (B, T, D)  O1 = softmax(M1) Y, A1 = O1 * X
    a2 = (n2 @ x) * y  # (B, T, D)
    return torch.cat([a1, a2], dim=-1)  # (B, T, 2D)


def self_attention(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The same parameter-free attention of a modality with itself (the `self` ablation)."""
    key_pad = ~mask[:, None, :]
    n = torch.softmax((x @ x.transpose(1, 2)).float().masked_fill(key_pad, float("-inf")), dim=-1).to(x.dtype)
    return (n @ x) * x  # (B, T, D)


class MMMSBA(nn.Module):
    """The tri-modal detector: per-frame logits (B,T,2) and a pooled video logit (B,2)."""

    PAIRS = (("face", "lip"), ("audio", "face"), ("lip", "audio"))

    def __init__(self, cfg: ModelConfig, n_mfcc: int = 40):
        super().__init__()
        if cfg.attention not in ("bi_modal", "self", "none"):
            raise ValueError(f"model.attention must be bi_modal, self or none, got {cfg.attention!r}")
        self.cfg = cfg
        self.face_cnn = FrameCNN(cfg.face_channels)
        self.lip_cnn = FrameCNN(cfg.lip_channels)
        self.face_seq = SequenceEncoder(self.face_cnn.out_dim, cfg.gru_hidden, cfg.dense, cfg.dropout)
        self.lip_seq = SequenceEncoder(self.lip_cnn.out_dim, cfg.gru_hidden, cfg.dense, cfg.dropout)
        self.audio_seq = SequenceEncoder(n_mfcc, cfg.gru_hidden, cfg.dense, cfg.dropout)
        n_att = {"bi_modal": 2 * len(self.PAIRS), "self": 3, "none": 0}[cfg.attention]
        self.head_drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear((n_att + 3) * cfg.dense, 2)

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def _per_frame(cnn: FrameCNN, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run a CNN on the valid frames only and scatter back into a zero-padded (B, T, C)."""
        B, T = mask.shape
        feats = cnn(x[mask])  # (N_valid, C)
        out = feats.new_zeros(B, T, feats.shape[-1])
        out[mask] = feats
        return out  # (B, T, C)

    def encode_frames(self, face: torch.Tensor, lip: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CNN features of every valid frame: (B,T,256), (B,T,128)."""
        return self._per_frame(self.face_cnn, face, mask), self._per_frame(self.lip_cnn, lip, mask)

    def sequence(self, face_feat: torch.Tensor, lip_feat: torch.Tensor, audio: torch.Tensor,
                 audio_idx: torch.Tensor, mask: torch.Tensor, audio_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything after the CNNs: GRUs, audio alignment, attention, classifier, pooling."""
        lengths = mask.sum(1)  # (B,)
        f = self.face_seq(face_feat, lengths)  # (B, T, 100)
        l = self.lip_seq(lip_feat, lengths)  # (B, T, 100)
        a_full = self.audio_seq(audio, audio_lengths)  # (B, Ta, 100) at the MFCC rate
        idx = audio_idx.clamp(min=0)[..., None].expand(-1, -1, a_full.shape[-1])  # (B, T, 100)
        a = torch.gather(a_full, 1, idx)  # (B, T, 100): the audio step at each frame's timestamp
        mods = {"face": f, "lip": l, "audio": a}
        if self.cfg.attention == "bi_modal":
            att = [bimodal_attention(mods[p], mods[q], mask) for p, q in self.PAIRS]  # 3 x (B, T, 200)
        elif self.cfg.attention == "self":
            att = [self_attention(m, mask) for m in (f, l, a)]  # 3 x (B, T, 100)
        else:
            att = []
        h = torch.cat(att + [f, l, a], dim=-1)  # (B, T, 900)
        frame_logits = self.classifier(self.head_drop(h)).float()  # (B, T, 2)
        w = mask.float()[..., None]  # (B, T, 1)
        video_logits = (frame_logits * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, 2)
        return {"frame_logits": frame_logits, "video_logits": video_logits}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A padded batch from `workbench.dataset.collate` -> frame and video logits."""
        mask = batch["mask"]
        face_feat, lip_feat = self.encode_frames(batch["face"], batch["lip"], mask)
        return self.sequence(face_feat, lip_feat, batch["audio"], batch["audio_idx"], mask, batch["audio_lengths"])

    @torch.no_grad()
    def encode_frames_chunked(self, face: torch.Tensor, lip: torch.Tensor, chunk: int,
                              device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """CNN features of one long video, `chunk` frames at a time, in frame order: (1,T,256), (1,T,128)."""
        # face: (T, H, W, 3) uint8, lip: (T, h, w, 3) uint8, kept on the CPU and streamed
        out_f, out_l = [], []
        for s in range(0, face.shape[0], chunk):
            f = face[s:s + chunk].to(device, non_blocking=True)
            l = lip[s:s + chunk].to(device, non_blocking=True)
            out_f.append(self.face_cnn(f).float())
            out_l.append(self.lip_cnn(l).float())
        return torch.cat(out_f)[None], torch.cat(out_l)[None]

    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def enable_mc_dropout(model: nn.Module, p: float) -> None:
    """Keep dropout layers sampling at inference (MC dropout) with rate p."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
            m.train()


def init_seed(seed: int) -> None:
    """Seed torch (CPU and CUDA) deterministically."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)

