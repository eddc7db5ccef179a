"""`workbench ingest`: labelled videos -> one npz record per video (face crops, lip crops, MFCC) + CSVs.

Input is a folder with ``real/`` and ``fake/`` subfolders (searched recursively), a CSV manifest
(columns ``path``, ``label`` [0/1 or REAL/FAKE; -1 for an unlabelled clip, whose split is ``unlabeled``],
optional ``video_id``, ``group``, ``split`` and any extra columns, carried into metadata.csv), a folder holding
such a manifest named labels.csv or manifest.csv, or the root of a public dataset (FakeAVCeleb, LAV-DF,
AV-Deepfake1M, DFDC) read from its own metadata by workbench.ingest.datasets (``dataset=``, or recognised).
``limit`` keeps a stratified sample of that many videos (by label, seeded by ``seed``).
An optional ``fake_segments`` column (JSON list of [start_s, end_s] or [start_s, end_s, modality], as
AV-Deepfake1M's metadata) marks a partial fake: the record gets ``frame_label`` (1 on frames whose timestamp t
has start <= t < end) and metadata.csv a ``segment_modality`` column (the segments' modalities, ';'-joined).
Bad JSON, start >= end, a segment outside the video, or segments on a REAL row fail that video.

Output folder:
    <video_id>.npz         the record (workbench.data.records layout; RGB crops stored as `ingest.storage`: lossless
                           per-frame WebP by default; the 16 kHz waveform kept as `audio_wave`)
    <video_id>.meta.json   sidecar with the measured metadata, so a rerun rebuilds the CSVs without recomputing
    index.csv              workbench.data.records index (paths relative to the folder)
    metadata.csv           video_id, label, group, split, duration, fps, n_frames, face_rate, lead_silence,
                           trail_silence, mean_brightness, then the manifest's extra columns (e.g. fake_type)
    failures.csv           file, reason: every video that could not be ingested

A video whose npz and sidecar exist, are newer than the source and carry the same label and group is skipped.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import json
import math
import multiprocessing
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from tqdm import tqdm

from workbench.core.config import Config
from workbench.core.runtime import usable_cores
from workbench.data.records import IndexRow, VideoRecord, atomic_write, save_record, write_csv, write_index
from workbench.data.segments import frame_label_from_segments, parse_segments
from workbench.data.storage import codec_for
from workbench.ingest.audio import IngestError, audio_features
from workbench.ingest.datasets import DATASETS, UNLABELED, detect_layout, read_dataset, stratified_sample
from workbench.ingest.face import FaceTracker, bracketed_found, crop_square

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
META_COLUMNS = ("video_id", "label", "group", "split", "duration", "fps", "n_frames", "face_rate",
                "lead_silence", "trail_silence", "mean_brightness")
MANIFEST_NAMES = ("labels.csv", "manifest.csv")
_RESERVED = {"path", "label", "video_id", "group", "split"}
_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1}
_LABEL_NAMES = {0: "REAL", 1: "FAKE", -1: "unlabelled"}
RECORD_VERSION = 2  # 2: compact crop storage and the waveform (audio_wave); records of an older version are redone


@dataclass
class IngestSummary:
    """What a run did. total_duration and face_rate cover every listed record (done + skipped);
    video_seconds_per_second is the seconds of video ingested this run (done) per wall-clock second."""

    done: int
    skipped: int
    failed: int
    total_duration: float
    face_rate: float
    wall_seconds: float
    video_seconds_per_second: float
    failures: list[tuple[str, str]] = field(default_factory=list)
    disk_bytes: int = 0  # bytes of the listed records' npz files
    storage: str = "lossless"

    @property
    def gb_per_hour(self) -> float:
        """GB (1e9 bytes) on disk per hour of video, over the listed records."""
        return self.disk_bytes / 1e9 / (self.total_duration / 3600) if self.total_duration > 0 else float("nan")

    def __str__(self) -> str:
        return (f"ingest: {self.done} done, {self.skipped} skipped, {self.failed} failed | "
                f"{self.total_duration:.1f} s of video, face found on {100 * self.face_rate:.1f}% of frames | "
                f"{self.wall_seconds:.1f} s wall, {self.video_seconds_per_second:.2f} s of video per second | "
                f"{self.disk_bytes / 1e6:.1f} MB on disk ({self.storage}), {self.gb_per_hour:.2f} GB per hour of video")


@dataclass
class Job:
    """One video to ingest and its labels."""

    path: Path
    name: str  # as listed (relative to the input folder or as written in the manifest), for failures.csv
    label: int
    video_id: str
    group: str
    split: str = "train"
    extras: dict[str, str] = field(default_factory=dict)
    segments: list[tuple[float, float, str]] | None = None  # fake segments (partial fakes), seconds

    @property
    def stem(self) -> str:
        """File name (without extension) of the video's outputs: '/' of a path-like id becomes '__'."""
        return re.sub(r"[^\w.\-]+", "_", self.video_id.replace("/", "__"))


