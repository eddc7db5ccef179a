"""How a record's crops are stored: uncompressed uint8 arrays, or one encoded image per frame.

Compact layout (what `records.save_record` writes by default): for each of ``frames`` and ``lip``
    <key>_data      (N,) uint8     the frames' encoded images, one after another
    <key>_offsets   (T+1,) int64   frame k is <key>_data[offsets[k]:offsets[k+1]]
plus one ``storage`` string (JSON: codec, quality, each crop array's shape). The npz itself is not
zip-compressed, so a frame's bytes lie at a fixed place in the file and one frame (or a run of frames)
is read and decoded without touching the others.

Codecs (measured on demo and real-face crops; `workbench bench --parts scale` prints the table):
    webp   lossless WebP (the default, "lossless"): 4-5x smaller than raw at 224 px, decodes in ~1 ms.
           Written with libwebp through Pillow at method 0 (OpenCV's own lossless WebP writer uses a
           slow method: ~70 ms a face, which would make ingest slower than real time); read with OpenCV.
    png    lossless PNG (zlib level 3): 3-3.5x, encodes and decodes slower than WebP at method 0.
    jpeg   lossy JPEG at `quality` (4:2:0), for users who accept the loss: ~10-15x at quality 95.
Images hold RGB; OpenCV's BGR order is converted on both sides, so a decoded crop equals the stored one.
"""
from __future__ import annotations

import io
import json
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

CODECS = ("webp", "png", "jpeg")
STORAGE_CODEC = {"lossless": "webp", "webp": "webp", "png": "png", "jpeg": "jpeg", "raw": None}
LOSSLESS = ("webp", "png")
PNG_LEVEL = 3
WEBP_METHOD = 0  # libwebp effort 0-6: 0 is ~10x faster to write than 4 and ~15% larger


class BadRecordError(ValueError):
    """A record file that cannot be used; carries the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(path).name}: {reason}")


class StorageError(ValueError):
    """Stored crops that cannot be read (the file is not known here); callers raise BadRecordError with it."""


def codec_for(storage: str) -> str | None:
    """The image codec of a storage name (lossless, webp, png, jpeg), None for raw; ValueError otherwise."""
    if storage not in STORAGE_CODEC:
        raise ValueError(f"storage must be one of {sorted(STORAGE_CODEC)}, got {storage!r}")
    return STORAGE_CODEC[storage]


def encode_frame(frame: np.ndarray, codec: str, quality: int = 95) -> bytes:
    """One (H, W, 3) uint8 RGB crop as an image file's bytes."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if codec == "webp":
        from PIL import Image  # only writers need Pillow
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="WEBP", lossless=True, method=WEBP_METHOD, quality=0, exact=True)
        return buf.getvalue()
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if codec == "png":
        ok, enc = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    elif codec == "jpeg":
        ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise ValueError(f"unknown codec {codec!r}; known: {CODECS}")
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {frame.shape} crop as {codec}")
    return enc.tobytes()


def encode_frames(frames, codec: str, quality: int = 95, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) crops -> (concatenated image bytes (N,) uint8, offsets (T+1,) int64).

    Frames are encoded by `threads` threads (the encoders release the GIL); by default as many as OpenCV may
    use in this process (ingest gives each of its workers cores / workers).
    """
    n = max(1, threads if threads is not None else cv2.getNumThreads())
    frames = frames if isinstance(frames, np.ndarray) else np.asarray(frames)  # one reader: StoredFrames is not thread-safe
    with ThreadPoolExecutor(n) as pool:
        blobs = list(pool.map(lambda k: encode_frame(frames[k], codec, quality), range(len(frames))))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def decode_frame(buf, codec: str, shape: tuple[int, ...], out: np.ndarray | None = None, where: str = "") -> np.ndarray:
    """One stored image back to an (H, W, 3) uint8 RGB crop of `shape`; StorageError when it does not decode."""
    img = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise StorageError(f"{where} does not decode as {codec} ({len(buf)} bytes): corrupt data")
    if img.shape != tuple(shape):
        raise StorageError(f"{where} decodes to shape {img.shape}, the record says {tuple(shape)}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=out)


def decode_frames(data: np.ndarray, offsets: np.ndarray, codec: str, shape: tuple[int, ...], key: str) -> np.ndarray:
    """Every frame of an in-memory encoded member: (T, H, W, 3) uint8."""
    out = np.empty(shape, dtype=np.uint8)
    for k in range(shape[0]):
        decode_frame(data[offsets[k]:offsets[k + 1]], codec, shape[1:], out[k], f"'{key}' frame {k}")
    return out


def storage_header(codec: str, quality: int | None, shapes: dict[str, tuple[int, ...]]) -> str:
    """The record's ``storage`` string."""
    return json.dumps({"codec": codec, "quality": quality, "shapes": {k: list(v) for k, v in shapes.items()}})


