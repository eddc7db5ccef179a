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
    frame_label (T,) int8            optional: 1 on manipulated frames, 0 elsewhere (partial fakes); absent
                                     means every frame carries the video's label

The original study's layout is also read unchanged: ``frames``/``lip`` float32 in [0, 1],
``audio``, ``timestamps``, ``label``, ``video_id`` and ignorable extras (``arcface``,
``geometry``, ``phoneme_labels``). Missing metadata gets defaults and one warning.
"""
from __future__ import annotations

import csv
import json
import math
import os
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

REQUIRED_KEYS = ("frames", "lip", "audio", "label")
INDEX_COLUMNS = ("path", "video_id", "label", "group", "duration", "n_frames", "split")
DEFAULT_AUDIO_RATE = 16000 / 512


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
    frame_label: np.ndarray | None = None  # (T,) int8, 1 on manipulated frames; None: every frame has `label`

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    def frame_labels(self) -> np.ndarray:
        """(T,) int64 per-frame labels: the stored ones, else the video label on every frame."""
        if self.frame_label is not None:
            return np.asarray(self.frame_label, dtype=np.int64)
        return np.full(self.n_frames, self.label, dtype=np.int64)


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


def _stored_member(path: Path, zf: zipfile.ZipFile, key: str) -> tuple[int, tuple[int, ...]] | None:
    """(byte offset of the data, shape) of an uncompressed C-order uint8 member `key`.npy that lies whole
    inside the file, else None (the caller then reads it the ordinary way)."""
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
        if fortran or dtype != np.uint8 or f.tell() + int(np.prod(shape)) > path.stat().st_size:
            return None
        return f.tell(), tuple(shape)


def load_record(path: str | Path, *, warn: bool = True, lazy: bool = False) -> VideoRecord:
    """Read and validate one npz (either layout); raise BadRecordError with the reason.

    With `lazy`, crops stored uncompressed as uint8 (what `save_record` writes) stay on disk as
    StoredFrames, read frame by frame on demand; everything else is read and checked as usual.
    """
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
            stored = {k: _stored_member(path, z.zip, k) for k in ("frames", "lip")} if lazy else {}
            frames = StoredFrames(path, *stored["frames"]) if stored.get("frames") else np.asarray(z["frames"])
            lip = StoredFrames(path, *stored["lip"]) if stored.get("lip") else np.asarray(z["lip"])
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
        frame_label = _frame_label(z, path, T, label) if "frame_label" in keys else None
        extras = {k: k for k in keys - set(REQUIRED_KEYS) - {
            "video_id", "group", "fps", "timestamps", "face_found", "duration", "audio_rate", "frame_label"}}
    finally:
        z.close()
    if defaulted and warn:
        warnings.warn(f"{path.name}: metadata {defaulted} missing, using defaults", stacklevel=2)
    return VideoRecord(frames=frames, lip=lip, audio=audio, label=label, video_id=str(video_id),
                       group=str(group), fps=float(fps), timestamps=ts, face_found=face_found,
                       duration=float(duration), audio_rate=float(audio_rate), path=str(path),
                       extras=extras, frame_label=frame_label)


def _frame_label(z, path: Path, T: int, label: int) -> np.ndarray:
    """The optional per-frame labels, checked against the frame count and the video label."""
    fl = np.asarray(z["frame_label"])
    if fl.shape != (T,):
        raise BadRecordError(path, f"'frame_label' has shape {fl.shape}, expected ({T},)")
    if not np.isin(fl, (0, 1)).all():
        raise BadRecordError(path, f"'frame_label' must hold 0 (real) and 1 (manipulated), got {np.unique(fl)[:5]}")
    n_fake = int(fl.sum())
    if label == 0 and n_fake:
        raise BadRecordError(path, f"'frame_label' marks {n_fake} frame(s) manipulated but 'label' is 0 (REAL)")
    if label == 1 and not n_fake:
        raise BadRecordError(path, "'label' is 1 (FAKE) but 'frame_label' marks no frame manipulated")
    return fl.astype(np.int8)


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """`write(tmp)` into a fresh temporary file beside `path` (same suffix), then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _json_clean(o: Any) -> Any:
    """JSON-safe values: NaN and inf become None, numpy scalars Python numbers, keys strings."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {str(k): _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return _json_clean(float(o))
    return o


def write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """Atomic JSON write (NaN becomes null)."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(_json_clean(obj), indent=indent)))