# ------------------------------------------------------------------ listing the input
def parse_label(value: Any) -> int:
    """0/1 or REAL/FAKE (any case) -> 0/1; ValueError otherwise."""
    key = str(value).strip().lower()
    if key in ("0.0", "1.0"):
        key = key[0]
    if key not in _LABELS:
        raise ValueError(f"label {value!r} is not 0/1 or REAL/FAKE")
    return _LABELS[key]


def _unique_ids(jobs: list[Job], failures: list[tuple[str, str]]) -> list[Job]:
    """Drop jobs whose output name repeats an earlier one (recorded as failures)."""
    seen: dict[str, str] = {}
    out = []
    for j in jobs:
        key = j.stem.lower()
        if key in seen:
            failures.append((j.name, f"duplicate video_id {j.video_id!r} (also {seen[key]})"))
            continue
        seen[key] = j.name
        out.append(j)
    return out


def _folder_jobs(root: Path) -> list[Job]:
    """Videos under root/real and root/fake; a stem used twice gets its relative path as video_id."""
    found: list[tuple[Path, int]] = []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and sub.name.lower() in ("real", "fake"):
            label = _LABELS[sub.name.lower()]
            found += [(p, label) for p in sorted(sub.rglob("*"))
                      if p.is_file() and p.suffix.lower() in VIDEO_EXTS and not p.name.startswith(".")]
    stems = Counter(p.stem for p, _ in found)
    jobs = []
    for p, label in found:
        rel = p.relative_to(root)
        vid = p.stem if stems[p.stem] == 1 else "__".join(rel.with_suffix("").parts)
        jobs.append(Job(path=p, name=str(rel), label=label, video_id=vid, group=vid))
    return jobs


def _manifest_jobs(manifest: Path, failures: list[tuple[str, str]]) -> list[Job]:
    """Rows of a CSV manifest; rows with a bad label are recorded as failures."""
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "path" not in cols or "label" not in cols:
            raise ValueError(f"{manifest}: a manifest needs the columns 'path' and 'label', got {cols}")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    return _row_jobs(rows, manifest.parent, lambda n: f"{manifest.name} line {n + 2}",
                     lambda n: f"{manifest.name}:{n + 2}", failures)


def _row_label(r: dict[str, str]) -> int:
    """A row's label: 0/1 (parse_label), or -1 for an unlabelled clip (split unlabeled); ValueError otherwise."""
    if r["label"].strip() != "-1":
        return parse_label(r["label"])
    if (r.get("split") or UNLABELED) != UNLABELED:
        raise ValueError(f"label -1 (unlabelled) needs split {UNLABELED!r}, got {r['split']!r}")
    return -1


def _row_jobs(rows: list[dict[str, str]], base: Path, where: Callable[[int], str], unnamed: Callable[[int], str],
              failures: list[tuple[str, str]]) -> list[Job]:
    """Manifest rows -> jobs (paths relative to `base`); a bad row is a failure, `where(n)` saying which row."""
    jobs = []
    for n, r in enumerate(rows):
        name = r["path"]
        if not name:
            failures.append((unnamed(n), "empty path"))
            continue
        try:
            label = _row_label(r)
            segments = _segments(r.get("fake_segments"), label)
        except ValueError as e:
            failures.append((name, f"{where(n)}: {e}"))
            continue
        p = Path(name)
        p = p if p.is_absolute() else base / p
        vid = r.get("video_id") or p.stem
        extras = {k: v for k, v in r.items() if k and k not in _RESERVED}
        if "fake_segments" in r:
            extras["segment_modality"] = ";".join(m or "unknown" for _, _, m in segments or [])
        split = r.get("split") or (UNLABELED if label == -1 else "train")
        jobs.append(Job(path=p, name=name, label=label, video_id=vid, group=r.get("group") or vid,
                        split=split, extras=extras, segments=segments))
    return jobs