def parse_storage(text: str) -> dict:
    """The ``storage`` string checked: a known codec and a (T, H, W, 3) shape per crop key; StorageError otherwise."""
    try:
        info = json.loads(text)
        codec, shapes = info["codec"], {k: tuple(int(s) for s in v) for k, v in info["shapes"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise StorageError(f"'storage' is not a valid header ({type(e).__name__}: {e})") from None
    if codec not in CODECS:
        raise StorageError(f"'storage' names codec {codec!r}; known: {CODECS}")
    for k, s in shapes.items():
        if len(s) != 4 or s[-1] != 3:
            raise StorageError(f"'storage' gives '{k}' the shape {s}, expected (T, H, W, 3)")
    return {"codec": codec, "quality": info.get("quality"), "shapes": shapes}


def check_offsets(offsets: np.ndarray, n_frames: int, n_bytes: int, key: str) -> np.ndarray:
    """Frame offsets of an encoded member: (T+1,) integers from 0, non-decreasing, ending at the data's size."""
    offsets = np.asarray(offsets)
    if offsets.shape != (n_frames + 1,) or not np.issubdtype(offsets.dtype, np.integer):
        raise StorageError(f"'{key}_offsets' has shape {offsets.shape} and dtype {offsets.dtype}, "
                           f"expected ({n_frames + 1},) integers")
    if n_frames and (offsets[0] != 0 or np.any(np.diff(offsets) <= 0) or offsets[-1] != n_bytes):
        raise StorageError(f"'{key}_offsets' do not cut '{key}_data' ({n_bytes} bytes) into {n_frames} images "
                           f"(first {offsets[0]}, last {offsets[-1]}, or an empty frame)")
    return offsets.astype(np.int64)


def stored_member(path: Path, zf: zipfile.ZipFile, key: str, ndim: int | None = None) -> tuple[int, tuple[int, ...]] | None:
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
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
        except ValueError:
            return None
        if fortran or dtype != np.uint8 or (ndim is not None and len(shape) != ndim) \
                or f.tell() + int(np.prod(shape)) > path.stat().st_size:
            return None
        return f.tell(), tuple(shape)


class StoredFrames:
    """(T, H, W, C) uint8 crops of a record, read from the file on demand, frame by frame.

    Raw members are read as bytes; encoded ones (``codec`` and the frames' ``offsets`` into the member) are
    read and decoded frame by frame. Indexing with an int, a slice or an index array reads just those
    frames (contiguous runs in one read) and returns an in-memory array, as numpy indexing would; the
    video is never all in memory.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, path: str | Path, offset: int, shape: tuple[int, ...], codec: str | None = None,
                 offsets: np.ndarray | None = None, key: str = "frames"):
        self.path = str(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.codec, self.offsets, self.key = codec, offsets, key
        self._frame_bytes = int(np.prod(self.shape[1:]))
        self._file = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:  # picklable for DataLoader workers: the file is reopened there
        return {**self.__dict__, "_file": None}

    def __del__(self):
        if getattr(self, "_file", None) is not None:
            self._file.close()

    def close(self) -> None:
        """Close the file now (it reopens on the next read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read_bytes(self, start: int, n: int, view: memoryview, what: str) -> None:
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)
        self._file.seek(self.offset + start)
        done = 0
        while done < n:
            got = self._file.readinto(view[done:n])
            if not got:
                raise BadRecordError(self.path, f"file ends inside {what}")
            done += got

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frames start..stop-1 (into `out` when given, a C-contiguous uint8 array of the right shape)."""
        n = max(0, stop - start)
        if out is None:
            out = np.empty((n,) + self.shape[1:], dtype=np.uint8)
        if n == 0:
            return out
        what = f"'{self.key}' data (frames {start}..{stop - 1})"
        if self.codec is None:
            self._read_bytes(start * self._frame_bytes, out.nbytes, memoryview(out).cast("B"), what)
            return out
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        buf = bytearray(b - a)
        self._read_bytes(a, b - a, memoryview(buf), what)
        try:
            for k in range(n):
                lo, hi = int(self.offsets[start + k]) - a, int(self.offsets[start + k + 1]) - a
                decode_frame(memoryview(buf)[lo:hi], self.codec, self.shape[1:], out[k], f"'{self.key}' frame {start + k}")
        except StorageError as e:
            raise BadRecordError(self.path, str(e)) from None
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