def save_record(path: str | Path, rec: VideoRecord, compress: bool = False) -> Path:
    """Write a record atomically (temp file + rename); uncompressed by default so it can be mmapped."""
    payload = dict(
        frames=np.ascontiguousarray(rec.frames, dtype=np.uint8),
        lip=np.ascontiguousarray(rec.lip, dtype=np.uint8),
        audio=np.ascontiguousarray(rec.audio, dtype=np.float32),
        label=np.int64(rec.label), video_id=np.str_(rec.video_id), group=np.str_(rec.group),
        fps=np.float64(rec.fps), timestamps=np.asarray(rec.timestamps, dtype=np.float64),
        face_found=np.asarray(rec.face_found, dtype=bool), duration=np.float64(rec.duration),
        audio_rate=np.float64(rec.audio_rate),
    )
    if rec.frame_label is not None:
        payload["frame_label"] = np.asarray(rec.frame_label, dtype=np.int8)
    return atomic_write(path, lambda tmp: (np.savez_compressed if compress else np.savez)(tmp, **payload))


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


def write_csv(path: str | Path, header: Iterable, rows: Iterable[Iterable]) -> Path:
    """Write a header and rows as CSV (csv module defaults: minimal quoting, CRLF line ends) atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "x", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    return atomic_write(path, write)


def write_index(path: str | Path, rows: Iterable[IndexRow]) -> Path:
    """Write the CSV index atomically."""
    return write_csv(path, INDEX_COLUMNS, ([r.path, r.video_id, int(r.label), r.group, f"{r.duration:.4f}",
                                            int(r.n_frames), r.split] for r in rows))


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


def check_against(rec: VideoRecord, row: IndexRow | None = None, n_mfcc: int | None = None) -> None:
    """BadRecordError when a loaded record disagrees with its index row's label or with the MFCC count expected."""
    if row is not None and rec.label != row.label:
        raise BadRecordError(rec.path, f"label in the npz ({rec.label}) disagrees with the index ({row.label})")
    if n_mfcc is not None and rec.audio.shape[1] != n_mfcc:
        raise BadRecordError(rec.path, f"'audio' has {rec.audio.shape[1]} MFCC coefficients, the config expects {n_mfcc}")


def scan_folder(root: str | Path, index: str = "index.csv", validate: bool = False,
                on_valid: Callable[[IndexRow, VideoRecord], None] | None = None,
                n_mfcc: int | None = None) -> ScanResult:
    """List a dataset folder: its index when present, else every npz indexed on the fly.

    With ``validate`` every file is loaded and checked (against its index row's label, and against
    ``n_mfcc`` when given); all bad files are listed, not just the first.
    ``on_valid(row, record)`` sees each record that was loaded and passed (e.g. to cache it).
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
                    rec = load_record(resolve(root, r.path), warn=False)
                    check_against(rec, r, n_mfcc)
                except BadRecordError as e:
                    failures.append((r.path, e.reason))
                    continue
                good.append(r)
                if on_valid is not None:
                    on_valid(r, rec)
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
                    check_against(rec, None, n_mfcc)
                except BadRecordError as e:
                    failures.append((str(p.relative_to(root)), e.reason))
                    continue
                rel = p.relative_to(root)
                rows.append(row_for(rec, str(rel), split=split_of(rel)))
                if on_valid is not None:
                    on_valid(rows[-1], rec)
        if caught:
            warnings.warn(f"{root}: {len(caught)} file(s) lack metadata and use defaults "
                          f"(first: {caught[0].message})", stacklevel=2)
    if not rows and not failures:
        raise FileNotFoundError(f"dataset folder {root} lists no videos")
    return ScanResult(rows=rows, failures=failures)


def split_of(relpath: Path) -> str:
    """The split of an unindexed file: `test` under a top-level test/ folder (the original study's train/, val/,
    test/ layout), else `train` (the K-fold pool, train/ and val/ alike)."""
    return "test" if len(relpath.parts) > 1 and relpath.parts[0].lower() == "test" else "train"


def resolve(root: str | Path, relpath: str) -> Path:
    """A path from the index resolved against the dataset folder."""
    p = Path(relpath)
    return p if p.is_absolute() else Path(root) / p
