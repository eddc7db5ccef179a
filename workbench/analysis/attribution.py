"""Which modality drives P(Fake): per-frame P(Fake) with each modality removed in turn, and what attention looks at.

For a model (a fold ensemble: the mean over its models, as `predict`) and one video, every frame is scored
(full density) with all inputs, then with one modality at a time replaced:

    mean    by the modality's training-set mean (per fold model: the mean face crop, lip crop or MFCC
            vector of that fold's training videos), the same on every frame;
    donor   by the same modality of a REAL video of another identity (the donor), looped or cropped to
            the video's length (frames by index, MFCC frames by index).

``drive_<modality>_<replacement>`` = mean over frames of P(Fake) with everything minus P(Fake) with that
modality replaced: positive when the modality pushes the video towards FAKE. The modality with the
largest drive is the one the model blames (``blames_<replacement>``).

Attention: MMM-BA's six bi-modal maps (``"face->lip"``: face frames attending to lip frames, etc.) are
(T x T) softmax weights over key frames. ``attn_local_<q>_<k>`` summarises one as the share of a query
frame's attention that falls within +-``window`` seconds of it, averaged over query frames (and models):
1 for purely local attention, about 2 x window / duration for uniform attention.

Cost: the CNNs run once per model on the video and once on the donor's frames (the replaced features are
reused across conditions); each replacement is one more pass of the sequence model (GRUs, attention).
"""
from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from workbench.analysis.runs import condition_dirs, fold_checkpoints, read_run
from workbench.core.runtime import amp_dtype, autocast, resolve_device
from workbench.data.dataset import FrameStream, audio_for_frames, load_for_model, resize_frames
from workbench.data.records import VideoRecord, load_record, resolve
from workbench.model.mmmsba import MMMSBA
from workbench.training.predict import load_ensemble, softmax_fake

MODALITIES = ("face", "lip", "audio")
REPLACEMENTS = ("mean", "donor")
DIRECTIONS = tuple(d for p, q in MMMSBA.PAIRS for d in (f"{p}->{q}", f"{q}->{p}"))


# ------------------------------------------------------------------ what replaces a modality
def record_sums(rec: VideoRecord, chunk: int = 256) -> dict:
    """Per-pixel sums of a record's face and lip crops and of its MFCC frames, with their counts (float64)."""
    out = {"n_frames": rec.n_frames, "n_audio": int(rec.audio.shape[0]),
           "audio": rec.audio.astype(np.float64).sum(0)}
    for key, frames in (("face", rec.frames), ("lip", rec.lip)):
        total = np.zeros(frames.shape[1:], np.float64)
        for s in range(0, rec.n_frames, chunk):
            total += np.asarray(frames[s:s + chunk], dtype=np.float64).sum(0)
        out[key] = total
    return out


def training_means(sums: Iterable[dict], face_size: int, lip_size: int) -> dict[str, np.ndarray]:
    """The training-set mean face (face_size^2 x 3 uint8), lip crop and MFCC vector from record_sums of its videos."""
    sums = list(sums)
    if not sums:
        raise ValueError("training_means needs at least one training video")
    n = sum(s["n_frames"] for s in sums)
    face = sum(s["face"] for s in sums) / n
    lip = sum(s["lip"] for s in sums) / n
    audio = sum(s["audio"] for s in sums) / sum(s["n_audio"] for s in sums)
    as_img = lambda x, size: resize_frames(np.clip(np.rint(x), 0, 255).astype(np.uint8)[None], size)[0]  # noqa: E731
    return {"face": as_img(face, face_size), "lip": as_img(lip, lip_size), "audio": audio.astype(np.float32)}


def pick_donor(table: pd.DataFrame, video_id: str) -> str | None:
    """A REAL video of another identity (pool videos first, then test ones), the same for a video id every time."""
    me = table.loc[table["video_id"] == video_id]
    if me.empty:
        raise KeyError(f"video {video_id!r} is not in the dataset table")
    others = table[(table["label"] == 0) & (table["group"].astype(str) != str(me["group"].iloc[0]))]
    pool = others[others["split"] != "test"]
    candidates = sorted((pool if len(pool) else others)["video_id"].astype(str))
    if not candidates:
        return None
    return candidates[zlib.crc32(video_id.encode()) % len(candidates)]


def _looped(n: int, length: int) -> np.ndarray:
    """Indices 0..n-1 of a source of `length` items, looped (or cropped) to n."""
    return np.arange(n) % max(1, length)


# ------------------------------------------------------------------ one model, one video
class _LocalShare:
    """An attention hook: per direction, the sum over query frames of the weight within +-window s of the query."""

    def __init__(self, timestamps: np.ndarray, window: float, device: torch.device):
        self.t = torch.as_tensor(np.asarray(timestamps, dtype=np.float32), device=device)
        self.window = window
        self.total: dict[str, float] = defaultdict(float)

    def __call__(self, name: str, first: int, weights: torch.Tensor) -> None:
        rows = weights.shape[1]
        near = (self.t[first:first + rows, None] - self.t[None, :]).abs() <= self.window  # (rows, T)
        self.total[name] += float((weights.float() * near).sum())