def _dataset_jobs(root: Path, dataset: str, unlabeled: bool, failures: list[tuple[str, str]]) -> list[Job]:
    """The jobs of a public dataset's root folder, read from its own metadata (workbench.ingest.datasets)."""
    rows = read_dataset(root, dataset, unlabeled=unlabeled)
    return _row_jobs(rows, root, lambda n: f"{DATASETS[dataset]} metadata", lambda n: f"{DATASETS[dataset]} row {n}",
                     failures)


def _segments(raw: str | None, label: int) -> list[tuple[float, float, str]] | None:
    """A manifest's fake_segments cell, checked against the row's label (ValueError with the reason)."""
    if raw is None or not raw.strip():
        return None
    segments = parse_segments(raw)
    if label == -1 and segments:
        raise ValueError(f"fake_segments on an unlabelled (label -1) row: {raw}")
    if label == 0 and segments:
        raise ValueError(f"fake_segments on a REAL (label 0) row: {raw}")
    if label == 1 and not segments:
        raise ValueError("fake_segments is an empty list on a FAKE row (leave it empty for a whole-video fake)")
    return segments


def apply_segments(rec: VideoRecord, segments: list[tuple[float, float, str]]) -> None:
    """Set a record's frame_label from fake segments; IngestError when one lies outside the video or none covers a frame."""
    slack = 0.5 / rec.fps  # half a frame of rounding in hand-written times
    for start, end, _ in segments:
        if end > rec.duration + slack:
            raise IngestError(f"fake_segments: segment [{start:g}, {end:g}] s ends after the video "
                              f"({rec.duration:.3f} s)")
    label = frame_label_from_segments(rec.timestamps, segments)
    if not label.any():
        raise IngestError(f"fake_segments {[(s, e) for s, e, _ in segments]} cover no frame (shorter than a frame?)")
    rec.frame_label = label


def list_jobs(source: str | Path, dataset: str | None = None, *, unlabeled: bool = False, limit: int | None = None,
              seed: int = 0) -> tuple[list[Job], list[tuple[str, str]]]:
    """The videos of a folder (real/, fake/), CSV manifest or public dataset, and the rows that failed already.

    ``limit`` keeps a stratified sample (by label, seeded) of that many videos."""
    source = Path(source)
    failures: list[tuple[str, str]] = []
    if dataset is not None:
        jobs = _dataset_jobs(source, dataset, unlabeled, failures)
    elif source.is_file():
        if source.suffix.lower() != ".csv":
            raise ValueError(f"{source}: expected a folder with real/ and fake/ subfolders or a CSV manifest")
        jobs = _manifest_jobs(source, failures)
    elif source.is_dir():
        if any(p.is_dir() and p.name.lower() in ("real", "fake") for p in source.iterdir()):
            jobs = _folder_jobs(source)
        elif manifests := [source / m for m in MANIFEST_NAMES if (source / m).is_file()]:
            jobs = _manifest_jobs(manifests[0], failures)
        elif found := detect_layout(source):
            print(f"{source}: recognised the {DATASETS[found]} layout (read as --dataset {found})")
            jobs = _dataset_jobs(source, found, unlabeled, failures)
        else:
            raise ValueError(f"{source}: no real/ or fake/ subfolder, no {' or '.join(MANIFEST_NAMES)} and no "
                             f"public dataset's metadata (--dataset {'|'.join(DATASETS)})")
    else:
        raise FileNotFoundError(f"input {source} does not exist")
    jobs = _unique_ids(jobs, failures)
    if limit is not None and limit < len(jobs):
        total = len(jobs)
        jobs = stratified_sample(jobs, limit, seed, label=lambda j: j.label, key=lambda j: j.video_id)
        counts = Counter(j.label for j in jobs)
        print(f"--limit {limit}: a stratified sample (seed {seed}) of the {total} videos: " + ", ".join(
            f"{counts[c]} {name}" for c, name in _LABEL_NAMES.items() if c in counts))
    return jobs, failures


