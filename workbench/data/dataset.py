"""Clips from npz records: explicit frame sampling, audio aligned by timestamps, padded batches.

Sampling rules (recorded in the config, `data.sampling`):
    uniform  `max_frames` frames spread over the whole video (the original study). Training
             draws one random frame from each of `max_frames` equal segments; evaluation takes
             the segment centres. Videos shorter than `max_frames` give all their frames.
    fps      a contiguous window of `max_frames` frames at `sample_fps` (every k-th frame of the
             video). Training draws a random start; evaluation takes the centred window.
Evaluation with `data.eval_clip = full` uses every frame of the video instead.

Memory is bounded by the batch, not the dataset: a clip's frame indices are drawn first and only those
frames are read and decoded (`workbench.data.storage.StoredFrames`), in DataLoader workers while the model
computes. A RAM cache (`data.cache_gb`, per machine, shared out among the trainers running at once: see
`cache_budget_bytes`) keeps whole videos decoded at the model's sizes until its budget is spent.
Every random choice of a training clip (its frames, its augmentation) is keyed by the draw, (seed,
epoch, position in the epoch), not by the video: a video drawn twice in an epoch gives two clips, and
neither the worker count nor the cache changes a result.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from workbench.core.config import Config
from workbench.core.runtime import usable_cores
from workbench.data import augment
from workbench.data.records import IndexRow, VideoRecord, load_record, resolve
from workbench.data.storage import BadRecordError, StoredFrames

CONCURRENT_ENV = "WORKBENCH_CONCURRENT_TRAINERS"
UNLABELED_SPLIT = "unlabeled"  # clips whose labels are never read (label -1, or a label withheld by split=unlabeled)
PSEUDO_SPLIT = "pseudo"  # unlabelled clips given a pseudo-label by self-training: the row's label, never the record's


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 frames to (T, size, size, 3) (no-op when already that size)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (size, size), interpolation=interp)
    return out


class ResizedFrames:
    """Crops on disk (StoredFrames) seen at another size: indexing reads those frames and resizes them."""

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, frames: StoredFrames, size: int):
        self.frames, self.size = frames, size
        self.shape = (frames.shape[0], size, size, frames.shape[3])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        x = self.frames[key]
        return resize_frames(x[None], self.size)[0] if x.ndim == 3 else resize_frames(x, self.size)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


def load_for_model(path: str | Path, cfg: Config, lazy: bool = False, wave: bool = False) -> VideoRecord:
    """Load a record and bring its crops to the configured face/lip sizes.

    With `lazy`, crops stored uncompressed or per frame stay on disk and are read (and resized) on demand.
    """
    return fit_to_config(load_record(path, lazy=lazy, wave=wave), cfg)


def fit_to_config(rec: VideoRecord, cfg: Config) -> VideoRecord:
    """A loaded record with its crops at the configured face/lip sizes; BadRecordError on an MFCC-size mismatch."""
    for key, size in (("frames", cfg.data.face_size), ("lip", cfg.data.lip_size)):
        x = getattr(rec, key)
        if isinstance(x, StoredFrames):
            setattr(rec, key, x if x.shape[1:3] == (size, size) else ResizedFrames(x, size))
            continue
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


# ------------------------------------------------------------------ the RAM cache
def concurrent_trainers() -> int:
    """How many trainers share this machine now: the WORKBENCH_CONCURRENT_TRAINERS variable (default 1).

    An engine that runs several trainers at once on one machine (processes, Ray tasks) sets it in each
    trainer's environment, or passes `concurrent` to `cache_budget_bytes` / `ClipDataset` directly; each
    trainer's cache then takes its share of `data.cache_gb`.
    """
    raw = os.environ.get(CONCURRENT_ENV, "").strip()
    try:
        n = int(raw) if raw else 1
    except ValueError:
        raise ValueError(f"{CONCURRENT_ENV} must be a whole number of trainers, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{CONCURRENT_ENV} must be at least 1, got {n}")
    return n


def cache_budget_bytes(cfg: Config, concurrent: int | None = None) -> int:
    """This trainer's share of the machine's clip cache: data.cache_gb over the trainers running at once."""
    n = concurrent if concurrent is not None else concurrent_trainers()
    return int(max(0.0, cfg.data.cache_gb) * 2**30 / max(1, n))


def record_bytes(rec: VideoRecord) -> int:
    """Bytes a decoded record holds in the cache."""
    wave = rec.audio_wave.nbytes if rec.audio_wave is not None else 0
    return int(rec.frames.nbytes + rec.lip.nbytes + rec.audio.nbytes + wave + 32 * rec.n_frames)


class ClipCache:
    """Whole records decoded at the model's sizes, up to a byte budget: filled first come, never evicted.

    An epoch visits every video once in random order, so a least-recently-used cache smaller than the
    dataset would evict each video before its next visit (no hits at all); a fixed set of cached videos
    serves budget/dataset of the reads from memory every epoch. `store` may be shared by several datasets
    (a K-fold run's training and validation sets); the budget covers everything in it.
    """

    def __init__(self, budget_bytes: int, store: dict | None = None):
        self.budget = int(budget_bytes)
        self.store = store if store is not None else {}

    def get(self, key: str) -> VideoRecord | None:
        return self.store.get(key)

    def used(self) -> int:
        return sum(record_bytes(r) for r in self.store.values())

    def fits(self, nbytes: int) -> bool:
        return nbytes <= self.budget - self.used()

    def put(self, key: str, rec: VideoRecord) -> bool:
        """Keep `rec` when it fits in what is left of the budget."""
        if key not in self.store and self.fits(record_bytes(rec)):
            self.store[key] = rec
        return key in self.store


# ------------------------------------------------------------------ the dataset
class ClipDataset(Dataset):
    """Clips of the videos listed in `rows`, read on demand (the frames of a clip only), from a RAM cache when cached.

    Index it with an int (evaluation, or a training draw keyed by the index) or with a draw
    ``(index, epoch, position)`` from `DrawSampler`. `cache` is a ClipCache, or a dict shared by several
    datasets (its budget is then this trainer's share of data.cache_gb, see `cache_budget_bytes`).
    """

    def __init__(self, rows: list[IndexRow], root: str | Path, cfg: Config, train: bool,
                 full: bool = False, cache: ClipCache | dict | None = None, seed: int = 0,
                 concurrent: int | None = None):
        self.rows = list(rows)
        self.root = Path(root)
        self.cfg = cfg
        self.train = train
        self.full = full
        self.seed = seed
        self.epoch = 0
        self.cache = cache if isinstance(cache, ClipCache) else ClipCache(cache_budget_bytes(cfg, concurrent), cache)
        self.wave = augment.needs_wave(cfg.augment)  # also when evaluating: the cache is shared with training
        if train:
            augment.prepare(cfg.augment, cfg.audio)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.rows]

    def _load(self, i: int, lazy: bool) -> VideoRecord:
        return load_for_model(resolve(self.root, self.rows[i].path), self.cfg, lazy=lazy, wave=self.wave)

    def record(self, i: int) -> VideoRecord:
        """The i-th record: decoded from the cache, else opened lazily (crops on disk, read on demand).

        In the main process a record that fits what is left of the cache's budget is decoded whole and kept;
        loader workers only read the cache (what they added would die with them at the end of the epoch).
        """
        key = self.rows[i].path
        rec = self.cache.get(key)
        if rec is not None:
            return rec
        rec = self._load(i, lazy=True)
        if get_worker_info() is None and self.cache.fits(self._estimate(i, rec.n_frames)):
            full = self._load(i, lazy=False)
            if self.cache.put(key, full):
                return full
        return rec

    def _estimate(self, i: int, n_frames: int | None = None) -> int:
        """Decoded bytes of record i at the model's sizes, from its frame count (the index row's, else the file's)."""
        n = n_frames if n_frames is not None else self.rows[i].n_frames
        if n <= 0:
            n = self._load(i, lazy=True).n_frames
        return int(n * 3 * (self.cfg.data.face_size ** 2 + self.cfg.data.lip_size ** 2))

    def preload(self) -> bool:
        """Decode into the cache every record that fits its budget, now (before DataLoader workers fork: they
        then share it), several at a time (decoders release the GIL); True when every record is cached."""
        if self.cache.budget > 0 and get_worker_info() is None:
            todo, room = [], self.cache.budget - self.cache.used()
            for i, row in enumerate(self.rows):
                need = self._estimate(i)
                if self.cache.get(row.path) is None and need <= room:
                    todo.append(i)
                    room -= need
            with ThreadPoolExecutor(max(1, min(usable_cores(), len(todo)))) as pool:
                for i, rec in zip(todo, pool.map(lambda k: self._load(k, lazy=False), todo)):
                    self.cache.put(self.rows[i].path, rec)
        return all(self.cache.get(r.path) is not None for r in self.rows)

    def set_epoch(self, epoch: int) -> None:
        """The epoch of draws indexed by a plain int (a DrawSampler's draws carry their own)."""
        self.epoch = epoch

    def audio_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (n_mfcc,) of every MFCC frame of these videos (whole videos, not clips)."""
        total, total_sq, n = 0.0, 0.0, 0
        for row in self.rows:
            rec = self.cache.get(row.path)
            a = rec.audio if rec is not None else load_mfcc(resolve(self.root, row.path))
            a = a.astype(np.float64)
            total, total_sq, n = total + a.sum(0), total_sq + (a * a).sum(0), n + a.shape[0]
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(total_sq / max(n, 1) - mean * mean, 0.0))
        return mean.astype(np.float32), std.astype(np.float32)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        i, epoch, draw = key if isinstance(key, tuple) else (key, self.epoch, key)
        rec, row = self.record(i), self.rows[i]
        rng = np.random.default_rng([self.seed, epoch, draw]) if self.train else None
        idx = sample_indices(rec.n_frames, rec.fps, self.cfg, self.train, rng, self.full)
        plan = augment.plan(self.cfg.augment, row.label, (self.seed, epoch, draw)) if self.train else None
        if plan is not None and plan.audio_noise:
            rec = replace(rec, audio=augment.noisy_mfcc(rec, plan, self.cfg.audio))
        item = clip_from_record(rec, idx)
        if row.split in (UNLABELED_SPLIT, PSEUDO_SPLIT):  # the record's own labels (a withheld one) are never read
            item["label"] = torch.tensor(row.label, dtype=torch.long)
            item["frame_label"] = torch.full_like(item["frame_label"], row.label)
        if plan is not None:
            item["face"], item["lip"] = augment.apply_video(item["face"], item["lip"], plan)
        item["index"] = torch.tensor(i)
        return item


def load_mfcc(path: str | Path) -> np.ndarray:
    """The (T_a, n_mfcc) MFCC of a record, nothing else read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["audio"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as e:
        raise BadRecordError(path, f"'audio' unreadable ({type(e).__name__}: {e})") from e


class DrawSampler(Sampler):
    """The draws of an index sampler (weighted, shuffled) as (index, epoch, position): each draw its own randomness.

    The base sampler is drawn once, here: a multi-process DataLoader iterates its sampler more than once per
    epoch, and a sampler with its own generator would give other indices each time.
    """

    def __init__(self, base, epoch: int):
        self.draws = [(int(i), int(epoch), pos) for pos, i in enumerate(base)]

    def __len__(self) -> int:
        return len(self.draws)

    def __iter__(self):
        return iter(self.draws)


def loader_workers(cfg: Config, device: torch.device | str = "cpu", busy: bool = True) -> int:
    """DataLoader workers: data.num_workers, or for -1 (auto) none when there is nothing to overlap (`busy` False:
    every clip cut from the RAM cache, no augmentation), else min(2, cores - 1) beside a CPU model (it needs the
    cores) and min(8, cores - 1) beside a GPU."""
    n = cfg.data.num_workers
    if n >= 0:
        return n
    if not busy:
        return 0
    cap = 8 if torch.device(device).type == "cuda" else 2
    return max(0, min(cap, usable_cores() - 1))


def loader_context(workers: int):
    """fork where the OS has it: workers then share the parent's RAM cache instead of unpickling a copy each.

    (A forked worker must not call cv2.setNumThreads: when the parent has used OpenCV's thread pool, it waits
    for threads that do not exist in the child and hangs.)
    """
    return multiprocessing.get_context("fork") if workers > 0 and "fork" in multiprocessing.get_all_start_methods() else None


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
    """Train and test rows of a dataset folder, the unlabelled rows (label -1), and the files that failed validation."""

    root: Path
    rows: list[IndexRow]
    test_rows: list[IndexRow]
    failures: list[tuple[str, str]]
    unlabeled_rows: list[IndexRow] = field(default_factory=list)  # split=unlabeled, label -1: self-training only