@torch.no_grad()
def ablate(model: MMMSBA, rec: VideoRecord, *, means: dict | None, donor: VideoRecord | None,
           chunk: int = 256, device: torch.device | str = "cpu", amp: bool = False,
           window: float = 0.5) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-frame P(Fake) of one model on every frame of `rec`: 'full' and '<modality>_<replacement>' for each
    replacement available (means: training_means; donor: a REAL record), and the local attention shares."""
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    model.eval()
    T = rec.n_frames
    idx = np.arange(T)
    audio_np, audio_idx_np = audio_for_frames(rec, idx)  # the whole video: the span is all of its MFCC frames
    with autocast(device, dtype):
        face, lip = model.encode_frames_chunked(FrameStream(rec.frames, idx), FrameStream(rec.lip, idx), chunk, device)
    audio_idx = torch.from_numpy(audio_idx_np)[None].to(device)
    mask = torch.ones(1, T, dtype=torch.bool, device=device)
    variants = {"full": (face, lip, audio_np)}
    if means is not None:
        with autocast(device, dtype):
            mf = model.face_cnn(torch.from_numpy(means["face"])[None].to(device)).float()  # (1, C)
            ml = model.lip_cnn(torch.from_numpy(means["lip"])[None].to(device)).float()
        variants["face_mean"] = (mf[:, None].expand_as(face).contiguous(), lip, audio_np)
        variants["lip_mean"] = (face, ml[:, None].expand_as(lip).contiguous(), audio_np)
        variants["audio_mean"] = (face, lip, np.broadcast_to(means["audio"], audio_np.shape))
    if donor is not None:
        k = np.arange(min(T, donor.n_frames))  # the donor's CNN features once, then looped by index
        with autocast(device, dtype):
            df, dl = model.encode_frames_chunked(FrameStream(donor.frames, k), FrameStream(donor.lip, k), chunk, device)
        loop = torch.from_numpy(_looped(T, donor.n_frames)).to(device)
        variants["face_donor"] = (df[:, loop], lip, audio_np)
        variants["lip_donor"] = (face, dl[:, loop], audio_np)
        variants["audio_donor"] = (face, lip, donor.audio[_looped(len(audio_np), donor.audio.shape[0])])
    share = _LocalShare(rec.timestamps, window, device)
    out = {}
    for name, (f, l, a) in variants.items():
        model.attention_hook = share if name == "full" else None
        audio = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].to(device)
        try:
            with autocast(device, dtype):
                logits = model.sequence(f, l, audio, audio_idx, mask, torch.tensor([audio.shape[1]]))["frame_logits"]
        finally:
            model.attention_hook = None
        out[name] = softmax_fake(logits[0].float().cpu().numpy())
    local = {f"attn_local_{d.replace('->', '_')}": share.total[d] / T for d in DIRECTIONS if d in share.total}
    return out, local


def attribute_video(models: Sequence[MMMSBA], rec: VideoRecord, *, means: Sequence[dict] | dict | None,
                    donor: VideoRecord | None, chunk: int = 256, device: torch.device | str = "cpu",
                    amp: bool = False, window: float = 0.5) -> tuple[pd.DataFrame, dict]:
    """A fold ensemble on one video: the per-frame table (p_fake and p_fake_without_<modality>_<replacement>)
    and the summary row (drives, the blamed modality per replacement, local attention shares)."""
    per_model = [means] * len(models) if means is None or isinstance(means, dict) else list(means)
    if len(per_model) != len(models):
        raise ValueError(f"{len(models)} models but {len(per_model)} sets of training means")
    runs = [ablate(m, rec, means=mm, donor=donor, chunk=chunk, device=device, amp=amp, window=window)
            for m, mm in zip(models, per_model)]
    p = {k: np.mean([r[0][k] for r in runs], axis=0) for k in runs[0][0]}
    frames = pd.DataFrame({"video_id": rec.video_id, "label": rec.label, "frame": np.arange(rec.n_frames),
                           "timestamp": rec.timestamps, "frame_label": rec.frame_labels(), "p_fake": p["full"]})
    row = {"video_id": rec.video_id, "label": rec.label, "n_frames": rec.n_frames, "p_fake": float(p["full"].mean()),
           "donor": donor.video_id if donor is not None else ""}
    for k in (k for k in p if k != "full"):
        frames[f"p_fake_without_{k}"] = p[k]
        row[f"drive_{k}"] = float((p["full"] - p[k]).mean())
    for rep in REPLACEMENTS:
        drives = {m: row.get(f"drive_{m}_{rep}") for m in MODALITIES}
        if all(v is not None for v in drives.values()):
            row[f"blames_{rep}"] = max(drives, key=drives.get)
    for key in runs[0][1]:
        row[key] = float(np.mean([r[1][key] for r in runs]))
    return frames, row


# ------------------------------------------------------------------ a condition folder
def fold_training_means(cond_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, face_size: int,
                        lip_size: int, cache: dict | None = None) -> list[dict]:
    """Per fold of a finished condition (kfold_results.json), the training means of its training videos.

    `cache` (video id -> record_sums) is shared between conditions so that each record is read once.
    """
    cache = {} if cache is None else cache
    paths = dict(zip(table["video_id"].astype(str), table["path"]))
    out = []
    for fold in read_run(cond_dir).folds:
        for vid in fold.train_ids:
            if vid not in cache:
                cache[vid] = record_sums(load_record(resolve(data_dir, paths[vid]), warn=False, lazy=True))
        out.append(training_means((cache[v] for v in fold.train_ids), face_size, lip_size))
    return out


def attribute_condition(cond_dir: str | Path, data_dir: str | Path, videos: Sequence[str], table: pd.DataFrame, *,
                        replacements: Sequence[str] = REPLACEMENTS, device: str = "auto", window: float = 0.5,
                        cache: dict | None = None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The fold ensemble of a condition folder on each video: the summary (one row per video) and the frame tables."""

    bad = [r for r in replacements if r not in REPLACEMENTS]
    if bad:
        raise ValueError(f"unknown replacement(s) {bad}; choose from {REPLACEMENTS}")
    dev = resolve_device(device)
    models, cfg = load_ensemble(fold_checkpoints(cond_dir), dev)
    means = fold_training_means(cond_dir, data_dir, table, cfg.data.face_size, cfg.data.lip_size, cache) \
        if "mean" in replacements else None
    paths = dict(zip(table["video_id"].astype(str), table["path"]))
    rows, frames = [], {}
    for vid in videos:
        rec = load_for_model(resolve(data_dir, paths[vid]), cfg, lazy=True)
        donor_id = pick_donor(table, vid) if "donor" in replacements else None
        donor = load_for_model(resolve(data_dir, paths[donor_id]), cfg, lazy=True) if donor_id else None
        f, row = attribute_video(models, rec, means=means, donor=donor, chunk=cfg.train.chunk_size, device=dev,
                                 amp=cfg.train.amp, window=window)
        frames[vid] = f
        rows.append(row)
    return pd.DataFrame(rows), frames