# ------------------------------------------------------------------ one video
class _Frames:
    """A growing (n, s, s, 3) uint8 buffer, preallocated from the expected frame count."""

    def __init__(self, size: int, capacity: int):
        self.data = np.zeros((max(1, capacity), size, size, 3), np.uint8)
        self.n = 0

    def append(self, crop: np.ndarray | None) -> None:
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros_like(self.data)])
        if crop is not None:
            self.data[self.n] = crop
        self.n += 1

    def array(self) -> np.ndarray:
        return self.data[: self.n]


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, max(1, cv2.getNumThreads())])
    if not cap.isOpened():
        raise IngestError("OpenCV could not open the video stream")
    return cap


def _native_fps(cap: cv2.VideoCapture) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and 1.0 <= fps <= 1000.0 else 30.0  # unknown rate: assume 30


@dataclass
class _Pass:
    """What one pass over a video's frames kept: crops, times, detections, brightness, frames before a face."""

    faces: _Frames
    lips: _Frames
    tracker: FaceTracker
    fps: float
    native: float
    timestamps: list = field(default_factory=list)
    detected: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # source indices of kept frames before the first detection
    brightness: list = field(default_factory=list)
    n_source: int = 0


def _frame_pass(path: Path, cfg: Config) -> _Pass:
    """Decode the video once at the kept frame rate: track the face and keep the face and lip crops."""
    cap = _open(path)
    native = _native_fps(cap)
    keep_fps = native if cfg.ingest.fps is None else min(float(cfg.ingest.fps), native)  # never upsamples
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capacity = min(int(expected * keep_fps / native) + 2, 1 << 16) if expected > 0 else 256  # grows if short
    run = _Pass(_Frames(cfg.data.face_size, capacity), _Frames(cfg.data.lip_size, capacity),
                FaceTracker(cfg.ingest, face_size=cfg.data.face_size, lip_size=cfg.data.lip_size), keep_fps, native)
    i, last_slot = 0, -1
    try:
        while cap.grab():
            t = i / native
            slot = math.floor(t * keep_fps + 1e-6)
            if slot > last_slot:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                last_slot = slot
                _keep(run, frame, i, t)
            i += 1
    finally:
        cap.release()
    run.n_source = i
    return run


def _keep(run: _Pass, frame: np.ndarray, i: int, t: float) -> None:
    """One kept frame: a tracker step, its crops (or a placeholder before the first face), time and brightness."""
    step = run.tracker.step(frame)
    if step.detected is not None:
        b, g, r = frame[::8, ::8].reshape(-1, 3).mean(axis=0)
        run.brightness.append(0.114 * b + 0.587 * g + 0.299 * r)
    crops = run.tracker.crops(frame, step)
    if crops is None:
        run.pending.append(i)
    run.faces.append(None if crops is None else crops[0])
    run.lips.append(None if crops is None else crops[1])
    run.timestamps.append(t)
    run.detected.append(step.detected)


def _crop_pending(path: Path, run: _Pass, cfg: Config) -> None:
    """Frames before the first detection: decode them again and crop them at the first face and lip boxes."""
    face_box, lip_box = run.tracker.first
    todo = {src: k for k, src in enumerate(run.pending)}  # pending frames are the first kept frames
    cap = _open(path)
    try:
        j = 0
        while todo and cap.grab():
            if j in todo:
                ok, frame = cap.retrieve()
                k = todo.pop(j)
                if ok:
                    run.faces.data[k] = crop_square(frame, face_box, cfg.data.face_size)
                    run.lips.data[k] = crop_square(frame, lip_box, cfg.data.lip_size)
            j += 1
    finally:
        cap.release()


