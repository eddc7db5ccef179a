"""MMMS-BA: Multi-Modal Multi-Sequence Bi-Modal Attention for audio-visual deepfake detection.

    face (B,T,224,224,3) uint8 -> FrameCNN -> (B,T,256) -> Bi-GRU -> dense+tanh -> F (B,T,100)
    lip  (B,T,112,112,3) uint8 -> FrameCNN -> (B,T,128) -> Bi-GRU -> dense+tanh -> L (B,T,100)
    mfcc (B,Ta,40) -> standardised ->         Bi-GRU at the MFCC rate -> dense+tanh -> (B,Ta,100)
                                  -> gathered at each frame's timestamp -> A (B,T,100)
    bi-modal attention on (F,L), (A,F), (L,A), both ways -> 6 x (B,T,100)
    concat with F, L, A -> (B,T,900) -> linear -> per-frame logits (B,T,2)
    video logit = masked mean over frames of the per-frame logits (B,2)

The classifier is linear, so the video logit equals the classifier applied to the masked mean
of the frame features: the same head gives video and per-frame outputs. Which of the two the
loss sees is the `loss.on` setting.

MFCCs are standardised before the audio GRU (`model.audio_norm`): by default with per-coefficient
statistics of the training fold (buffers `audio_mean`, `audio_std`, set by the Trainer and saved in the
checkpoint, so inference applies exactly what training did); raw MFCCs (c0 near -500) would saturate
the GRU's gates at initialisation and make silence an extreme input.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from workbench.core.config import ModelConfig
from workbench.model.kernels import conv, conv_nhwc_gemm, conv_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ATTENTION_BLOCK = 1024  # query rows per block of the attention scores when T is longer (bounds T x T memory)
AUDIO_STD_FLOOR = 1e-3  # a constant MFCC coefficient is centred, not blown up


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
        self.fast = True  # fast kernels (same function): see forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, H, W, 3) uint8 -> the permuted view is already channels-last in memory
        if self.fast:
            return self._fast_forward(x)
        x = x.permute(0, 3, 1, 2).float()  # (N, 3, H, W)
        x = (x - self.mean) / self.std
        return self.net(x.contiguous(memory_format=torch.channels_last))  # (N, C)

    def _fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same function as `net`, computed faster.

        Normalisation in place on the channels-last input; the first conv as one GEMM on the CPU, the
        others' weight gradients as GEMMs (ConvGemmGrad); ReLU after max-pooling (they commute), so it touches a quarter of the elements; in eval mode
        each BatchNorm folded into its conv.
        """
        conv1, bn1, _, pool1, conv2, bn2, _, pool2, conv3, bn3, _, gap, flat = self.net
        fold = not self.training and all(b.running_var is not None and not b.training for b in (bn1, bn2, bn3))
        x = x.float() if x.dtype != torch.float32 else x.clone()  # (N, H, W, 3), our own copy
        x = x.sub_(self.mean.view(3)).div_(self.std.view(3))
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):  # the cast autocast gives the patches, done
            x = x.to(torch.get_autocast_dtype("cpu"))  # once on the image: pad and patches at half the bytes
        w, b = conv_weights(conv1, bn1 if fold else None)
        plain = conv1.groups == 1 and conv1.dilation == (1, 1) and conv1.padding_mode == "zeros"
        if x.device.type == "cpu" and plain and not isinstance(conv1.padding, str):
            y = conv_nhwc_gemm(x, w, b, conv1.stride, conv1.padding)
        else:
            y = F.conv2d(x.permute(0, 3, 1, 2), w, b, conv1.stride, conv1.padding, conv1.dilation, conv1.groups)
        y = torch.relu_(pool1(y if fold else bn1(y)))
        y = conv(y, conv2, *conv_weights(conv2, bn2 if fold else None))
        y = torch.relu_(pool2(y if fold else bn2(y)))
        y = conv(y, conv3, *conv_weights(conv3, bn3 if fold else None))
        y = torch.relu_(y if fold else bn3(y))
        return flat(gap(y))  # (N, C)


