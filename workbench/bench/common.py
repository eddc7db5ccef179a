"""Helpers of `workbench bench` that need no torch: statistics, memory of a process (tree), the bench's data.

This module imports no torch at import time (nor any workbench module that does): the orchestrator
(`workbench.bench.bench`), the launcher (`workbench.bench.launch`) and the CLI import it before the runtime
environment of the fast path (`launch.FAST_ENV`) is set, and that must be in place before torch is imported.
"""
from __future__ import annotations

import os
import subprocess
import threading
import wave
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config import Config
from workbench.data.records import VideoRecord, row_for, save_record, write_index
from workbench.synthetic.toydata import toy_record

MIN_TIMED_STEPS = 12  # training steps timed per run of the scale part at least (after the first, which is start-up)


# ------------------------------------------------------------------ statistics, configuration
def stats(values: list[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements."""
    v = [float(x) for x in values]
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": float(np.median(v)), "min": min(v), "max": max(v), "n": len(v), "values": v}


def bench_config(spec: dict) -> Config:
    """The configuration of a measurement: its spec's sizes, device, workers and overrides."""
    return Config.load(None, list(spec.get("set", [])) + [
        f"data.face_size={spec['face_size']}", f"data.lip_size={spec['lip_size']}",
        f"data.max_frames={spec['frames']}", f"train.batch_size={spec['batch']}", f"train.device={spec['device']}",
        "train.progress=false", f"data.num_workers={spec.get('workers', 0)}",
        f"train.compile={str(bool(spec.get('compile', False))).lower()}", f"seed={spec.get('seed', 0)}"])


# ------------------------------------------------------------------ memory of this process and of its tree
def proc_status(key: str) -> float | None:
    """A memory line of /proc/self/status in MiB (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class TreeMemory:
    """Peak PSS of this process and all its descendants over a `with` block, sampled every `interval` s (Linux)."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak_mb, self.samples = interval, 0.0, 0
        self._stop = threading.Event()

    def sample(self) -> float:
        todo, total = [os.getpid()], 0.0
        while todo:
            pid = todo.pop()
            total += _pss_mb(pid)
            todo += _children(pid)
        self.peak_mb, self.samples = max(self.peak_mb, total), self.samples + 1
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "TreeMemory":
        self.start_mb = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# ------------------------------------------------------------------ data
def write_original_npz(path: str | Path, rec, level: int = 1) -> Path:
    """A record in the original study's layout: compressed npz, frames/lip float32 in [0, 1].

    Written member by member in chunks, so a long video never exists as float32 in this process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level, allowZip64=True) as zf:
        for key in ("frames", "lip"):
            x = getattr(rec, key)
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                                                         "fortran_order": False, "shape": tuple(x.shape)})
                for s in range(0, len(x), 64):
                    f.write((np.asarray(x[s:s + 64]).astype(np.float32) / np.float32(255.0)).tobytes())
        small = {"audio": rec.audio.astype(np.float32), "timestamps": np.asarray(rec.timestamps, np.float64),
                 "label": np.int64(rec.label), "video_id": np.str_(rec.video_id), "fps": np.float64(rec.fps)}
        for key, arr in small.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
    return path


def make_training_data(root: Path, n_clips: int, frames: int, face: int, lip: int, level: int, seed: int) -> dict:
    """`n_clips` toy videos of `frames` frames, as uint8 records (fast) and compressed float32 npz (naive)."""
    rng = np.random.default_rng(seed)
    fast, naive = root / "train_uint8", root / "train_float32"
    rows = []
    for i in range(n_clips):
        vid = f"clip{i:03d}"
        rec = toy_record(vid, i % 2, frames, face=face, lip=lip, group=f"id{i % 4}", rng=rng)
        save_record(fast / f"{vid}.npz", rec)
        write_original_npz(naive / f"{vid}.npz", rec, level)
        rows.append(row_for(rec, f"{vid}.npz"))
    write_index(fast / "index.csv", rows)
    write_index(naive / "index.csv", rows)
    return {"fast": str(fast), "naive": str(naive), "clips": n_clips, "frames": frames}


def make_long_record(n: int, face: int, lip: int, seed: int, pool: int = 128):
    """A toy video of n frames at 30 fps: `pool` distinct frames cycled (cheap to make, still incompressible)."""
    base = toy_record("long", 0, min(n, pool), face=face, lip=lip, rng=np.random.default_rng(seed))
    k = np.arange(n) % base.n_frames
    duration = n / base.fps
    n_audio = int(np.ceil(duration * base.audio_rate)) + 1
    audio = base.audio[np.arange(n_audio) % base.audio.shape[0]]
    return VideoRecord(frames=base.frames[k], lip=base.lip[k], audio=audio, label=0, video_id="long",
                       group="long", fps=base.fps, timestamps=np.arange(n) / base.fps,
                       face_found=np.ones(n, dtype=bool), duration=duration, audio_rate=base.audio_rate)


def make_ingest_clip(path: str | Path, seconds: float = 10.0, width: int = 1920, height: int = 1080,
                     fps: float = 30.0, sample_rate: int = 44100, seed: int = 0) -> Path:
    """An H.264/AAC mp4: a real face (skimage's astronaut) moving over a textured background, with a voice-like sound.

    OpenCV, imageio-ffmpeg and scikit-image are imported here: the ingest stack is optional (the GPU image lacks it).
    """
    import cv2
    import imageio_ffmpeg
    from skimage import data
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = int(min(height, width) * 0.55) // 2 * 2
    face = cv2.resize(data.astronaut(), (s, s), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:height, 0:width]
    bg = np.stack([60 + 80 * yy / height, 90 + 60 * xx / width, 120 + 0 * xx], -1)
    bg = np.clip(bg + rng.normal(0, 8, bg.shape), 0, 255).astype(np.uint8)
    n_samples = int(seconds * sample_rate)
    t = np.arange(n_samples) / sample_rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) ** 2
    audio = 0.3 * voice / np.abs(voice).max() + 0.01 * rng.normal(size=n_samples)
    wav = path.with_suffix(".wav")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", f"{fps}", "-i", "-", "-i", str(wav), "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
           "-shortest", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for k in range(int(round(seconds * fps))):
            frame = bg.copy()
            x = int((width - s) * (0.5 + 0.35 * np.sin(2 * np.pi * k / (4 * fps))))
            y = int((height - s) * (0.5 + 0.3 * np.sin(2 * np.pi * k / (3 * fps))))
            frame[y:y + s, x:x + s] = face
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed making the ingest clip: {err.strip()}")
    wav.unlink(missing_ok=True)
    return path

