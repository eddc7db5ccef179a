"""The on-disk format: one ``.npz`` per video plus a CSV index.

Keys of a record (the workbench layout):
    frames      (T, H, W, 3) uint8   face crops
    lip         (T, h, w, 3) uint8   lip crops
    audio       (T_a, 40) float32    MFCC frames (time-major)
    label       int                  0 REAL, 1 FAKE
    video_id    str
    group       str                  source identity / source video, for leakage-free splits
    fps         float                frame rate of the kept frames
    timestamps  (T,) float           seconds of each kept frame
    face_found  (T,) bool            the detector really found a face on this frame
    duration    float                seconds
    audio_rate  float                MFCC frames per second (sample_rate / hop_length)

The original study's layout is also read unchanged: ``frames``/``lip`` float32 in [0, 1],
``audio``, ``timestamps``, ``label``, ``video_id`` and ignorable extras (``arcface``,
``geometry``, ``phoneme_labels``). Missing metadata gets defaults and one warning.
"""
from __future__ import annotations

import csv
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

REQUIRED_KEYS = ("frames", "lip", "audio", "label")
INDEX_COLUMNS = ("path", "video_id", "label", "group", "duration", "n_frames", "split")
DEFAULT_AUDIO_RATE = 16000 / 512
LABELS = {0: "REAL", 1: "FAKE"}


class BadRecordError(ValueError):
    """A record file that cannot be used; carries the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(path).name}: {reason}")


@dataclass
class VideoRecord:
    """One video in memory: uint8 frames, MFCC audio and metadata."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    lip: np.ndarray  # (T, h, w, 3) uint8
    audio: np.ndarray  # (T_a, n_mfcc) float32
    label: int
    video_id: str
    group: str
    fps: float
    timestamps: np.ndarray  # (T,) float64 seconds
    face_found: np.ndarray  # (T,) bool
    duration: float
    audio_rate: float = DEFAULT_AUDIO_RATE
    path: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def _to_uint8(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise BadRecordError(path, f"'{key}' contains NaN or inf")
        hi = float(x.max()) if x.size else 0.0
        scale = 255.0 if hi <= 1.0 + 1e-6 else 1.0  # original layout: float32 in [0, 1]
        return np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)
    raise BadRecordError(path, f"'{key}' has dtype {x.dtype}, expected uint8 or float in [0, 1]")


def _scalar(z, key: str, default=None):
    if key not in z.files:
        return default
    v = z[key]
    if v.dtype == object:
        v = v.item() if v.shape == () else v
    return v.item() if isinstance(v, np.ndarray) and v.shape == () else v