def ingest_video(path: str | Path, label: int, video_id: str, group: str, cfg: Config) -> VideoRecord:
    """Decode one video into a record in memory (streaming: only the crops are kept); raise IngestError."""
    path = Path(path)
    # decode_audio fails first (IngestError) on a missing ("file not found") or empty ("empty file (0 bytes)") file
    audio = audio_features(path, cfg.audio, top_db=cfg.ingest.silence_top_db)
    run = _frame_pass(path, cfg)
    if not run.timestamps:
        raise IngestError("no decodable video frames")
    if run.tracker.first is None:
        raise IngestError("no face detected")
    if run.pending:
        _crop_pending(path, run, cfg)
    found = bracketed_found(run.detected)
    extras = dict(face_rate=float(found.mean()), lead_silence=audio.lead_silence, trail_silence=audio.trail_silence,
                  mean_brightness=float(np.mean(run.brightness)) if run.brightness else 0.0, source=str(path),
                  audio_duration=audio.duration)
    return VideoRecord(frames=run.faces.array(), lip=run.lips.array(), audio=audio.mfcc, label=int(label),
                       video_id=str(video_id), group=str(group), fps=run.fps,
                       timestamps=np.asarray(run.timestamps, dtype=np.float64), face_found=found,
                       duration=run.n_source / run.native, audio_rate=audio.rate, extras=extras,
                       audio_wave=audio.wave, wave_rate=float(cfg.audio.sample_rate))


# ------------------------------------------------------------------ a batch
def _settings(cfg: Config) -> dict:
    """The settings that shape a record, as they read back from a sidecar; a sidecar written under others is stale."""
    settings = dict(ingest={k: v for k, v in dataclasses.asdict(cfg.ingest).items() if k != "workers"},
                    audio=dataclasses.asdict(cfg.audio), face_size=cfg.data.face_size, lip_size=cfg.data.lip_size,
                    record_version=RECORD_VERSION)
    return json.loads(json.dumps(settings))


def _up_to_date(job: Job, out: Path, settings: dict) -> dict | None:
    """The sidecar metadata of a finished video when its outputs are newer than the source and were made
    with the same label, group and settings (``_settings(cfg)``), else None."""
    npz, meta = out / f"{job.stem}.npz", out / f"{job.stem}.meta.json"
    try:
        if not job.path.is_file() or npz.stat().st_mtime < job.path.stat().st_mtime:
            return None
        m = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if (m.get("label"), m.get("group"), m.get("video_id")) != (job.label, job.group, job.video_id):
        return None
    if m.get("fake_segments") != _segments_json(job):
        return None
    if m.get("settings") != settings:
        return None
    return m


def _segments_json(job: Job) -> list | None:
    """A job's segments as they read back from a sidecar (None without)."""
    return json.loads(json.dumps(job.segments)) if job.segments else None


def _process(job: Job, out: Path, cfg: Config, settings: dict) -> tuple[Job, dict | None, str | None]:
    """Ingest and save one video: (job, metadata, None) or (job, None, reason). Never raises.

    ``settings`` is ``_settings(cfg)``, computed once per batch and stored in the sidecar."""
    try:
        rec = ingest_video(job.path, job.label, job.video_id, job.group, cfg)
        if job.segments:
            apply_segments(rec, job.segments)
        save_record(out / f"{job.stem}.npz", rec, storage=cfg.ingest.storage, quality=cfg.ingest.jpeg_quality)
        meta = dict(video_id=rec.video_id, label=rec.label, group=rec.group, duration=rec.duration, fps=rec.fps,
                    n_frames=rec.n_frames, **rec.extras, settings=settings)
        if job.segments:
            meta["fake_segments"] = _segments_json(job)
        atomic_write(out / f"{job.stem}.meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))
    except IngestError as e:
        return job, None, e.reason
    except Exception as e:  # an unforeseen decoder or disk problem must not stop the batch
        return job, None, f"unexpected error: {type(e).__name__}: {e}"
    return job, meta, None


def _pooled(todo: list[Job], out: Path, cfg: Config, settings: dict, n_workers: int, threads: int):
    """Results of _process from worker processes as they finish; a dead worker fails its videos."""
    with cf.ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(_process, job, out, cfg, settings): job for job in todo}
        try:
            for fut in cf.as_completed(futures):
                try:
                    yield fut.result()
                except Exception as e:  # e.g. BrokenProcessPool when a worker is killed (out of memory)
                    yield futures[fut], None, f"worker process failed: {type(e).__name__}: {e}"
        finally:
            pool.shutdown(cancel_futures=True)


def _init_worker(threads: int) -> None:
    cv2.setNumThreads(threads)


def _fmt(v: Any) -> Any:
    return f"{v:.4f}" if isinstance(v, float) else v


