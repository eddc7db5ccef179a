"""Clips from npz records: explicit frame sampling, audio aligned by timestamps, padded batches.

Sampling rules (recorded in the config, `data.sampling`):
    uniform  `max_frames` frames spread over the whole video (the original study). Training
             draws one random frame from each of `max_frames` equal segments; evaluation takes
             the segment centres. Videos shorter than `max_frames` give all their frames.
    fps      a contiguous window of `max_frames` frames at `sample_fps` (every k-th frame of the
             video). Training draws a random start; evaluation takes the centred window.
Evaluation with `data.eval_clip = full` uses every frame of the video instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.config import Config
from workbench.records import BadRecordError, IndexRow, StoredFrames, VideoRecord, load_record, resolve


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 frames to (T, size, size, 3) (no-op when already that size)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (size, size), interpolation=interp)
    return out


def load_for_model(path: str | Path, cfg: Config, lazy: bool = False) -> VideoRecord:
    """Load a record and bring its crops to the configured face/lip sizes.

    With `lazy`, crops already at those sizes in an uncompressed record stay on disk (StoredFrames).
    """
    return fit_to_config(load_record(path, lazy=lazy), cfg)


def fit_to_config(rec: VideoRecord, cfg: Config) -> VideoRecord:
    """A loaded record with its crops at the configured face/lip sizes; BadRecordError on an MFCC-size mismatch."""
    for key, size in (("frames", cfg.data.face_size), ("lip", cfg.data.lip_size)):
        x = getattr(rec, key)
        if isinstance(x, StoredFrames) and x.shape[1:3] != (size, size):
            x = np.asarray(x)
        setattr(rec, key, resize_frames(x, size))
    if rec.audio.shape[1] != cfg.audio.n_mfcc:
        raise BadRecordError(rec.path, f"'audio' has {rec.audio.shape[1]} MFCC coefficients, config expects {cfg.audio.n_mfcc}")
    return rec


def sample_indices(n: int, fps: float, cfg: Config, train: bool, rng: np.random.Generator | None,
                   full: bool = False) -> np.ndarray:
    """Frame indices of one clip under the configured sampling rule."""
    k = cfg.data.max_frames
    if full:
        return np.arange(n)
    if cfg.data.sampling == "uniform":
        if n <= k:
            return np.arange(n)
        edges = np.linspace(0, n, k + 1)
        if train and rng is not None:
            idx = np.floor(edges[:-1] + rng.random(k) * (edges[1:] - edges[:-1]))
        else:
            idx = np.floor((edges[:-1] + edges[1:]) / 2)
        return np.clip(idx.astype(np.int64), 0, n - 1)
    if cfg.data.sampling == "fps":
        step = max(1, int(round(fps / cfg.data.sample_fps)))
        span = (k - 1) * step + 1
        if n <= span:
            return np.arange(0, n, step)
        start = int(rng.integers(0, n - span + 1)) if (train and rng is not None) else (n - span) // 2
        return start + np.arange(k) * step
    raise ValueError(f"data.sampling must be 'uniform' or 'fps', got {cfg.data.sampling!r}")


def audio_for_frames(rec: VideoRecord, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The audio span (Ta, n_mfcc) that frames `idx` cover, and each frame's index into it, aligned by timestamps."""
    ts = rec.timestamps[idx]
    rate = rec.audio_rate
    n_audio = rec.audio.shape[0]
    a0 = int(np.clip(np.floor(ts[0] * rate), 0, n_audio - 1))
    a1 = int(np.clip(np.ceil((ts[-1] + 1.0 / rec.fps) * rate), a0 + 1, n_audio))
    audio_idx = np.clip(np.rint(ts * rate).astype(np.int64) - a0, 0, a1 - a0 - 1)
    return np.ascontiguousarray(rec.audio[a0:a1]), audio_idx


def clip_from_record(rec: VideoRecord, idx: np.ndarray) -> dict[str, torch.Tensor]:
    """Cut one clip: the chosen frames and the audio span they cover, aligned by timestamps."""
    ts = rec.timestamps[idx]
    audio, audio_idx = audio_for_frames(rec, idx)
    return {
        "face": torch.from_numpy(np.ascontiguousarray(rec.frames[idx])),  # (T, H, W, 3) uint8
        "lip": torch.from_numpy(np.ascontiguousarray(rec.lip[idx])),  # (T, h, w, 3) uint8
        "audio": torch.from_numpy(audio),  # (Ta, 40)
        "audio_idx": torch.from_numpy(audio_idx),  # (T,) index into the clip's audio
        "timestamps": torch.from_numpy(ts.astype(np.float64)),
        "frame_idx": torch.from_numpy(idx.astype(np.int64)),
        "face_found": torch.from_numpy(rec.face_found[idx].astype(bool)),
        "frame_label": torch.from_numpy(rec.frame_labels()[idx]),  # (T,) 1 on manipulated frames
        "label": torch.tensor(rec.label, dtype=torch.long),
    }


