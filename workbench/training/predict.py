"""Per-frame P(Fake) for full-length videos: CNN features in chunks, then one pass of the sequence model.

The frames fed to the sequence model are in the video's own order, at the density asked for:
every frame (`fps=None`) or every k-th frame to match a training density. A list of checkpoints
gives a fold ensemble (mean and spread); `mc_samples` adds MC-dropout samples per model.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench.core.config import Config
from workbench.core.runtime import amp_dtype, autocast, resolve_device
from workbench.data.dataset import FrameStream, audio_for_frames, load_for_model
from workbench.data.records import IndexRow, VideoRecord
from workbench.data.storage import BadRecordError
from workbench.model.mmmsba import MMMSBA, enable_mc_dropout
from workbench.training.trainer import load_model


def density_indices(rec: VideoRecord, fps: float | None) -> np.ndarray:
    """Indices of the frames kept at a frame density of `fps` (None: every frame)."""
    if fps is None or fps >= rec.fps:
        return np.arange(rec.n_frames)
    step = rec.fps / fps
    return np.unique(np.floor(np.arange(0, rec.n_frames, step)).astype(np.int64))


def training_density(cfg: Config, rows: list[IndexRow]) -> float:
    """Frames per second the model saw in training: max_frames over the median clip length, or the fps window's rate."""
    if cfg.data.sampling == "fps":
        return float(cfg.data.sample_fps)
    durations = np.array([r.duration for r in rows if r.duration > 0])
    return float(cfg.data.max_frames / np.median(durations)) if durations.size else float(cfg.data.max_frames)