class SequenceEncoder(nn.Module):
    """One Bi-GRU over a padded sequence (packed, so padding never leaks), then dense + tanh."""

    def __init__(self, d_in: int, hidden: int, dense: int, dropout: float = 0.0):
        super().__init__()
        self.gru = nn.GRU(d_in, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * hidden, dense)
        self.fast = True  # skip packing when nothing is padded; on the CPU, no packing at all (see forward)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        lengths = lengths.cpu()
        if self.fast and x.device.type == "cpu":  # fp32: autocast would cast the weights at every step
            with torch.autocast("cpu", enabled=False):
                if bool((lengths == T).all()):  # no padding: packing would change nothing
                    out, _ = self.gru(x.float())
                else:
                    out = self._padded_bidirectional(x.float(), lengths)
        elif self.fast and bool((lengths == T).all()):
            out, _ = self.gru(x.float())
        else:  # packed sequences (cuDNN runs them natively)
            packed = pack_padded_sequence(x.float(), lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.gru(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, 2*hidden)
        return torch.tanh(self.proj(self.drop(out)))  # (B, T, dense)

    def _padded_bidirectional(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What the packed Bi-GRU computes, without packing (whose CPU backward costs O(T^2) memory traffic).

        Forward direction: padding only follows the real steps. Reverse direction: each sequence reversed
        within its own length, run forwards with the reverse weights, reversed back. Padded steps are zero.
        """
        B, T, _ = x.shape
        g = self.gru
        t = torch.arange(T, device=x.device)[None]  # (1, T)
        n = lengths.to(x.device)[:, None]  # (B, 1)
        valid = t < n  # (B, T)
        rev = torch.where(valid, n - 1 - t, t)[..., None]  # (B, T, 1): an involution
        h0 = x.new_zeros(1, B, g.hidden_size)
        names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if g.bias else [])
        w_fwd = [getattr(g, k) for k in names]
        w_rev = [getattr(g, f"{k}_reverse") for k in names]
        fwd, _ = torch.gru(x, h0, w_fwd, g.bias, 1, 0.0, self.training, False, True)
        bwd, _ = torch.gru(x.gather(1, rev.expand_as(x)), h0, w_rev, g.bias, 1, 0.0, self.training, False, True)
        bwd = bwd.gather(1, rev.expand_as(bwd))
        return torch.cat([fwd, bwd], dim=-1) * valid[..., None]  # (B, T, 2*hidden)


def _attend(q: torch.Tensor, kv: torch.Tensor, key_pad: torch.Tensor, block: int, hook=None) -> torch.Tensor:
    """A = softmax(Q KVᵀ) KV ⊙ Q over valid keys, `block` query rows at a time when 0 < block < T (same result).

    `hook(first_row, weights)`, when given, sees each block's (B, rows, T) attention weights (for analysis).
    """
    # q, kv: (B, T, D); key_pad: (B, 1, T) True on padded frames
    T = q.shape[1]
    step = block if 0 < block < T else T  # blocks bound the (step, T) scores held at once
    kvt = kv.transpose(1, 2)  # (B, D, T)
    out = []
    for s in range(0, T, step):
        qs = q[:, s:s + step]  # (B, step, D)
        n = torch.softmax((qs @ kvt).float().masked_fill(key_pad, float("-inf")), dim=-1).to(kv.dtype)  # (B, step, T)
        if hook is not None:
            hook(s, n)
        out.append((n @ kv) * qs)  # O = softmax(M) KV, A = O ⊙ Q
    return torch.cat(out, 1)  # (B, T, D)


def bimodal_attention(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, block: int = 0,
                      hooks: tuple = (None, None)) -> torch.Tensor:
    """Parameter-free bi-modal attention (Ghosal et al. 2018) over valid frames, both ways.

    With `block` > 0 and T > block the (T, T) scores are computed `block` query rows at a time (same result).
    `hooks` (x attending to y, y attending to x) are passed to `_attend`.
    """
    # x, y: (B, T, D); mask: (B, T) True on valid frames
    key_pad = ~mask[:, None, :]  # (B, 1, T)
    return torch.cat([_attend(x, y, key_pad, block, hooks[0]), _attend(y, x, key_pad, block, hooks[1])], dim=-1)  # (B, T, 2D)


def self_attention(x: torch.Tensor, mask: torch.Tensor, block: int = 0) -> torch.Tensor:
    """The same parameter-free attention of a modality with itself (the `self` ablation)."""
    return _attend(x, x, ~mask[:, None, :], block)  # (B, T, D)


class MMMSBA(nn.Module):
    """The tri-modal detector: per-frame logits (B,T,2) and a pooled video logit (B,2)."""

    PAIRS = (("face", "lip"), ("audio", "face"), ("lip", "audio"))

    def __init__(self, cfg: ModelConfig, n_mfcc: int = 40):
        super().__init__()
        self.cfg = cfg
        self.face_cnn = FrameCNN(cfg.face_channels)
        self.lip_cnn = FrameCNN(cfg.lip_channels)
        self.face_seq = SequenceEncoder(self.face_cnn.out_dim, cfg.gru_hidden, cfg.dense, cfg.dropout)
        self.lip_seq = SequenceEncoder(self.lip_cnn.out_dim, cfg.gru_hidden, cfg.dense, cfg.dropout)
        self.audio_seq = SequenceEncoder(n_mfcc, cfg.gru_hidden, cfg.dense, cfg.dropout)
        self.register_buffer("audio_mean", torch.zeros(n_mfcc))  # training-fold MFCC statistics (audio_norm=train)
        self.register_buffer("audio_std", torch.ones(n_mfcc))
        self.register_load_state_dict_pre_hook(_identity_audio_stats)
        n_att = {"bi_modal": 2 * len(self.PAIRS), "self": 3, "none": 0}[cfg.attention]
        self.head_drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear((n_att + 3) * cfg.dense, 2)
        self.attention_block = ATTENTION_BLOCK
        self.attention_hook = None  # fn("face->lip", first_row, weights (B, rows, T)): the bi-modal maps (analysis)

    def use_fast_kernels(self, enabled: bool = True) -> "MMMSBA":
        """Switch the fast kernels (default) on or off; off gives the reference computation. Same function."""
        for m in (self.face_cnn, self.lip_cnn, self.face_seq, self.lip_seq, self.audio_seq):
            m.fast = enabled
        self.attention_block = ATTENTION_BLOCK if enabled else 0
        return self

    def set_audio_stats(self, mean, std) -> None:
        """Per-coefficient MFCC mean and standard deviation (n_mfcc,) of the training fold (audio_norm=train)."""
        self.audio_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.audio_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(AUDIO_STD_FLOOR))

    # ------------------------------------------------------------------ pieces
    def normalise_audio(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """MFCC (B, Ta, n_mfcc) standardised per `model.audio_norm`; padded steps stay zero."""
        if self.cfg.audio_norm == "none":
            return audio
        valid = (torch.arange(audio.shape[1], device=audio.device)[None] < lengths.to(audio.device)[:, None])[..., None]
        if self.cfg.audio_norm == "train":
            return ((audio - self.audio_mean) / self.audio_std) * valid  # (B, Ta, n_mfcc)
        n = valid.sum(1, keepdim=True).clamp(min=1)  # per-utterance CMVN over the clip's valid steps
        mean = (audio * valid).sum(1, keepdim=True) / n
        std = (((audio - mean) * valid).pow(2).sum(1, keepdim=True) / n).sqrt().clamp_min(AUDIO_STD_FLOOR)
        return ((audio - mean) / std) * valid

    @staticmethod
    def _per_frame(cnn: FrameCNN, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run a CNN on the valid frames only and scatter back into a zero-padded (B, T, C)."""
        B, T = mask.shape
        if cnn.fast and bool(mask.all()):  # nothing padded: no gather/scatter copies
            return cnn(x.flatten(0, 1)).view(B, T, -1)
        feats = cnn(x[mask])  # (N_valid, C)
        out = feats.new_zeros(B, T, feats.shape[-1])
        out[mask] = feats
        return out  # (B, T, C)

    def _hooks(self, p: str, q: str) -> tuple:
        """The attention hook named for each direction of a pair ("p->q": p's frames attend to q's), or none."""
        h = self.attention_hook
        return (None, None) if h is None else (partial(h, f"{p}->{q}"), partial(h, f"{q}->{p}"))

    def encode_frames(self, face: torch.Tensor, lip: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CNN features of every valid frame: (B,T,256), (B,T,128)."""
        return self._per_frame(self.face_cnn, face, mask), self._per_frame(self.lip_cnn, lip, mask)

    def sequence(self, face_feat: torch.Tensor, lip_feat: torch.Tensor, audio: torch.Tensor,
                 audio_idx: torch.Tensor, mask: torch.Tensor, audio_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything after the CNNs: the three GRUs, then `fuse`."""
        lengths = mask.sum(1)  # (B,)
        f = self.face_seq(face_feat, lengths)  # (B, T, 100)
        l = self.lip_seq(lip_feat, lengths)  # (B, T, 100)
        a_full = self.audio_seq(self.normalise_audio(audio, audio_lengths), audio_lengths)  # (B, Ta, 100) at the MFCC rate
        return self.fuse(f, l, a_full, audio_idx, mask)

    def fuse(self, f: torch.Tensor, l: torch.Tensor, a_full: torch.Tensor, audio_idx: torch.Tensor,
             mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The GRUs' outputs -> audio at each frame's timestamp, attention, classifier, pooling."""
        idx = audio_idx.clamp(min=0)[..., None].expand(-1, -1, a_full.shape[-1])  # (B, T, 100)
        a = torch.gather(a_full, 1, idx)  # (B, T, 100): the audio step at each frame's timestamp
        mods = {"face": f, "lip": l, "audio": a}
        if self.cfg.attention == "bi_modal":
            att = [bimodal_attention(mods[p], mods[q], mask, self.attention_block, self._hooks(p, q))
                   for p, q in self.PAIRS]  # 3 x (B, T, 200)
        elif self.cfg.attention == "self":
            att = [self_attention(m, mask, self.attention_block) for m in (f, l, a)]  # 3 x (B, T, 100)
        else:
            att = []
        h = torch.cat(att + [f, l, a], dim=-1)  # (B, T, 900)
        frame_logits = self.classifier(self.head_drop(h)).float()  # (B, T, 2)
        w = mask.float()[..., None]  # (B, T, 1)
        video_logits = (frame_logits * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, 2)
        return {"frame_logits": frame_logits, "video_logits": video_logits}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A padded batch from `workbench.data.dataset.collate` -> frame and video logits."""
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


def _identity_audio_stats(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints from before audio normalisation load with identity statistics (what they were trained with)."""
    for name, fill in (("audio_mean", torch.zeros_like), ("audio_std", torch.ones_like)):
        if prefix + name not in state_dict:
            state_dict[prefix + name] = fill(getattr(module, name))


def enable_mc_dropout(model: nn.Module, p: float) -> None:
    """Keep dropout layers sampling at inference (MC dropout) with rate p."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
            m.train()