def _run_jobs(todo: list[Job], out: Path, cfg: Config, settings: dict, workers: int | None, metas: dict,
              failures: list, progress: bool, total: int) -> float:
    """Ingest the jobs not up to date (in-process or in a pool), filling metas and failures; seconds of video done."""
    n_workers = workers if workers is not None else cfg.ingest.workers
    cores = usable_cores()
    n_workers = min(n_workers if n_workers > 0 else cores, max(1, len(todo)))
    done_seconds = 0.0
    bar = tqdm(total=total, initial=total - len(todo), disable=not progress, unit="video", desc="ingest")
    if n_workers <= 1:
        results = (_process(job, out, cfg, settings) for job in todo)
    else:
        results = _pooled(todo, out, cfg, settings, n_workers, threads=max(1, cores // n_workers))
    try:
        for job, meta, reason in results:
            if meta is None:
                failures.append((job.name, reason))
            else:
                metas[job.video_id] = meta
                done_seconds += float(meta["duration"])
            bar.update(1)
    finally:
        bar.close()
    return done_seconds


def _write_tables(out: Path, listed: list[Job], metas: dict, failures: list) -> None:
    """index.csv, metadata.csv (with the jobs' extra columns) and failures.csv of an ingested folder."""
    write_index(out / "index.csv", [IndexRow(path=f"{j.stem}.npz", video_id=j.video_id, label=j.label, group=j.group,
                                             duration=float(metas[j.video_id]["duration"]),
                                             n_frames=int(metas[j.video_id]["n_frames"]), split=j.split)
                                    for j in listed])
    extra_cols = list(dict.fromkeys(k for j in listed for k in j.extras))
    rows = []
    for j in listed:
        m = {**metas[j.video_id], "label": j.label, "group": j.group, "split": j.split}
        rows.append([_fmt(m.get(c, "")) for c in META_COLUMNS] + [j.extras.get(c, "") for c in extra_cols])
    write_csv(out / "metadata.csv", list(META_COLUMNS) + extra_cols, rows)
    write_csv(out / "failures.csv", ["file", "reason"], [list(f) for f in failures])


def _summary(out: Path, listed: list[Job], metas: dict, failures: list, skipped: int, done_seconds: float,
             wall: float, cfg: Config) -> IngestSummary:
    """The counts, face rate, speed and disk use of an ingest."""
    disk = sum((out / f"{j.stem}.npz").stat().st_size for j in listed if (out / f"{j.stem}.npz").exists())
    frames = sum(int(metas[j.video_id]["n_frames"]) for j in listed)
    found = sum(float(metas[j.video_id]["face_rate"]) * int(metas[j.video_id]["n_frames"]) for j in listed)
    return IngestSummary(done=len(listed) - skipped, skipped=skipped, failed=len(failures),
                         total_duration=float(sum(float(metas[j.video_id]["duration"]) for j in listed)),
                         face_rate=found / frames if frames else 0.0, wall_seconds=wall,
                         video_seconds_per_second=done_seconds / wall if wall > 0 else 0.0, failures=failures,
                         disk_bytes=disk, storage=cfg.ingest.storage)


def ingest(source: str | Path, out_dir: str | Path, cfg: Config | None = None, *, workers: int | None = None,
           progress: bool = True, dataset: str | None = None, limit: int | None = None,
           unlabeled: bool = False) -> IngestSummary:
    """Ingest every video of a folder, manifest or public dataset into OUT; write index.csv, metadata.csv,
    failures.csv. ``limit``: a stratified sample of that many videos, seeded by ``cfg.seed``."""
    cfg = cfg or Config()
    codec_for(cfg.ingest.storage)  # a bad ingest.storage fails before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs, failures = list_jobs(source, dataset, unlabeled=unlabeled, limit=limit, seed=cfg.seed)
    settings = _settings(cfg)
    metas: dict[str, dict] = {}
    todo = []
    for job in jobs:
        m = _up_to_date(job, out, settings)
        if m is None:
            todo.append(job)
        else:
            metas[job.video_id] = m
    skipped = len(metas)
    done_seconds = _run_jobs(todo, out, cfg, settings, workers, metas, failures, progress, len(jobs))
    listed = sorted((j for j in jobs if j.video_id in metas), key=lambda j: j.video_id)
    _write_tables(out, listed, metas, failures)
    summary = _summary(out, listed, metas, failures, skipped, done_seconds, time.perf_counter() - start, cfg)
    print(summary)
    for name, reason in failures:
        print(f"  failed: {name}: {reason}")
    return summary