def load_record(path: str | Path, *, warn: bool = True) -> VideoRecord:
    """Read and validate one npz (either layout); raise BadRecordError with the reason."""
    path = Path(path)
    if not path.exists():
        raise BadRecordError(path, "file does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BadRecordError(path, f"unreadable npz ({type(e).__name__}: {e})") from e
    try:
        keys = set(z.files)
        missing = [k for k in REQUIRED_KEYS if k not in keys]
        if missing:
            raise BadRecordError(path, f"missing keys {missing}; found {sorted(keys)}")
        try:
            frames = np.asarray(z["frames"])
            lip = np.asarray(z["lip"])
            audio = np.asarray(z["audio"])
            label_raw = _scalar(z, "label")
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise BadRecordError(path, f"corrupt array data ({type(e).__name__}: {e})") from e
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise BadRecordError(path, f"'frames' has shape {frames.shape}, expected (T, H, W, 3)")
        if lip.ndim != 4 or lip.shape[-1] != 3:
            raise BadRecordError(path, f"'lip' has shape {lip.shape}, expected (T, h, w, 3)")
        T = frames.shape[0]
        if T == 0:
            raise BadRecordError(path, "zero frames")
        if lip.shape[0] != T:
            raise BadRecordError(path, f"'lip' has {lip.shape[0]} frames but 'frames' has {T}")
        if audio.ndim != 2 or audio.shape[0] == 0:
            raise BadRecordError(path, f"'audio' has shape {audio.shape}, expected (T_a, n_mfcc) with T_a > 0")
        if not np.issubdtype(audio.dtype, np.number):
            raise BadRecordError(path, f"'audio' has dtype {audio.dtype}")
        audio = audio.astype(np.float32, copy=False)
        if not np.isfinite(audio).all():
            raise BadRecordError(path, "'audio' contains NaN or inf")
        frames = _to_uint8(frames, "frames", path)
        lip = _to_uint8(lip, "lip", path)
        try:
            label = int(label_raw)
        except (TypeError, ValueError):
            raise BadRecordError(path, f"'label' is {label_raw!r}, expected 0 (REAL) or 1 (FAKE)") from None
        if label not in (0, 1):
            raise BadRecordError(path, f"'label' is {label}, expected 0 (REAL) or 1 (FAKE)")

        defaulted = []
        video_id = _scalar(z, "video_id")
        if video_id is None:
            video_id, _ = path.stem, defaulted.append("video_id")
        group = _scalar(z, "group")
        if group is None:
            group, _ = str(video_id), defaulted.append("group")
        fps = _scalar(z, "fps")
        ts = np.asarray(z["timestamps"], dtype=np.float64) if "timestamps" in keys else None
        if ts is not None and ts.shape != (T,):
            raise BadRecordError(path, f"'timestamps' has shape {ts.shape}, expected ({T},)")
        if ts is not None and not np.isfinite(ts).all():
            raise BadRecordError(path, "'timestamps' contains NaN or inf")
        if fps is None:
            defaulted.append("fps")
            fps = float(1.0 / np.median(np.diff(ts))) if ts is not None and T > 1 and np.all(np.diff(ts) > 0) else 30.0
        if ts is None:
            defaulted.append("timestamps")
            ts = np.arange(T, dtype=np.float64) / float(fps)
        face_found = np.asarray(z["face_found"], dtype=bool) if "face_found" in keys else None
        if face_found is None:
            face_found, _ = np.ones(T, dtype=bool), defaulted.append("face_found")
        elif face_found.shape != (T,):
            raise BadRecordError(path, f"'face_found' has shape {face_found.shape}, expected ({T},)")
        duration = _scalar(z, "duration")
        if duration is None:
            defaulted.append("duration")
            duration = float(ts[-1] + 1.0 / float(fps))
        audio_rate = _scalar(z, "audio_rate", DEFAULT_AUDIO_RATE)
        extras = {k: k for k in keys - set(REQUIRED_KEYS) - {
            "video_id", "group", "fps", "timestamps", "face_found", "duration", "audio_rate"}}
    finally:
        z.close()
    if defaulted and warn:
        warnings.warn(f"{path.name}: metadata {defaulted} missing, using defaults", stacklevel=2)
    return VideoRecord(frames=frames, lip=lip, audio=audio, label=label, video_id=str(video_id),
                       group=str(group), fps=float(fps), timestamps=ts, face_found=face_found,
                       duration=float(duration), audio_rate=float(audio_rate), path=str(path),
                       extras=extras)


def save_record(path: str | Path, rec: VideoRecord, compress: bool = False) -> Path:
    """Write a record atomically (temp file + rename); uncompressed by default so it can be mmapped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(
        frames=np.ascontiguousarray(rec.frames, dtype=np.uint8),
        lip=np.ascontiguousarray(rec.lip, dtype=np.uint8),
        audio=np.ascontiguousarray(rec.audio, dtype=np.float32),
        label=np.int64(rec.label), video_id=np.str_(rec.video_id), group=np.str_(rec.group),
        fps=np.float64(rec.fps), timestamps=np.asarray(rec.timestamps, dtype=np.float64),
        face_found=np.asarray(rec.face_found, dtype=bool), duration=np.float64(rec.duration),
        audio_rate=np.float64(rec.audio_rate),
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    os.close(fd)
    try:
        (np.savez_compressed if compress else np.savez)(tmp, **payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------ index
@dataclass
class IndexRow:
    path: str  # relative to the index's folder (or absolute)
    video_id: str
    label: int
    group: str
    duration: float
    n_frames: int
    split: str = "train"  # train | test


def write_index(path: str | Path, rows: Iterable[IndexRow]) -> Path:
    """Write the CSV index atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(INDEX_COLUMNS)
        for r in rows:
            w.writerow([r.path, r.video_id, int(r.label), r.group, f"{r.duration:.4f}", int(r.n_frames), r.split])
    os.replace(tmp, path)
    return path


def read_index(path: str | Path) -> list[IndexRow]:
    """Read a CSV index; missing optional columns get defaults."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise ValueError(f"{path}: an index needs at least the columns 'path' and 'label', got {reader.fieldnames}")
        rows = []
        for r in reader:
            p = r["path"]
            rows.append(IndexRow(path=p, video_id=r.get("video_id") or Path(p).stem, label=int(r["label"]),
                                 group=r.get("group") or r.get("video_id") or Path(p).stem,
                                 duration=float(r.get("duration") or 0.0), n_frames=int(float(r.get("n_frames") or 0)),
                                 split=(r.get("split") or "train").strip()))
    return rows


def row_for(rec: VideoRecord, relpath: str, split: str = "train") -> IndexRow:
    """The index row describing a record."""
    return IndexRow(path=relpath, video_id=rec.video_id, label=rec.label, group=rec.group,
                    duration=rec.duration, n_frames=rec.n_frames, split=split)


@dataclass
class ScanResult:
    rows: list[IndexRow]
    failures: list[tuple[str, str]]  # (file, reason)


def scan_folder(root: str | Path, index: str = "index.csv", validate: bool = False) -> ScanResult:
    """List a dataset folder: its index when present, else every npz indexed on the fly.

    With ``validate`` every file is loaded and checked; all bad files are listed, not just the first.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    idx = root / index
    failures: list[tuple[str, str]] = []
    if idx.exists():
        rows = read_index(idx)
        if validate:
            good = []
            for r in rows:
                try:
                    load_record(resolve(root, r.path), warn=False)
                    good.append(r)
                except BadRecordError as e:
                    failures.append((r.path, e.reason))
            rows = good
    else:
        files = sorted(root.rglob("*.npz"))
        if not files:
            raise FileNotFoundError(f"dataset folder {root} has no {index} and no .npz files")
        rows = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for p in files:
                try:
                    rec = load_record(p)
                    rows.append(row_for(rec, str(p.relative_to(root))))
                except BadRecordError as e:
                    failures.append((str(p.relative_to(root)), e.reason))
        if caught:
            warnings.warn(f"{root}: {len(caught)} file(s) lack metadata and use defaults "
                          f"(first: {caught[0].message})", stacklevel=2)
    if not rows and not failures:
        raise FileNotFoundError(f"dataset folder {root} lists no videos")
    return ScanResult(rows=rows, failures=failures)


def resolve(root: str | Path, relpath: str) -> Path:
    """A path from the index resolved against the dataset folder."""
    p = Path(relpath)
    return p if p.is_absolute() else Path(root) / p
