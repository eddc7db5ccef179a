"""The on-disk format: one ``.npz`` per video plus a CSV index.

Keys of a record (the workbench layout):
    frames      (T, H, W, 3) uint8   face crops (raw storage; the compact storage holds frames_data,
                                     frames_offsets and a `storage` header instead: see workbench.data.storage)
    lip         (T, h, w, 3) uint8   lip crops (likewise lip_data, lip_offsets)
    audio       (T_a, 40) float32    MFCC frames (time-major)
    label       int                  0 REAL, 1 FAKE, -1 unlabelled (e.g. a dataset's test files without labels)
    video_id    str
    group       str                  source identity / source video, for leakage-free splits
    fps         float                frame rate of the kept frames
    timestamps  (T,) float           seconds of each kept frame
    face_found  (T,) bool            the detector really found a face on this frame
    duration    float                seconds
    audio_rate  float                MFCC frames per second (sample_rate / hop_length)
    frame_label (T,) int8            optional: 1 on manipulated frames, 0 elsewhere (partial fakes); absent
                                     means every frame carries the video's label
    audio_wave  (N,) int16           optional: the mono waveform the MFCCs were computed from, y * 32767
    wave_rate   float                its sample rate (16 kHz)

`save_record` writes the compact lossless storage by default (`storage="lossless"`: per-frame lossless
WebP); `storage="jpeg"` is lossy, `storage="raw"` today's uncompressed arrays. Every layout is read,
whole or (`lazy`) frame by frame. The original study's layout is also read unchanged: ``frames``/``lip`` float32 in [0, 1],
``audio``, ``timestamps``, ``label``, ``video_id`` and ignorable extras (``arcface``,
``geometry``, ``phoneme_labels``). Missing metadata gets defaults and one warning.
"""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from workbench.data.storage import (
    BadRecordError,
    StorageError,
    StoredFrames,
    check_offsets,
    codec_for,
    decode_frames,
    encode_frames,
    parse_storage,
    storage_header,
    stored_member,
)

REQUIRED_KEYS = ("frames", "lip", "audio", "label")
COMPACT_KEYS = ("storage", "frames_data", "frames_offsets", "lip_data", "lip_offsets", "audio", "label")
METADATA_KEYS = ("video_id", "group", "fps", "timestamps", "face_found", "duration", "audio_rate", "frame_label",
                 "audio_wave", "wave_rate")
INDEX_COLUMNS = ("path", "video_id", "label", "group", "duration", "n_frames", "split")
DEFAULT_AUDIO_RATE = 16000 / 512
WAVE_SCALE = 32767.0  # audio_wave = round(clip(y, -1, 1) * WAVE_SCALE) as int16


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
    audio_wave: np.ndarray | None = None  # (N,) int16 mono waveform the MFCCs were computed from (WAVE_SCALE)
    wave_rate: float = 16000.0  # samples per second of audio_wave

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


