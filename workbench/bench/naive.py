"""The naive reference path of `workbench bench`: what the original code did, kept to measure against.

Compressed npz of float32 frames decompressed on every step, no loader workers, fp32, contiguous (NCHW)
convolutions, packed GRUs, the full T x T attention, long videos held as float32 in memory.

Imports torch at import time: import this module only once the runtime environment is set (a worker
process, or after `launch.apply_fast_env`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from workbench.core.config import Config
from workbench.data.dataset import audio_for_frames, clip_from_record, collate, sample_indices
from workbench.data.records import VideoRecord
from workbench.model.mmmsba import MMMSBA


def naive_collate(items: list[dict]) -> dict:
    """`collate` for float32 frames (the original kept frames as float32 all the way)."""
    shells = [{**it, "face": it["face"][:, :1, :1].to(torch.uint8), "lip": it["lip"][:, :1, :1].to(torch.uint8)}
              for it in items]
    batch = collate(shells)
    B, T = batch["mask"].shape
    for key in ("face", "lip"):
        x = torch.zeros((B, T) + tuple(items[0][key].shape[1:]), dtype=torch.float32)
        for b, it in enumerate(items):
            x[b, :it[key].shape[0]] = it[key]
        batch[key] = x
    return batch


class NaiveClips:
    """Training clips the original way: every item decompresses its whole float32 npz again."""

    def __init__(self, rows, root: str | Path, cfg, train: bool, seed: int = 0):
        self.rows, self.root, self.cfg, self.train, self.seed, self.epoch = list(rows), Path(root), cfg, train, seed, 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        with np.load(self.root / self.rows[i].path) as z:
            frames, lip, audio = z["frames"], z["lip"], z["audio"]
            ts, label, fps = z["timestamps"], int(z["label"]), float(z["fps"])
        rec = VideoRecord(frames=frames, lip=lip, audio=audio, label=label, video_id=self.rows[i].video_id,
                          group="", fps=fps, timestamps=ts, face_found=np.ones(len(frames), bool),
                          duration=len(frames) / fps)
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        item = clip_from_record(rec, sample_indices(rec.n_frames, fps, self.cfg, self.train, rng))
        item["index"] = torch.tensor(i)
        return item


def naive_cnn(cnn, x):
    """The original CNN step: float32 [0, 1] frames (N, H, W, 3) -> contiguous NCHW -> normalise -> conv stack."""
    x = x.permute(0, 3, 1, 2).contiguous()
    return cnn.net((x - cnn.mean / 255.0) / (cnn.std / 255.0))


def naive_forward(model, batch: dict) -> dict:
    """MMMS-BA on a float32 batch the original way (call `model.use_fast_kernels(False)` first)."""
    mask = batch["mask"]
    B, T = mask.shape
    feats = []
    for cnn, key in ((model.face_cnn, "face"), (model.lip_cnn, "lip")):
        f = naive_cnn(cnn, batch[key][mask])
        out = f.new_zeros(B, T, f.shape[-1])
        out[mask] = f
        feats.append(out)
    return model.sequence(feats[0], feats[1], batch["audio"], batch["audio_idx"], mask, batch["audio_lengths"])


def naive_predict(checkpoint: str | Path, npz: str | Path, out_csv: str | Path, chunk: int = 32,
                  device: str = "cpu") -> pd.DataFrame:
    """Per-frame P(Fake) of one video the original way: the whole video decompressed as float32, fp32 NCHW CNN."""
    dev = torch.device(device)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = Config.from_dict(ckpt["config"])
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc)
    model.load_state_dict(ckpt["model"])
    model = model.use_fast_kernels(False).to(dev).eval()
    with np.load(npz) as z:
        frames, lip = z["frames"], z["lip"]  # (T, H, W, 3) float32: the whole video in memory
        audio, ts, fps = z["audio"], z["timestamps"], float(z["fps"])
    T = len(frames)
    rec = VideoRecord(frames=frames, lip=lip, audio=audio, label=0, video_id="", group="", fps=fps, timestamps=ts,
                      face_found=np.ones(T, bool), duration=T / fps)
    idx = np.arange(T)
    with torch.no_grad():
        face_feat = torch.cat([naive_cnn(model.face_cnn, torch.from_numpy(frames[s:s + chunk]).to(dev))
                               for s in range(0, T, chunk)])[None]
        lip_feat = torch.cat([naive_cnn(model.lip_cnn, torch.from_numpy(lip[s:s + chunk]).to(dev))
                              for s in range(0, T, chunk)])[None]
        a, a_idx = audio_for_frames(rec, idx)
        audio_t = torch.from_numpy(a)[None].to(dev)
        out = model.sequence(face_feat, lip_feat, audio_t, torch.from_numpy(a_idx)[None].to(dev),
                             torch.ones(1, T, dtype=torch.bool, device=dev), torch.tensor([audio_t.shape[1]]))
        p = torch.softmax(out["frame_logits"][0].float(), -1)[:, 1].cpu().numpy()
    df = pd.DataFrame({"frame": idx, "timestamp": ts, "p_fake": p, "face_found": rec.face_found})
    df.to_csv(out_csv, index=False)
    return df

