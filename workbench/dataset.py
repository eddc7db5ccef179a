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

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.config import Config
from workbench.records import REQUIRED_KEYS, BadRecordError, IndexRow, VideoRecord, _scalar, load_record, resolve


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 frames to (T, size, size, 3) (no-op when already that size)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (size, size), interpolation=interp)
    return out


class StoredFrames:
    """(T, H, W, C) uint8 crops of an uncompressed npz member, read from the file on demand.

    Indexing with an int, a slice or an index array reads just those frames (contiguous runs in one
    read) and returns an in-memory array, as numpy indexing would; the video is never all in memory.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, path: str | Path, offset: int, shape: tuple[int, ...]):
        self.path = str(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self._frame_bytes = int(np.prod(self.shape[1:]))
        self._file = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: the file is reopened there
        return {**self.__dict__, "_file": None}

    def __del__(self):
        if getattr(self, "_file", None) is not None:
            self._file.close()

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames start..stop-1 (into `out` when given, a C-contiguous uint8 array of the right shape)."""
        n = max(0, stop - start)
        if out is None:
            out = np.empty((n,) + self.shape[1:], dtype=np.uint8)
        if n == 0:
            return out
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)
        view = memoryview(out).cast("B")
        self._file.seek(self.offset + start * self._frame_bytes)
        done = 0
        while done < view.nbytes:
            got = self._file.readinto(view[done:])
            if not got:
                raise BadRecordError(self.path, f"file ends inside frame data (frames {start}..{stop - 1})")
            done += got
        return out

    def __getitem__(self, key) -> np.ndarray:
        T = self.shape[0]
        if isinstance(key, (int, np.integer)):
            k = int(key) + (T if key < 0 else 0)
            if not 0 <= k < T:
                raise IndexError(f"frame {key} out of range for {T} frames")
            return self.read(k, k + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(T)
            if step == 1:
                return self.read(start, max(start, stop))
            key = np.arange(start, stop, step)
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).ravel()
        idx = np.where(idx < 0, idx + T, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= T):
            raise IndexError(f"frame index out of range for {T} frames")
        out = np.empty((idx.size,) + self.shape[1:], dtype=np.uint8)
        if idx.size:
            cuts = np.flatnonzero(np.diff(idx) != 1) + 1  # contiguous runs: one read each
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, idx.size]):
                self.read(int(idx[a]), int(idx[a]) + int(b - a), out=out[a:b])
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self.read(0, self.shape[0])
        return arr if dtype is None else arr.astype(dtype)


def _stored_member(path: Path, key: str) -> tuple[int, tuple[int, ...]] | None:
    """(byte offset of the data, shape) of an uncompressed C-order uint8 member `key`.npy, else None."""
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(f"{key}.npy")
        except KeyError:
            return None
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        if fortran or dtype != np.uint8:
            return None
        return f.tell(), tuple(shape)


def load_record_lazy(path: str | Path) -> VideoRecord:
    """`load_record`, except that the crops of an uncompressed uint8 record (what `save_record` writes)
    stay on disk as StoredFrames. Any other record (compressed, float frames, missing metadata,
    anything invalid) goes through `load_record` unchanged, with its checks and errors."""
    path = Path(path)
    meta = ("video_id", "group", "fps", "timestamps", "face_found", "duration", "audio_rate")
    try:
        members = {k: _stored_member(path, k) for k in ("frames", "lip")}
        if any(m is None or len(m[1]) != 4 or m[1][-1] != 3 for m in members.values()):
            return load_record(path)
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not set(REQUIRED_KEYS + meta) <= keys:
                return load_record(path)
            audio = np.asarray(z["audio"])
            ts = np.asarray(z["timestamps"], dtype=np.float64)
            face_found = np.asarray(z["face_found"], dtype=bool)
            label = int(_scalar(z, "label"))
            info = {k: _scalar(z, k) for k in ("video_id", "group", "fps", "duration", "audio_rate")}
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError):
        return load_record(path)  # raises BadRecordError with the reason
    (f_off, f_shape), (l_off, l_shape) = members["frames"], members["lip"]
    T = f_shape[0]
    if not (T > 0 and l_shape[0] == T and audio.ndim == 2 and audio.shape[0] > 0
            and np.issubdtype(audio.dtype, np.number) and np.isfinite(audio).all() and label in (0, 1)
            and ts.shape == (T,) and np.isfinite(ts).all() and face_found.shape == (T,)):
        return load_record(path)
    return VideoRecord(frames=StoredFrames(path, f_off, f_shape), lip=StoredFrames(path, l_off, l_shape),
                       audio=audio.astype(np.float32, copy=False), label=label, video_id=str(info["video_id"]),
                       group=str(info["group"]), fps=float(info["fps"]), timestamps=ts, face_found=face_found,
                       duration=float(info["duration"]), audio_rate=float(info["audio_rate"]), path=str(path),
                       extras={k: k for k in keys - set(REQUIRED_KEYS) - set(meta)})


def load_for_model(path: str | Path, cfg: Config, lazy: bool = False) -> VideoRecord:
    """Load a record and bring its crops to the configured face/lip sizes.

    With `lazy`, crops already at those sizes in an uncompressed record stay on disk (StoredFrames).
    """
    rec = load_record_lazy(path) if lazy else load_record(path)
    for key, size in (("frames", cfg.data.face_size), ("lip", cfg.data.lip_size)):
        x = getattr(rec, key)
        if isinstance(x, StoredFrames) and x.shape[1:3] != (size, size):
            x = np.asarray(x)
        setattr(rec, key, resize_frames(x, size))
    if rec.audio.shape[1] != cfg.audio.n_mfcc:
        raise BadRecordError(path, f"'audio' has {rec.audio.shape[1]} MFCC coefficients, config expects {cfg.audio.n_mfcc}")
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
    """Move the tensors the model needs (and the labels) to the device."""
    nb = device.type == "cuda"
    return {k: (v.to(device, non_blocking=nb) if k in MODEL_KEYS or k == "label" else v) for k, v in batch.items()}


@dataclass
class DatasetSplit:
    """Train and test rows of a dataset folder, plus the files that failed validation."""

    root: Path
    rows: list[IndexRow]
    test_rows: list[IndexRow]
    failures: list[tuple[str, str]]