def load_record(path: str | Path, *, warn: bool = True, lazy: bool = False, wave: bool = True) -> VideoRecord:
    """Read and validate one npz (any layout); raise BadRecordError with the reason.

    With `lazy`, crops stored uncompressed as uint8 or as per-frame images (what `save_record` writes) stay
    on disk as StoredFrames, read frame by frame on demand (the first and last frame are decoded here, as a
    check); everything else is read and checked as usual. `wave=False` leaves the waveform unread.
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
        compact = "storage" in keys
        missing = [k for k in (COMPACT_KEYS if compact else REQUIRED_KEYS) if k not in keys]
        if missing:
            raise BadRecordError(path, f"missing keys {missing}; found {sorted(keys)}")
        try:
            frames, lip = _load_crops(path, z, lazy)
            audio = np.asarray(z["audio"])
            label_raw = _scalar(z, "label")
        except StorageError as e:
            raise BadRecordError(path, str(e)) from None
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise BadRecordError(path, f"corrupt array data ({type(e).__name__}: {e})") from e
        audio, label = _check_core(path, frames, lip, audio, label_raw)
        rec = _with_metadata(path, z, keys, frames, lip, audio, label, warn, wave)
    finally:
        z.close()
    return rec


def _load_crops(path: Path, z, lazy: bool) -> tuple:
    """frames and lip of any layout: arrays, or StoredFrames with `lazy` where the member can be read in place."""
    if "storage" not in z.files:  # raw uint8, or the original float32 (zip-compressed: read whole)
        out = []
        for key in ("frames", "lip"):
            m = stored_member(path, z.zip, key, ndim=4) if lazy else None
            out.append(StoredFrames(path, *m, key=key) if m else np.asarray(z[key]))
        return tuple(out)
    info = parse_storage(str(_scalar(z, "storage")))
    out = []
    for key in ("frames", "lip"):
        if key not in info["shapes"]:
            raise StorageError(f"'storage' gives no shape for '{key}'")
        shape = info["shapes"][key]
        m = stored_member(path, z.zip, f"{key}_data", ndim=1) if lazy else None
        if m is not None:
            offsets = check_offsets(z[f"{key}_offsets"], shape[0], m[1][0], key)
            crops = StoredFrames(path, m[0], shape, info["codec"], offsets, key=key)
            for k in {0, shape[0] - 1} if shape[0] else ():
                crops[k]  # a check: the first and last frame decode to the shape the header gives
        else:
            data = np.asarray(z[f"{key}_data"])
            if data.dtype != np.uint8 or data.ndim != 1:
                raise StorageError(f"'{key}_data' has dtype {data.dtype} and shape {data.shape}, expected (N,) uint8")
            offsets = check_offsets(z[f"{key}_offsets"], shape[0], data.size, key)
            crops = decode_frames(data, offsets, info["codec"], shape, key)
        out.append(crops)
    return tuple(out)


def _check_core(path: Path, frames, lip, audio: np.ndarray, label_raw) -> tuple[np.ndarray, int]:
    """Shapes of the crops and the MFCC, finite audio, a 0/1 label: (audio as float32, label)."""
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
    try:
        label = int(label_raw)
    except (TypeError, ValueError):
        raise BadRecordError(path, f"'label' is {label_raw!r}, expected 0 (REAL) or 1 (FAKE), or -1 (unlabelled)") from None
    if label not in (0, 1, -1):
        raise BadRecordError(path, f"'label' is {label}, expected 0 (REAL) or 1 (FAKE), or -1 (unlabelled)")
    return audio, label


def _with_metadata(path: Path, z, keys: set, frames, lip, audio: np.ndarray, label: int, warn: bool,
                   wave: bool) -> VideoRecord:
    """The record with its metadata read and checked (defaults, and one warning, where it is missing)."""
    T = frames.shape[0]
    frames = _to_uint8(frames, "frames", path)
    lip = _to_uint8(lip, "lip", path)
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
    audio_wave = _audio_wave(z, path) if wave and "audio_wave" in keys else None
    extras = {k: k for k in keys - set(REQUIRED_KEYS) - set(COMPACT_KEYS) - set(METADATA_KEYS)}
    if defaulted and warn:
        warnings.warn(f"{path.name}: metadata {defaulted} missing, using defaults", stacklevel=3)
    return VideoRecord(frames=frames, lip=lip, audio=audio, label=label, video_id=str(video_id), group=str(group),
                       fps=float(fps), timestamps=ts, face_found=face_found, duration=float(duration),
                       audio_rate=float(_scalar(z, "audio_rate", DEFAULT_AUDIO_RATE)), path=str(path), extras=extras,
                       frame_label=_frame_label(z, path, T, label) if "frame_label" in keys else None,
                       audio_wave=audio_wave, wave_rate=float(_scalar(z, "wave_rate", 16000.0)))


def _audio_wave(z, path: Path) -> np.ndarray:
    """The optional int16 waveform, checked."""
    w = np.asarray(z["audio_wave"])
    if w.dtype != np.int16 or w.ndim != 1 or w.size == 0:
        raise BadRecordError(path, f"'audio_wave' has dtype {w.dtype} and shape {w.shape}, expected (N,) int16 with N > 0")
    return w


def _frame_label(z, path: Path, T: int, label: int) -> np.ndarray:
    """The optional per-frame labels, checked against the frame count and the video label."""
    fl = np.asarray(z["frame_label"])
    if fl.shape != (T,):
        raise BadRecordError(path, f"'frame_label' has shape {fl.shape}, expected ({T},)")
    if not np.isin(fl, (0, 1)).all():
        raise BadRecordError(path, f"'frame_label' must hold 0 (real) and 1 (manipulated), got {np.unique(fl)[:5]}")
    n_fake = int(fl.sum())
    if label == -1 and n_fake:
        raise BadRecordError(path, f"'frame_label' marks {n_fake} frame(s) manipulated but 'label' is -1 (unlabelled)")
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


def save_record(path: str | Path, rec: VideoRecord, storage: str = "lossless", quality: int = 95,
                compress: bool = False, encoded: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Write a record atomically (temp file + rename), its crops stored as `storage`.

    lossless (per-frame lossless WebP, the default), png, jpeg (lossy, at `quality`) or raw (uncompressed
    uint8 arrays; `compress` deflates those, which makes them unreadable frame by frame). Compact crops
    are written uncompressed inside the npz, so each frame can be read in place. `encoded` gives crops
    already encoded with the storage's codec, {key: (data, offsets)} (the record's arrays then only give
    the shapes), e.g. to write many records from a few encoded frames.
    """
    codec = codec_for(storage)
    payload = dict(
        audio=np.ascontiguousarray(rec.audio, dtype=np.float32),
        label=np.int64(rec.label), video_id=np.str_(rec.video_id), group=np.str_(rec.group),
        fps=np.float64(rec.fps), timestamps=np.asarray(rec.timestamps, dtype=np.float64),
        face_found=np.asarray(rec.face_found, dtype=bool), duration=np.float64(rec.duration),
        audio_rate=np.float64(rec.audio_rate),
    )
    if codec is None:
        payload["frames"] = np.ascontiguousarray(rec.frames, dtype=np.uint8)
        payload["lip"] = np.ascontiguousarray(rec.lip, dtype=np.uint8)
    else:
        for key in ("frames", "lip"):
            done = (encoded or {}).get(key)
            if done is not None and len(done[1]) != len(getattr(rec, key)) + 1:
                raise ValueError(f"encoded '{key}' has {len(done[1]) - 1} frames, the record {len(getattr(rec, key))}")
            payload[f"{key}_data"], payload[f"{key}_offsets"] = done or encode_frames(getattr(rec, key), codec, quality)
        payload["storage"] = np.str_(storage_header(codec, quality if codec == "jpeg" else None,
                                                    {"frames": rec.frames.shape, "lip": rec.lip.shape}))
    if rec.frame_label is not None:
        payload["frame_label"] = np.asarray(rec.frame_label, dtype=np.int8)
    if rec.audio_wave is not None:
        payload["audio_wave"] = np.asarray(rec.audio_wave, dtype=np.int16)
        payload["wave_rate"] = np.float64(rec.wave_rate)
    save = np.savez_compressed if compress and codec is None else np.savez
    return atomic_write(path, lambda tmp: save(tmp, **payload))


# ------------------------------------------------------------------ index
@dataclass
class IndexRow:
    path: str  # relative to the index's folder (or absolute)
    video_id: str
    label: int
    group: str
    duration: float
    n_frames: int
    split: str = "train"  # train | test (held out) | any other name of the pool | unlabeled (label -1)


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
    ``n_mfcc`` when given); all bad files are listed, not just the first. Records
    are opened lazily (metadata read and checked, crops checked in place: the first and last frame decoded),
    so validating a large dataset holds one record's metadata at a time. ``on_valid(row, record)`` sees each
    record that passed (its crops on disk where the layout allows).
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
                    rec = load_record(resolve(root, r.path), warn=False, lazy=True, wave=False)
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
                    rec = load_record(p, lazy=True, wave=False)
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
    test/ layout), `unlabeled` under unlabeled/ (its labels never read), else `train` (train/ and val/ alike)."""
    top = relpath.parts[0].lower() if len(relpath.parts) > 1 else ""
    return top if top in ("test", "unlabeled") else "train"


def resolve(root: str | Path, relpath: str) -> Path:
    """A path from the index resolved against the dataset folder."""
    p = Path(relpath)
    return p if p.is_absolute() else Path(root) / p