# ------------------------------------------------------------------ a study (notebook 06)
@dataclass
class StudyAttribution:
    """attribute_condition over a study's conditions: the summary rows and every per-frame table."""

    conditions: list[str]  # the finished conditions that were attributed, in the order asked
    replacements: list[str]
    table: pd.DataFrame  # one row per condition and video: condition first, the video's fake_type added
    frames: dict[tuple[str, str], pd.DataFrame]  # (condition, video id) -> attribute_video's frame table

    def real(self) -> pd.DataFrame:
        """The rows of REAL videos (what the study asks: which modality raises their P(Fake))."""
        return self.table[self.table["label"] == 0] if len(self.table) else self.table

    def blame(self) -> dict[str, pd.DataFrame]:
        """Per replacement: REAL videos counted by blamed modality, one row per condition."""
        real = self.real()
        return {rep: real.groupby("condition")[f"blames_{rep}"].value_counts().unstack(fill_value=0)
                for rep in self.replacements if f"blames_{rep}" in real}

    def example(self) -> tuple[str, str] | None:
        """The (condition, video) to plot: the first partial fake, else the first FAKE video, else the first one."""
        keys = list(self.frames)
        partial = [k for k in keys if 0 < self.frames[k]["frame_label"].mean() < 1]
        fake = [k for k in keys if self.frames[k]["label"].iloc[0] == 1]
        return (partial or fake or keys or [None])[0]


def study_attribution(run_dir: str | Path, data_dir: str | Path, table: pd.DataFrame, conditions: Sequence[str], *,
                      videos: Sequence[str] = (), replacements: Sequence[str] = REPLACEMENTS, device: str = "auto",
                      window: float = 0.5) -> StudyAttribution:
    """attribute_condition of each finished condition among `conditions` on `videos` (default: the held-out test
    videos); the records' pixel sums are shared between conditions, so each record is read once."""
    finished = condition_dirs(run_dir)
    names = [c for c in conditions if c in finished]
    videos = list(videos) or table.loc[table["split"] == "test", "video_id"].astype(str).tolist()
    rows, frames, sums = [], {}, {}
    for cond in names:
        summary, per_video = attribute_condition(finished[cond], data_dir, videos, table, replacements=replacements,
                                                 device=device, window=window, cache=sums)
        rows.append(summary.assign(condition=cond))
        frames.update({(cond, v): f for v, f in per_video.items()})
    attr = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if len(attr):
        attr = attr.merge(table[["video_id", "fake_type"]], on="video_id", how="left")
        attr = attr[["condition", *[c for c in attr.columns if c != "condition"]]]
    return StudyAttribution(names, list(replacements), attr, frames)


__all__ = ["DIRECTIONS", "MODALITIES", "REPLACEMENTS", "StudyAttribution", "ablate", "attribute_condition",
           "attribute_video", "fold_training_means", "pick_donor", "record_sums", "study_attribution",
           "training_means"]