@torch.no_grad()
def frame_logits(model: MMMSBA, rec: VideoRecord, idx: np.ndarray, *, chunk: int, device: torch.device,
                 dtype: torch.dtype | None, mc_samples: int = 0, mc_p: float = 0.1, mc_seed: int = 0) -> np.ndarray:
    """Per-frame logits (S, T, 2) of one model on the frames `idx` (S = 1, or MC-dropout samples, seeded)."""
    model.eval()
    audio_np, audio_idx_np = audio_for_frames(rec, idx)  # the same frame/audio alignment as training
    pin = device.type == "cuda"  # frames are read chunk by chunk (from memory or the file), never all at once
    face, lip = FrameStream(rec.frames, idx, pin), FrameStream(rec.lip, idx, pin)
    with autocast(device, dtype):  # CNN features streamed in chunks: (1,T,256), (1,T,128)
        face_feat, lip_feat = model.encode_frames_chunked(face, lip, chunk, device)
    audio = torch.from_numpy(audio_np)[None].to(device)  # (1, Ta, 40)
    audio_idx = torch.from_numpy(audio_idx_np)[None].to(device)  # (1, T)
    mask = torch.ones(1, len(idx), dtype=torch.bool, device=device)
    alen = torch.tensor([audio.shape[1]])
    outs = []
    rates = {m: m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # MC-dropout masks from a fixed seed, the caller's RNG untouched
        torch.manual_seed(mc_seed)
        if mc_samples > 0:
            enable_mc_dropout(model, mc_p)
        for _ in range(max(1, mc_samples)):
            with autocast(device, dtype):
                out = model.sequence(face_feat, lip_feat, audio, audio_idx, mask, alen)
            outs.append(out["frame_logits"][0].float().cpu().numpy())
    for m, p in rates.items():  # back to the trained dropout rates, eval mode
        m.p = p
    model.eval()
    return np.stack(outs)  # (S, T, 2)


def softmax_fake(logits: np.ndarray) -> np.ndarray:
    """P(Fake) from two-class logits along the last axis."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e[..., 1] / e.sum(-1)


def mc_rate(cfg: Config) -> float:
    """The MC-dropout rate of a trained model: `model.mc_dropout`, else its training `model.dropout` (0: no MC samples)."""
    return float(cfg.model.mc_dropout or cfg.model.dropout)


def predict_record(models: list[MMMSBA], rec: VideoRecord, *, fps: float | None = None, chunk: int = 256,
                   device: str | torch.device = "cpu", amp: bool = True, mc_samples: int = 0,
                   mc_p: float = 0.0) -> pd.DataFrame:
    """frame, timestamp, p_fake, face_found, frame_label (+ p_fake_std and per-model columns for an ensemble).

    MC-dropout samples (`mc_samples` per model at rate `mc_p`, see `mc_rate`) are drawn only when mc_p > 0.
    """
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    idx = density_indices(rec, fps)
    mc_samples = mc_samples if mc_p > 0 else 0
    per_model = []
    for m in models:
        logits = frame_logits(m, rec, idx, chunk=chunk, device=device, dtype=dtype, mc_samples=mc_samples, mc_p=mc_p)
        per_model.append(softmax_fake(logits))  # (S, T)
    samples = np.concatenate(per_model)  # (models * S, T)
    df = pd.DataFrame({"frame": idx, "timestamp": rec.timestamps[idx], "p_fake": samples.mean(0),
                       "face_found": rec.face_found[idx], "frame_label": rec.frame_labels()[idx]})
    if samples.shape[0] > 1:
        df["p_fake_std"] = samples.std(0)
    if len(models) > 1:
        for k, p in enumerate(per_model):
            df[f"p_fake_fold{k}"] = p.mean(0)
    return df


def video_summary(df: pd.DataFrame, rec: VideoRecord, threshold: float = 0.5) -> dict:
    """One row per video: the pooled verdict and the frame statistics behind it."""
    p = df["p_fake"].to_numpy()
    return {"video_id": rec.video_id, "label": rec.label, "n_frames": len(p), "duration": rec.duration,
            "p_fake_mean": float(p.mean()), "p_fake_min": float(p.min()), "p_fake_max": float(p.max()),
            "frames_above": int((p > threshold).sum()), "share_above": float((p > threshold).mean()),
            "majority_fake": bool((p > threshold).mean() > 0.5), "face_rate": float(df["face_found"].mean())}


def load_ensemble(checkpoints: list[str | Path], device: str | torch.device) -> tuple[list[MMMSBA], Config]:
    """The models of a list of checkpoints on `device` and the first one's config (the others must match its model)."""
    if not checkpoints:
        raise ValueError("predict needs at least one checkpoint (.pth)")
    models, cfg = [], None
    for c in checkpoints:
        m, saved = load_model(c, cfg, device)
        models.append(m)
        cfg = cfg or saved
    return models, cfg


def predict_files(checkpoints: list[str | Path], videos: list[str | Path], out_dir: str | Path, *,
                  fps: float | None = None, chunk: int | None = None, device: str = "auto", mc_samples: int = 0,
                  progress: bool = True, suffix: str = "") -> pd.DataFrame:
    """Write `<video_id>_pfake<suffix>.csv` per video and `summary<suffix>.csv`; bad files are reported, not fatal."""
    dev = resolve_device(device)
    models, cfg = load_ensemble(checkpoints, dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for v in tqdm(videos, desc="predict", disable=not progress):
        try:
            rec = load_for_model(v, cfg, lazy=True)  # crops stay on disk and are streamed
        except BadRecordError as e:
            failures.append((str(v), e.reason))
            print(f"skipped {v}: {e.reason}", file=sys.stderr)
            continue
        df = predict_record(models, rec, fps=fps, chunk=chunk or cfg.train.chunk_size, device=dev, amp=cfg.train.amp,
                            mc_samples=mc_samples, mc_p=mc_rate(cfg))
        df.to_csv(out / f"{rec.video_id}_pfake{suffix}.csv", index=False)
        rows.append(video_summary(df, rec))
    summary = pd.DataFrame(rows)
    summary.to_csv(out / f"summary{suffix}.csv", index=False)
    if failures:
        pd.DataFrame(failures, columns=["file", "reason"]).to_csv(out / f"failures{suffix}.csv", index=False)
    return summary