class ClipDataset(Dataset):
    """Clips of the videos listed in `rows`; records are decoded once and cached as uint8."""

    def __init__(self, rows: list[IndexRow], root: str | Path, cfg: Config, train: bool,
                 full: bool = False, cache: dict[str, VideoRecord] | None = None, seed: int = 0):
        self.rows = list(rows)
        self.root = Path(root)
        self.cfg = cfg
        self.train = train
        self.full = full
        self.seed = seed
        self.epoch = 0
        self.cache = cache if cache is not None else {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.rows]

    def record(self, i: int) -> VideoRecord:
        """The i-th record (from the cache when enabled)."""
        row = self.rows[i]
        rec = self.cache.get(row.path)
        if rec is None:
            rec = load_for_model(resolve(self.root, row.path), self.cfg)
            if self.cfg.data.cache:
                self.cache[row.path] = rec
        return rec

    def preload(self) -> None:
        """Decode every record into the cache now, e.g. before DataLoader workers fork (they then share it)."""
        if self.cfg.data.cache:
            for i in range(len(self)):
                self.record(i)

    def set_epoch(self, epoch: int) -> None:
        """Make the random clip choice a function of (seed, epoch, item)."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.record(i)
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        idx = sample_indices(rec.n_frames, rec.fps, self.cfg, self.train, rng, self.full)
        item = clip_from_record(rec, idx)
        item["index"] = torch.tensor(i)
        return item


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad clips to the longest in the batch; `mask` marks real frames."""
    B = len(items)
    T = max(it["face"].shape[0] for it in items)
    Ta = max(it["audio"].shape[0] for it in items)
    f0, l0, a0 = items[0]["face"], items[0]["lip"], items[0]["audio"]
    batch = {
        "face": torch.zeros((B, T) + tuple(f0.shape[1:]), dtype=torch.uint8),
        "lip": torch.zeros((B, T) + tuple(l0.shape[1:]), dtype=torch.uint8),
        "audio": torch.zeros((B, Ta, a0.shape[1]), dtype=torch.float32),
        "audio_idx": torch.zeros((B, T), dtype=torch.long),
        "timestamps": torch.zeros((B, T), dtype=torch.float64),
        "frame_idx": torch.full((B, T), -1, dtype=torch.long),
        "face_found": torch.zeros((B, T), dtype=torch.bool),
        "frame_label": torch.zeros((B, T), dtype=torch.long),  # 0 on padding: read it with `mask`
        "mask": torch.zeros((B, T), dtype=torch.bool),
        "audio_lengths": torch.zeros(B, dtype=torch.long),
        "label": torch.stack([it["label"] for it in items]),
        "index": torch.stack([it["index"] for it in items]),
    }
    for b, it in enumerate(items):
        t, ta = it["face"].shape[0], it["audio"].shape[0]
        batch["face"][b, :t] = it["face"]
        batch["lip"][b, :t] = it["lip"]
        batch["audio"][b, :ta] = it["audio"]
        batch["audio_idx"][b, :t] = it["audio_idx"]
        batch["timestamps"][b, :t] = it["timestamps"]
        batch["frame_idx"][b, :t] = it["frame_idx"]
        batch["face_found"][b, :t] = it["face_found"]
        batch["frame_label"][b, :t] = it["frame_label"]
        batch["mask"][b, :t] = True
        batch["audio_lengths"][b] = ta
    return batch


class FrameStream:
    """Frames `idx` of a (T, H, W, 3) uint8 source (array or StoredFrames), cut into uint8 tensors on demand.

    Slicing gives a (n, H, W, 3) tensor (pinned with `pin`, for asynchronous copies to a GPU); a run of
    consecutive in-memory frames is a view, not a copy.
    """

    def __init__(self, frames, idx: np.ndarray, pin: bool = False):
        self.frames, self.idx, self.pin = frames, np.asarray(idx, dtype=np.int64), pin
        self.shape = (len(self.idx),) + tuple(frames.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, sl: slice) -> torch.Tensor:
        sub = self.idx[sl]
        if isinstance(self.frames, np.ndarray) and sub.size and sub[-1] - sub[0] == sub.size - 1 \
                and np.all(np.diff(sub) == 1):
            arr = self.frames[sub[0]:sub[-1] + 1]
        else:
            arr = self.frames[sub]
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return t.pin_memory() if self.pin else t


MODEL_KEYS = ("face", "lip", "audio", "audio_idx", "mask", "audio_lengths")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move the tensors the model needs (and the video and frame labels) to the device."""
    nb = device.type == "cuda"
    return {k: (v.to(device, non_blocking=nb) if k in MODEL_KEYS or k in ("label", "frame_label") else v)
            for k, v in batch.items()}


@dataclass
class DatasetSplit:
    """Train and test rows of a dataset folder, plus the files that failed validation."""

    root: Path
    rows: list[IndexRow]
    test_rows: list[IndexRow]
    failures: list[tuple[str, str]]
