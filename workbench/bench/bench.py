"""`workbench bench`: the fast path against the naive reference path, measured in the same run.

Three figures, each for both paths and as a ratio, on this machine (CPU or CUDA):

  train   training throughput at the reference settings (batch 8, 50 frames per clip, 224 px faces,
          112 px lips, the full model; forward + backward + optimiser step, data loading included) in
          clips/s and frames/s, achieved GFLOPS (model FLOPs counted with FlopCounterMode) beside a GEMM
          peak measured in the same run, and the projected wall time of the study's protocol
          (917 clips, 5 folds, 15 epochs: 917*4/5 training + 917/5 validation clips per fold-epoch);
  infer   per-frame P(Fake) of one 5,396-frame video, from the stored record to the CSV: seconds and
          peak memory (peak RSS of the process over the run, minus its RSS before; on CUDA also
          torch.cuda.max_memory_allocated);
  ingest  seconds of video per wall-clock second of `workbench.ingest.pipeline` on a 1080p 30 fps clip with
          audio (generated here with ffmpeg: skimage's astronaut moving over a background), one worker
          and all workers, each in a fresh process: as timed by ingest (worker start-up included) and in
          steady state (the marginal rate between a 1-clip and an N-clip run per worker).

The naive path is what the original code did: compressed npz of float32 frames decompressed on every
step, no loader workers, fp32, contiguous (NCHW) convolutions, packed GRUs, the full T x T attention,
long videos held as float32 in memory; the process runs with the runtime's defaults. The fast path is
the workbench's own: `Trainer` on the uint8 clip cache, `predict_files` on a record streamed from disk,
the model's fast kernels (`MMMSBA.use_fast_kernels`), channels-last, autocast where the hardware has
bf16, and a runtime with sleeping (not spinning) idle OpenMP threads and transparent huge pages for
large tensors (FAST_ENV). Each measurement runs in a fresh process (`--in-process` to skip that), so
environments and memory figures do not leak between them.

The bench writes its own data (workbench.synthetic.toydata) into a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

# Runtime settings of the fast path. They must be in the environment before torch is imported.
FAST_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep: spinning ones starve the busy thread on a small/shared CPU
    "THP_MEM_ALLOC_ENABLE": "1",  # transparent huge pages for large CPU tensors: far fewer page faults on fresh activations
}
_USER_ENV = {k: os.environ.get(k) for k in FAST_ENV}  # as the user started us (the naive path keeps these)

STUDY = {"clips": 917, "folds": 5, "epochs": 15}
TARGETS_CPU = {"train_speedup": 3.0, "infer_speedup": 3.0, "infer_memory_ratio": 5.0, "ingest_realtime_per_worker": 3.0}
PARTS = ("train", "infer", "ingest", "scale")


# ------------------------------------------------------------------ small helpers
def stats(values: list[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements."""
    v = [float(x) for x in values]
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": float(np.median(v)), "min": min(v), "max": max(v), "n": len(v), "values": v}


def _proc_status(key: str) -> float | None:
    """A memory line of /proc/self/status in MiB (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of this process over a `with` block: peak RSS minus the RSS at entry (MiB).

    On Linux the kernel's high-water mark is reset at entry (/proc/self/clear_refs), so the peak is the
    block's own; elsewhere ru_maxrss is used (a true peak only in a fresh process). On CUDA the device
    peak (max_memory_allocated) is recorded too.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device

    def __enter__(self) -> "PeakMemory":
        import gc
        gc.collect()
        self.rss0 = _proc_status("VmRSS") or 0.0
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "ru_maxrss"
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.cuda0 = torch.cuda.memory_allocated() / 2**20
        return self

    def __exit__(self, *exc) -> None:
        hwm = _proc_status("VmHWM") if self.method.startswith("VmHWM") else None
        if hwm is None:
            ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            hwm = ru / 2**20 if sys.platform == "darwin" else ru / 1024.0
        self.peak_rss_mb = float(hwm)
        self.peak_mb = max(0.0, float(hwm) - self.rss0)
        self.cuda_peak_mb = None
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()
            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20 - self.cuda0

    def as_dict(self) -> dict[str, Any]:
        return {"peak_mb": self.peak_mb, "peak_rss_mb": self.peak_rss_mb, "rss_before_mb": self.rss0,
                "cuda_peak_mb": self.cuda_peak_mb, "method": self.method}


def _sync(device) -> None:
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def gemm_peak(device: str, dtype_name: str, n: int | None = None, repeats: int = 5) -> dict[str, Any]:
    """Best-of-`repeats` GFLOPS of an n x n x n matrix product (the machine's practical peak for that dtype)."""
    import torch
    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 2048)
    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    a @ b
    _sync(dev)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    return {"gflops": 2 * n**3 / best / 1e9, "dtype": dtype_name, "n": n}


def device_info(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    from workbench.core.runtime import amp_dtype, cpu_supports_bf16
    dev = torch.device(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from workbench.bench.profile import isa_flags
    info = {"type": dev.type, "cpu": cpu, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16": cpu_supports_bf16(), "isa": isa_flags()}
    dt = amp_dtype(dev, True)
    info["amp_dtype"] = str(dt).replace("torch.", "") if dt is not None else None
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["gpu_memory_gb"] = torch.cuda.get_device_properties(dev).total_memory / 1e9
    return info


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
    from workbench.data.records import row_for, save_record, write_index
    from workbench.synthetic.toydata import toy_record
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
    from workbench.data.records import VideoRecord
    from workbench.synthetic.toydata import toy_record
    base = toy_record("long", 0, min(n, pool), face=face, lip=lip, rng=np.random.default_rng(seed))
    k = np.arange(n) % base.n_frames
    duration = n / base.fps
    n_audio = int(np.ceil(duration * base.audio_rate)) + 1
    audio = base.audio[np.arange(n_audio) % base.audio.shape[0]]
    return VideoRecord(frames=base.frames[k], lip=base.lip[k], audio=audio, label=0, video_id="long",
                       group="long", fps=base.fps, timestamps=np.arange(n) / base.fps,
                       face_found=np.ones(n, dtype=bool), duration=duration, audio_rate=base.audio_rate)


def make_checkpoint(path: Path, cfg, seed: int) -> Path:
    """A model checkpoint (random weights, non-trivial BatchNorm statistics) that `load_model` reads."""
    import torch

    from workbench.core.runtime import init_seed
    from workbench.model.mmmsba import MMMSBA
    init_seed(seed)
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, path)
    return path


def make_ingest_clip(path: str | Path, seconds: float = 10.0, width: int = 1920, height: int = 1080,
                     fps: float = 30.0, sample_rate: int = 44100, seed: int = 0) -> Path:
    """An H.264/AAC mp4: a real face (skimage's astronaut) moving over a textured background, with a voice-like sound."""
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


# ------------------------------------------------------------------ the naive reference path
def naive_collate(items: list[dict]) -> dict:
    """`collate` for float32 frames (the original kept frames as float32 all the way)."""
    import torch

    from workbench.data.dataset import collate
    shells = [{**it, "face": it["face"][:, :1, :1].to(torch.uint8), "lip": it["lip"][:, :1, :1].to(torch.uint8)}
              for it in items]
    batch = collate(shells)
    B, T = batch["mask"].shape
    for key in ("face", "lip"):
        x = torch.zeros((B, T) + tuple(items[0][key].shape[1:]), dtype=torch.float32)
        for b, it in enumerate(items):
            x[b, :it[key].shape[0]] = it[key]
        batch[key] = x
    return batch


class NaiveClips:
    """Training clips the original way: every item decompresses its whole float32 npz again."""

    def __init__(self, rows, root: str | Path, cfg, train: bool, seed: int = 0):
        self.rows, self.root, self.cfg, self.train, self.seed, self.epoch = list(rows), Path(root), cfg, train, seed, 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        import torch

        from workbench.data.dataset import clip_from_record, sample_indices
        from workbench.data.records import VideoRecord
        with np.load(self.root / self.rows[i].path) as z:
            frames, lip, audio = z["frames"], z["lip"], z["audio"]
            ts, label, fps = z["timestamps"], int(z["label"]), float(z["fps"])
        rec = VideoRecord(frames=frames, lip=lip, audio=audio, label=label, video_id=self.rows[i].video_id,
                          group="", fps=fps, timestamps=ts, face_found=np.ones(len(frames), bool),
                          duration=len(frames) / fps)
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        item = clip_from_record(rec, sample_indices(rec.n_frames, fps, self.cfg, self.train, rng))
        item["index"] = torch.tensor(i)
        return item


def naive_cnn(cnn, x):
    """The original CNN step: float32 [0, 1] frames (N, H, W, 3) -> contiguous NCHW -> normalise -> conv stack."""
    x = x.permute(0, 3, 1, 2).contiguous()
    return cnn.net((x - cnn.mean / 255.0) / (cnn.std / 255.0))


def naive_forward(model, batch: dict) -> dict:
    """MMMS-BA on a float32 batch the original way (call `model.use_fast_kernels(False)` first)."""
    mask = batch["mask"]
    B, T = mask.shape
    feats = []
    for cnn, key in ((model.face_cnn, "face"), (model.lip_cnn, "lip")):
        f = naive_cnn(cnn, batch[key][mask])
        out = f.new_zeros(B, T, f.shape[-1])
        out[mask] = f
        feats.append(out)
    return model.sequence(feats[0], feats[1], batch["audio"], batch["audio_idx"], mask, batch["audio_lengths"])


def naive_predict(checkpoint: str | Path, npz: str | Path, out_csv: str | Path, chunk: int = 32,
                  device: str = "cpu") -> "pd.DataFrame":
    """Per-frame P(Fake) of one video the original way: the whole video decompressed as float32, fp32 NCHW CNN."""
    import pandas as pd
    import torch

    from workbench.core.config import Config
    from workbench.data.dataset import audio_for_frames
    from workbench.data.records import VideoRecord
    from workbench.model.mmmsba import MMMSBA
    dev = torch.device(device)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = Config.from_dict(ckpt["config"])
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc)
    model.load_state_dict(ckpt["model"])
    model = model.use_fast_kernels(False).to(dev).eval()
    with np.load(npz) as z:
        frames, lip = z["frames"], z["lip"]  # (T, H, W, 3) float32: the whole video in memory
        audio, ts, fps = z["audio"], z["timestamps"], float(z["fps"])
    T = len(frames)
    rec = VideoRecord(frames=frames, lip=lip, audio=audio, label=0, video_id="", group="", fps=fps, timestamps=ts,
                      face_found=np.ones(T, bool), duration=T / fps)
    idx = np.arange(T)
    with torch.no_grad():
        face_feat = torch.cat([naive_cnn(model.face_cnn, torch.from_numpy(frames[s:s + chunk]).to(dev))
                               for s in range(0, T, chunk)])[None]
        lip_feat = torch.cat([naive_cnn(model.lip_cnn, torch.from_numpy(lip[s:s + chunk]).to(dev))
                              for s in range(0, T, chunk)])[None]
        a, a_idx = audio_for_frames(rec, idx)
        audio_t = torch.from_numpy(a)[None].to(dev)
        out = model.sequence(face_feat, lip_feat, audio_t, torch.from_numpy(a_idx)[None].to(dev),
                             torch.ones(1, T, dtype=torch.bool, device=dev), torch.tensor([audio_t.shape[1]]))
        p = torch.softmax(out["frame_logits"][0].float(), -1)[:, 1].cpu().numpy()
    df = pd.DataFrame({"frame": idx, "timestamp": ts, "p_fake": p, "face_found": rec.face_found})
    df.to_csv(out_csv, index=False)
    return df


# ------------------------------------------------------------------ workers (each in its own process)
def _config(spec: dict):
    from workbench.core.config import Config
    return Config.load(None, list(spec.get("set", [])) + [
        f"data.face_size={spec['face_size']}", f"data.lip_size={spec['lip_size']}",
        f"data.max_frames={spec['frames']}", f"train.batch_size={spec['batch']}", f"train.device={spec['device']}",
        "train.progress=false", f"data.num_workers={spec.get('workers', 0)}",
        f"train.compile={str(bool(spec.get('compile', False))).lower()}", f"seed={spec.get('seed', 0)}"])


def _steps(times: list[float], warmup: int) -> list[float]:
    return times[warmup:] if len(times) > warmup else times[-1:]


def worker_train_fast(spec: dict) -> dict:
    """The workbench's Trainer on the uint8 cache: per-step wall times (data included), validation batches."""
    import warnings

    import torch

    from workbench.core.runtime import amp_dtype, resolve_device
    from workbench.data.dataset import ClipDataset
    from workbench.data.records import read_index
    from workbench.training.trainer import Trainer
    cfg = _config(spec)
    dev = resolve_device(cfg.train.device)
    root = Path(spec["data"]["fast"])
    rows = read_index(root / "index.csv")
    B, warm, rep = spec["batch"], spec["warmup"], spec["repeats"]
    dt = amp_dtype(dev, cfg.train.amp)
    peak = gemm_peak(str(dev), str(dt).replace("torch.", "") if dt is not None else "float32")
    ds = ClipDataset(rows[: B * (warm + rep)], root, cfg, train=True)
    t = time.perf_counter()
    ds.preload()  # the one-time uint8 cache (a K-fold run builds it once for all folds)
    cache_s = time.perf_counter() - t
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    with PeakMemory(str(dev)) as mem:
        trainer = Trainer(cfg, ds, None, Path(spec["out"]) / "fast_train")
        stamps: list[float] = []

        def on_batch(tr, **info):
            _sync(dev)
            stamps.append(time.perf_counter())

        trainer.add_callback("on_batch_end", on_batch)
        t0 = time.perf_counter()
        trainer.train_epoch(0)
    step = np.diff([t0] + stamps).tolist()
    evals = []
    trainer.cfg.data.num_workers = 0  # validation timed batch by batch: no worker start-up in each one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(warm + rep):
            sub = ClipDataset(rows[r * B:(r + 1) * B], root, cfg, train=False, cache=ds.cache)
            t = time.perf_counter()
            trainer.evaluate(sub)
            _sync(dev)
            evals.append(time.perf_counter() - t)
    out = {"step_s": _steps(step, warm), "eval_step_s": _steps(evals, warm), "gemm_peak": peak,
           "cache_build_s": cache_s, "memory": mem.as_dict(), "amp_dtype": str(dt) if dt else None,
           "channels_last": cfg.train.channels_last, "compile": cfg.train.compile,
           "loader_workers": cfg.data.num_workers, "device": device_info(str(dev)),
           "data_s": _data_times(rows[: B * (warm + rep)], root, cfg, ds.cache, B, rep)}
    if spec.get("profile_repeats", 0) > 0 and dev.type == "cpu":
        from workbench.bench.profile import profile_step
        out["profile"] = profile_step(cfg, True, clip_seconds=spec["clip_seconds"], repeats=spec["profile_repeats"])
    return out


def _data_times(rows, root: Path, cfg, cache, B: int, repeats: int) -> dict[str, list[float]]:
    """Seconds to make one training batch in this process: from the RAM cache, and read on demand from the records."""
    from workbench.data.dataset import ClipDataset, collate
    out = {}
    for name, c in (("ram_cache", cache), ("on_demand", None)):
        ds = ClipDataset(rows, root, cfg.merged({"data": {"cache_gb": 0.0}}) if c is None else cfg, train=True, cache=c)
        times = []
        for r in range(repeats):
            t = time.perf_counter()
            collate([ds[(i % len(rows), 0, r * B + i)] for i in range(B)])
            times.append(time.perf_counter() - t)
        out[name] = times
    return out


def worker_train_naive(spec: dict) -> dict:
    """The original loop: float32 npz decompressed per item, no workers, fp32, NCHW; plus the model FLOPs."""
    import copy
    import warnings

    import torch
    from torch.utils.data import DataLoader
    from torch.utils.flop_counter import FlopCounterMode

    from workbench.core.runtime import init_seed, resolve_device
    from workbench.data.dataset import MODEL_KEYS
    from workbench.data.records import read_index
    from workbench.model.losses import build_objective
    from workbench.model.mmmsba import MMMSBA
    cfg = _config(spec)
    dev = resolve_device(cfg.train.device)
    root = Path(spec["data"]["naive"])
    B, warm, rep = spec["batch"], spec["warmup"], spec["repeats"]
    rows = read_index(root / "index.csv")[: B * (warm + rep)]
    peak = gemm_peak(str(dev), "float32")
    init_seed(cfg.seed)
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc).use_fast_kernels(False).to(dev)
    labels = np.array([r.label for r in rows])
    counts = [int((labels == 0).sum()), int((labels == 1).sum())]
    objective = build_objective(cfg.loss, counts).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    ds = NaiveClips(rows, root, cfg, train=True, seed=cfg.seed)
    loader = DataLoader(ds, batch_size=B, shuffle=True, collate_fn=naive_collate, num_workers=0,
                        generator=torch.Generator().manual_seed(cfg.seed))

    def to_dev(batch):
        return {k: (v.to(dev) if k in MODEL_KEYS or k == "label" else v) for k, v in batch.items()}

    step = []
    model.train()
    with PeakMemory(str(dev)) as mem:
        t = time.perf_counter()
        for batch in loader:
            batch = to_dev(batch)
            out = naive_forward(model, batch)
            loss = objective(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"])["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            float(loss.detach())
            _sync(dev)
            now = time.perf_counter()
            step.append(now - t)
            t = now
    evals = []
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eval_ds = NaiveClips(rows, root, cfg, train=False)
        t = time.perf_counter()
        for batch in DataLoader(eval_ds, batch_size=B, shuffle=False, collate_fn=naive_collate, num_workers=0):
            batch = to_dev(batch)
            out = naive_forward(model, batch)
            objective(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"])
            torch.softmax(out["frame_logits"], -1).cpu()
            now = time.perf_counter()
            evals.append(now - t)
            t = now
    # model FLOPs: one clip through the reference computation on the CPU (every op visible), times the batch
    one = naive_collate([ds[0]])
    cpu_model = copy.deepcopy(model).cpu().train()
    cpu_obj = build_objective(cfg.loss, counts)
    with FlopCounterMode(display=False) as fc:
        out = naive_forward(cpu_model, one)
        cpu_obj(out["frame_logits"], out["video_logits"], one["label"], one["mask"])["loss"].backward()
    train_flops = fc.get_total_flops() * B
    cpu_model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        naive_forward(cpu_model, one)
    eval_flops = fc.get_total_flops() * B
    out = {"step_s": _steps(step, warm), "eval_step_s": _steps(evals, warm), "gemm_peak": peak,
           "memory": mem.as_dict(), "flops_per_step": train_flops, "flops_per_eval_step": eval_flops,
           "device": device_info(str(dev))}
    if spec.get("profile_repeats", 0) > 0 and dev.type == "cpu":
        from workbench.bench.profile import profile_step
        out["profile"] = profile_step(cfg, False, clip_seconds=spec["clip_seconds"], repeats=spec["profile_repeats"])
    return out


def worker_infer_fast(spec: dict) -> dict:
    """`predict_files` on the uint8 record (streamed from the file), one CSV."""
    import torch

    from workbench.training.predict import predict_files
    dev = spec["device"]
    out = Path(spec["out"]) / "infer_fast"
    with torch.no_grad(), PeakMemory(dev) as mem:
        t = time.perf_counter()
        predict_files([spec["checkpoint"]], [spec["record"]], out, chunk=spec["chunk"], device=dev, progress=False)
        _sync(dev)
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "memory": mem.as_dict(), "csv": str(out / "long_pfake.csv")}


def worker_infer_naive(spec: dict) -> dict:
    """The original: the whole video decompressed to float32 in memory, fp32 NCHW CNN in chunks, full attention."""
    dev = spec["device"]
    out = Path(spec["out"]) / "infer_naive"
    out.mkdir(parents=True, exist_ok=True)
    with PeakMemory(dev) as mem:
        t = time.perf_counter()
        naive_predict(spec["checkpoint"], spec["naive_record"], out / "long_pfake.csv", chunk=spec["chunk"], device=dev)
        _sync(dev)
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "memory": mem.as_dict(), "csv": str(out / "long_pfake.csv")}


def worker_ingest(spec: dict) -> dict:
    """`workbench.ingest.pipeline` of a folder with `workers` workers, timed by ingest itself (its summary)."""
    from workbench.core.config import Config
    from workbench.ingest.pipeline import ingest
    with contextlib.redirect_stdout(io.StringIO()):
        summary = ingest(spec["src"], spec["out"], Config.from_dict(spec["config"]), workers=spec["workers"],
                         progress=False)
    return {"done": summary.done, "wall_seconds": summary.wall_seconds,
            "failures": [list(f) for f in summary.failures]}


def worker_scale(spec: dict) -> dict:
    """One run of the scale part (workbench.bench.scale)."""
    from workbench.bench.scale import worker_scale as run
    return run(spec)


WORKERS: dict[str, Callable[[dict], dict]] = {
    "train-fast": worker_train_fast, "train-naive": worker_train_naive,
    "infer-fast": worker_infer_fast, "infer-naive": worker_infer_naive, "ingest": worker_ingest,
    "scale": worker_scale,
}


def _env(fast: bool) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in FAST_ENV.items():
        if _USER_ENV[k] is not None:
            env[k] = _USER_ENV[k]  # what the user set wins, for both paths
        elif fast:
            env[k] = v
        else:
            env.pop(k, None)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(kind: str, spec: dict, fast_env: bool, in_process: bool, tmp: Path) -> dict:
    """One measurement, in a fresh Python process (or here with `in_process`)."""
    if in_process:
        return WORKERS[kind](spec)
    spec_path, res_path = tmp / f"{kind}.spec.json", tmp / f"{kind}.result.json"
    spec_path.write_text(json.dumps(spec))
    res_path.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "workbench.bench.bench", "--worker", kind, str(spec_path), str(res_path)],
                          env=_env(fast_env), capture_output=True, text=True)
    if proc.returncode != 0 or not res_path.exists():
        raise RuntimeError(f"bench worker {kind} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(res_path.read_text())


# ------------------------------------------------------------------ the parts
def bench_train(args, spec: dict, tmp: Path, log) -> dict:
    n = args.batch * (args.warmup + args.repeats)
    log(f"train: writing {n} toy videos of {args.video_frames} frames (uint8 records + float32 npz) ...")
    t = time.perf_counter()
    spec = {**spec, "data": make_training_data(tmp / "train", n, args.video_frames, args.face_size, args.lip_size,
                                               args.zlib_level, args.seed)}
    log(f"train: data written in {time.perf_counter() - t:.0f} s; measuring the fast path ...")
    fast = run_worker("train-fast", spec, True, args.in_process, tmp)
    log("train: measuring the naive path ...")
    naive = run_worker("train-naive", spec, args.naive_runtime == "fast", args.in_process, tmp)
    B, F = args.batch, args.frames
    res: dict[str, Any] = {"flops_per_step": naive["flops_per_step"], "flops_per_eval_step": naive["flops_per_eval_step"]}
    train_clips = STUDY["clips"] * (STUDY["folds"] - 1) / STUDY["folds"]
    val_clips = STUDY["clips"] / STUDY["folds"]
    for name, r in (("fast", fast), ("naive", naive)):
        st, ev = stats(r["step_s"]), stats(r["eval_step_s"])
        cps = B / st["median"]
        ecps = B / ev["median"]
        hours = STUDY["folds"] * STUDY["epochs"] * (train_clips / cps + val_clips / ecps) / 3600
        res[name] = {"step_s": st, "clips_per_s": cps, "frames_per_s": cps * F,
                     "clips_per_s_range": [B / st["max"], B / st["min"]],
                     "gflops": naive["flops_per_step"] / st["median"] / 1e9, "gemm_peak": r["gemm_peak"],
                     "eval_step_s": ev, "eval_clips_per_s": ecps, "protocol_hours": hours, "memory": r["memory"]}
        for k in ("cache_build_s", "amp_dtype", "channels_last", "compile", "loader_workers", "profile", "data_s"):
            if k in r:
                res[name][k] = r[k]
    res["ratio"] = {"clips_per_s": res["fast"]["clips_per_s"] / res["naive"]["clips_per_s"],
                    "eval_clips_per_s": res["fast"]["eval_clips_per_s"] / res["naive"]["eval_clips_per_s"],
                    "protocol_hours": res["naive"]["protocol_hours"] / res["fast"]["protocol_hours"]}
    res["device"] = fast["device"]
    return res


def bench_infer(args, spec: dict, tmp: Path, log) -> dict:
    from workbench.data.records import save_record
    log(f"infer: writing a {args.long_frames}-frame video (uint8 record + float32 npz) and a checkpoint ...")
    rec = make_long_record(args.long_frames, args.face_size, args.lip_size, args.seed)
    d = tmp / "long"
    save_record(d / "long.npz", rec)
    write_original_npz(d / "long_float32.npz", rec, args.zlib_level)
    del rec
    ckpt = make_checkpoint(d / "model.pth", _config(spec), args.seed)
    spec = {**spec, "checkpoint": str(ckpt), "record": str(d / "long.npz"), "naive_record": str(d / "long_float32.npz")}
    runs: dict[str, list[dict]] = {"fast": [], "naive": []}
    for r in range(args.infer_repeats):
        log(f"infer: repeat {r + 1}/{args.infer_repeats}: fast path ...")
        runs["fast"].append(run_worker("infer-fast", spec, True, args.in_process, tmp))
        log(f"infer: repeat {r + 1}/{args.infer_repeats}: naive path ...")
        runs["naive"].append(run_worker("infer-naive", spec, args.naive_runtime == "fast", args.in_process, tmp))
    import pandas as pd
    pf = pd.read_csv(runs["fast"][-1]["csv"])["p_fake"].to_numpy()
    pn = pd.read_csv(runs["naive"][-1]["csv"])["p_fake"].to_numpy()
    res: dict[str, Any] = {"frames": args.long_frames, "chunk": args.chunk,
                           "max_abs_diff_p_fake": float(np.abs(pf - pn).max()) if pf.shape == pn.shape else None}
    for name, rs in runs.items():
        res[name] = {"seconds": stats([x["seconds"] for x in rs]),
                     "peak_mb": stats([x["memory"]["peak_mb"] for x in rs]),
                     "peak_rss_mb": stats([x["memory"]["peak_rss_mb"] for x in rs]),
                     "cuda_peak_mb": stats([x["memory"]["cuda_peak_mb"] for x in rs if x["memory"]["cuda_peak_mb"] is not None]),
                     "frames_per_s": args.long_frames / float(np.median([x["seconds"] for x in rs])),
                     "memory_method": rs[-1]["memory"]["method"]}
    res["ratio"] = {"speed": res["naive"]["seconds"]["median"] / res["fast"]["seconds"]["median"],
                    "memory": res["naive"]["peak_mb"]["median"] / max(res["fast"]["peak_mb"]["median"], 1e-9)}
    if res["fast"]["cuda_peak_mb"]["n"]:
        res["ratio"]["cuda_memory"] = res["naive"]["cuda_peak_mb"]["median"] / max(res["fast"]["cuda_peak_mb"]["median"], 1e-9)
    return res


def bench_ingest(args, tmp: Path, log) -> dict:
    """Ingest speed with one worker and with all: wall clock (worker start-up included) and steady state.

    Each worker count runs twice, with 1 and with `--ingest-clips` copies of the clip per worker; the
    steady-state rate is the marginal one, (extra seconds of video) / (extra wall seconds), which leaves out
    the one-off cost of starting a worker (spawning it, importing librosa/scipy/numba: ~2-3 s on this CPU).
    """
    from workbench.core.config import Config
    from workbench.core.runtime import usable_cores
    w, h = args.ingest_size
    log(f"ingest: generating a {w}x{h} {args.ingest_fps:g} fps clip of {args.ingest_seconds:g} s with audio ...")
    clip = make_ingest_clip(tmp / "ingest_src" / "clip.mp4", args.ingest_seconds, w, h, args.ingest_fps, seed=args.seed)
    cores = usable_cores()
    n_all = max(1, args.ingest_workers or cores)
    per = max(2, args.ingest_clips)  # clips per worker: a batch, as in a real ingest

    def folder(name: str, n: int) -> Path:
        d = tmp / f"ingest_{name}_{n}" / "real"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            dst = d / f"clip{i}.mp4"
            if not dst.exists():
                try:
                    os.link(clip, dst)
                except OSError:
                    shutil.copy(clip, dst)
        return d.parent

    cfg = Config.load(None, list(args.set) + [f"data.face_size={args.face_size}", f"data.lip_size={args.lip_size}"])
    wall_rate: dict[str, list[float]] = {"one": [], "all": []}
    steady: dict[str, list[float]] = {"one": [], "all": []}
    failures = []
    for r in range(args.ingest_repeats):
        for name, workers in (("one", 1), ("all", n_all)):
            runs = {}
            for k in (1, per):
                log(f"ingest: repeat {r + 1}/{args.ingest_repeats}: {workers} worker(s), {k} clip(s) each ...")
                out = tmp / f"ingest_out_{name}_{k}_{r}"
                spec = {"src": str(folder(name, k * workers)), "out": str(out), "workers": workers,
                        "config": cfg.to_dict()}
                res = run_worker("ingest", spec, True, args.in_process, tmp)  # a fresh process: start-up included
                failures += [f"{f}: {why}" for f, why in res["failures"]]
                runs[k] = (res["done"] * args.ingest_seconds, res["wall_seconds"])
                shutil.rmtree(out, ignore_errors=True)
            wall_rate[name].append(runs[per][0] / runs[per][1])
            extra_video, extra_wall = runs[per][0] - runs[1][0], runs[per][1] - runs[1][1]
            steady[name].append(extra_video / extra_wall if extra_wall > 0 else float("nan"))
    one, allw = stats(wall_rate["one"]), stats(wall_rate["all"])
    one_s, all_s = stats(steady["one"]), stats(steady["all"])
    return {"clip": {"width": w, "height": h, "fps": args.ingest_fps, "seconds": args.ingest_seconds,
                     "clips_per_worker": per},
            "one_worker": {"video_s_per_s": one, "steady_video_s_per_s": one_s},
            "all_workers": {"workers": n_all, "video_s_per_s": allw, "steady_video_s_per_s": all_s,
                            "per_worker": allw["median"] / n_all if allw["median"] is not None else None,
                            "steady_per_worker": all_s["median"] / n_all if all_s["median"] is not None else None},
            "failures": failures}


def check_targets(res: dict) -> list[dict]:
    """The issue's CPU targets against the measurements (GPU targets are not checked here)."""
    out = []
    dev = res["device"]["type"]

    def add(name, value, target, op, note=""):
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out.append({"name": name, "value": value, "target": f"{op} {target}", "met": met, "note": note})

    if "scale" in res:  # memory, relative speed and disk: on any device
        from workbench.bench.scale import check
        check(res["scale"], add)
    if dev != "cpu":
        return out + [{"name": "CPU targets", "value": None, "target": "", "met": None,
                       "note": f"measured on {dev}; the issue's speed targets here are for a 2-core CPU"}]
    if "train" in res:
        add("training throughput, fast/naive", res["train"]["ratio"]["clips_per_s"], TARGETS_CPU["train_speedup"], ">=")
    if "infer" in res:
        n = res["infer"]["frames"]
        add(f"{n}-frame inference speed, naive/fast seconds", res["infer"]["ratio"]["speed"], TARGETS_CPU["infer_speedup"], ">=")
        add(f"{n}-frame inference peak memory, naive/fast", res["infer"]["ratio"]["memory"], TARGETS_CPU["infer_memory_ratio"], ">=")
    if "ingest" in res and "skipped" not in res["ingest"]:
        ing, target = res["ingest"], TARGETS_CPU["ingest_realtime_per_worker"]
        add("ingest, one worker, steady state: video s per wall s", ing["one_worker"]["steady_video_s_per_s"]["median"],
            target, ">=")
        add("ingest, all workers, steady state: video s per wall s per worker", ing["all_workers"]["steady_per_worker"],
            target, ">=")
        add("ingest, one worker, start-up included", ing["one_worker"]["video_s_per_s"]["median"], target, ">=",
            f"{ing['clip']['clips_per_worker']} clips of {ing['clip']['seconds']:g} s")
        add("ingest, all workers, start-up included, per worker", ing["all_workers"]["per_worker"], target, ">=",
            f"{ing['clip']['clips_per_worker']} clips of {ing['clip']['seconds']:g} s per worker")
    return out


# ------------------------------------------------------------------ report
def _ms(s: dict, unit: str = "s", scale: float = 1.0, fmt: str = ".2f") -> str:
    if not s or s.get("median") is None:
        return "n/a"
    m, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    return f"{m:{fmt}} {unit} [{lo:{fmt}}-{hi:{fmt}}, n={s['n']}]"


def render(res: dict) -> str:
    """The human-readable report."""
    st, dv = res["settings"], res["device"]
    lines = ["workbench bench: fast path vs naive reference path (same run)"]
    where = f"{dv['type']}"
    if dv["type"] == "cuda":
        where += f" {dv.get('gpu')} ({dv.get('gpu_memory_gb', 0):.0f} GB)"
    lines.append(f"device: {where}; CPU {dv['cpu']}, {dv['cpu_threads']} threads; torch {dv['torch']}; "
                 f"autocast: {dv['amp_dtype'] or 'off (fp32; no native bf16 on this CPU)' if dv['type'] == 'cpu' else dv['amp_dtype']}")
    if dv.get("isa"):
        lines.append(f"CPU instruction sets: {' '.join(dv['isa']['flags']) or 'none found'} "
                     f"(torch kernels: {dv['isa']['torch_capability']})")
    lines.append(f"settings: batch {st['batch']} x {st['frames']} frames, face {st['face_size']} px, lip {st['lip_size']} px, "
                 f"training videos {st['video_frames']} frames; {st['repeats']} timed repeats after {st['warmup']} warm-up; "
                 f"long video {st['long_frames']} frames, chunk {st['chunk']}; npz deflate level {st['zlib_level']}"
                 + (f"; overrides {st['set']}" if st["set"] else ""))
    lines.append(f"runtime: fast {res['runtime']['fast']}; naive {res['runtime']['naive'] or 'process defaults'}")
    lines.append("figures: median [min-max, n] over repeats")
    if "train" in res:
        tr = res["train"]
        f, n = tr["fast"], tr["naive"]
        lines.append("")
        lines.append(f"training (fwd+bwd+step, data loading included)  model FLOPs/step {tr['flops_per_step'] / 1e9:.1f} G")
        w = 44
        lines.append(f"  {'':28}{'fast':>{w}}{'naive':>{w}}   ratio")
        lines.append(f"  {'step time':28}{_ms(f['step_s']):>{w}}{_ms(n['step_s']):>{w}}   {tr['ratio']['clips_per_s']:.2f}x")
        lines.append(f"  {'clips/s':28}{f['clips_per_s']:>{w}.3f}{n['clips_per_s']:>{w}.3f}   {tr['ratio']['clips_per_s']:.2f}x")
        lines.append(f"  {'frames/s':28}{f['frames_per_s']:>{w}.1f}{n['frames_per_s']:>{w}.1f}")
        pk = lambda r: f"{r['gflops']:.1f} of {r['gemm_peak']['gflops']:.1f} ({r['gemm_peak']['dtype']} GEMM peak)"  # noqa: E731
        lines.append(f"  {'achieved GFLOPS':28}{pk(f):>{w}}{pk(n):>{w}}")
        lines.append(f"  {'validation batch':28}{_ms(f['eval_step_s']):>{w}}{_ms(n['eval_step_s']):>{w}}   {tr['ratio']['eval_clips_per_s']:.2f}x")
        lines.append(f"  {'study protocol (917 clips,':28}{f['protocol_hours']:>{w - 2}.1f} h{n['protocol_hours']:>{w - 2}.1f} h   {tr['ratio']['protocol_hours']:.2f}x")
        lines.append("   5 folds, 15 epochs)")
        lines.append(f"  {'peak memory (RSS delta)':28}{f['memory']['peak_mb']:>{w - 4}.0f} MiB{n['memory']['peak_mb']:>{w - 4}.0f} MiB")
        if f.get("cache_build_s") is not None:
            lines.append(f"  fast path: uint8 cache built once in {f['cache_build_s']:.2f} s (not in the step times); "
                         f"loader workers {f.get('loader_workers')}, autocast {f.get('amp_dtype') or 'off'}, "
                         f"channels-last {f.get('channels_last')}, compile {f.get('compile')}")
        if f.get("data_s"):
            d = {k: float(np.median(v)) for k, v in f["data_s"].items()}
            lines.append(f"  data, one batch in one process: {d['ram_cache']:.3f} s from the RAM cache, "
                         f"{d['on_demand']:.3f} s read on demand from the compact records (loader workers overlap it)")
        if f.get("profile"):
            from workbench.bench.profile import render as render_profile
            lines.append("")
            lines += render_profile(f["profile"], n.get("profile"))
    if "infer" in res:
        inf = res["infer"]
        f, n = inf["fast"], inf["naive"]
        w = 44
        lines.append("")
        lines.append(f"per-frame P(Fake) of one {inf['frames']}-frame video, stored record -> CSV (chunk {inf['chunk']})")
        lines.append(f"  {'':28}{'fast':>{w}}{'naive':>{w}}   ratio")
        lines.append(f"  {'seconds':28}{_ms(f['seconds']):>{w}}{_ms(n['seconds']):>{w}}   {inf['ratio']['speed']:.2f}x")
        lines.append(f"  {'frames/s':28}{f['frames_per_s']:>{w}.1f}{n['frames_per_s']:>{w}.1f}")
        lines.append(f"  {'peak memory (RSS delta)':28}{_ms(f['peak_mb'], 'MiB', fmt='.0f'):>{w}}{_ms(n['peak_mb'], 'MiB', fmt='.0f'):>{w}}"
                     f"   1/{inf['ratio']['memory']:.1f}")
        lines.append(f"  {'peak RSS (whole process)':28}{_ms(f['peak_rss_mb'], 'MiB', fmt='.0f'):>{w}}{_ms(n['peak_rss_mb'], 'MiB', fmt='.0f'):>{w}}")
        if f["cuda_peak_mb"]["n"]:
            lines.append(f"  {'CUDA max_memory_allocated':28}{_ms(f['cuda_peak_mb'], 'MiB', fmt='.0f'):>{w}}"
                         f"{_ms(n['cuda_peak_mb'], 'MiB', fmt='.0f'):>{w}}   1/{inf['ratio'].get('cuda_memory', float('nan')):.1f}")
        lines.append(f"  max |P(Fake) fast - naive| over frames: {inf['max_abs_diff_p_fake']:.2e}  (memory: {f['memory_method']})")
    if "ingest" in res:
        ing = res["ingest"]
        lines.append("")
        if "skipped" in ing:
            lines.append(f"ingest: skipped: {ing['skipped']}")
        else:
            c = ing["clip"]
            n = ing["all_workers"]["workers"]
            lines.append(f"ingest of {c['clips_per_worker']} copies per worker of a {c['width']}x{c['height']} {c['fps']:g} fps "
                         f"clip of {c['seconds']:g} s with audio (seconds of video per wall-clock second)")
            lines.append(f"  {'':28}{'start-up included':>44}{'steady state':>44}")
            lines.append(f"  {'1 worker':28}{_ms(ing['one_worker']['video_s_per_s'], 'x'):>44}"
                         f"{_ms(ing['one_worker']['steady_video_s_per_s'], 'x'):>44}")
            lines.append(f"  {f'{n} workers':28}{_ms(ing['all_workers']['video_s_per_s'], 'x'):>44}"
                         f"{_ms(ing['all_workers']['steady_video_s_per_s'], 'x'):>44}")
            lines.append(f"  {f'{n} workers, per worker':28}{ing['all_workers']['per_worker']:>43.2f}x"
                         f"{ing['all_workers']['steady_per_worker']:>43.2f}x")
            lines.append("  (steady state: the marginal rate between runs of 1 and of "
                         f"{c['clips_per_worker']} clips per worker, i.e. without worker start-up)")
            for fl in ing["failures"]:
                lines.append(f"  failed: {fl}")
    if "scale" in res:
        from workbench.bench.scale import render as render_scale
        lines.append("")
        lines += render_scale(res["scale"])
    if res.get("targets"):
        lines.append("")
        lines.append("targets")
        for t in res["targets"]:
            mark = {True: "MET    ", False: "NOT MET", None: "n/a    "}[t["met"]]
            val = "n/a" if t["value"] is None else f"{t['value']:.2f}"
            lines.append(f"  [{mark}] {t['name']}: {val} (target {t['target']}){' - ' + t['note'] if t['note'] else ''}")
    lines.append(f"\nbench wall time {res['wall_s']:.0f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI
def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {value!r}") from None
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `workbench bench` (defaults: the reference settings)."""
    p.add_argument("--parts", default="train,infer,ingest", help="comma list of: train, infer, ingest, scale")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch", type=int, default=8, help="clips per training batch")
    p.add_argument("--frames", type=int, default=50, help="frames per training clip")
    p.add_argument("--face-size", type=int, default=224)
    p.add_argument("--lip-size", type=int, default=112)
    p.add_argument("--video-frames", type=int, default=120, help="frames per training video (4 s at 30 fps)")
    p.add_argument("--repeats", type=int, default=3, help="timed training steps / validation batches per path")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before those")
    p.add_argument("--long-frames", type=int, default=5396, help="frames of the long video (180 s at 30 fps)")
    p.add_argument("--chunk", type=int, default=32, help="frames per CNN chunk in long-video inference (both paths)")
    p.add_argument("--infer-repeats", type=int, default=1, help="long-video runs per path")
    p.add_argument("--ingest-seconds", type=float, default=10.0)
    p.add_argument("--ingest-size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT of the ingest clip")
    p.add_argument("--ingest-fps", type=float, default=30.0)
    p.add_argument("--ingest-workers", type=int, default=0, help="workers of the all-workers run (0 = all cores)")
    p.add_argument("--ingest-clips", type=int, default=4, help="copies of the clip per worker in the longer ingest run (>= 2)")
    p.add_argument("--ingest-repeats", type=int, default=1)
    p.add_argument("--scale-clips", default="40,400", help="dataset sizes (clips) of the scale part, comma list")
    p.add_argument("--scale-seconds", type=float, default=20.0, help="seconds per clip in the scale part")
    p.add_argument("--scale-repeats", type=int, default=2,
                   help="alternating runs of the small size's two paths in the scale part (their clips/s pooled)")
    p.add_argument("--scale-no-real", action="store_true",
                   help="scale part without the disk figures on real crops (1080p clip, demo clips)")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers of the fast path (default: 0 on CPU, where the data is in memory; 4 on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the fast path's model")
    p.add_argument("--profile-repeats", type=int, default=2,
                   help="timed runs of each piece of the training step in the breakdown (0: no breakdown; CPU only)")
    p.add_argument("--clip-seconds", type=float, default=20.0,
                   help="clip length whose MFCC steps the breakdown's audio GRU runs over (study clips: ~20 s)")
    p.add_argument("--naive-runtime", choices=("default", "fast"), default="default",
                   help="runtime of the naive path: the process defaults (the original) or the fast path's")
    p.add_argument("--zlib-level", type=int, default=1,
                   help="deflate level of the naive float32 npz (1: quick to write; inflating level 6 is ~10%% faster)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override, both paths")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--tmp", default=None, help="folder for the generated data (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of fresh ones (quicker; memory figures less clean)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> dict:
    """Run the chosen parts; the results as a dict (what --json writes)."""
    for k, v in FAST_ENV.items():  # effective here only if torch is not imported yet (the CLI's case)
        if "torch" not in sys.modules:
            os.environ.setdefault(k, v)
    from workbench.core.runtime import resolve_device  # imports torch, after the environment is set
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        raise SystemExit(f"unknown --parts {bad}; choose from {list(PARTS)}")
    try:
        device = str(resolve_device(args.device))
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: {e}") from None
    workers = args.workers if args.workers is not None else (4 if device.startswith("cuda") else 0)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    own_tmp = args.tmp is None
    tmp = Path(tempfile.mkdtemp(prefix="workbench-bench-")) if own_tmp else Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    fast_env = {k: v for k, v in _env(True).items() if k in FAST_ENV}
    naive_env = {k: v for k, v in _env(args.naive_runtime == "fast").items() if k in FAST_ENV}
    res: dict[str, Any] = {
        "settings": {"parts": parts, "device": device, "batch": args.batch, "frames": args.frames,
                     "face_size": args.face_size, "lip_size": args.lip_size, "video_frames": args.video_frames,
                     "repeats": args.repeats, "warmup": args.warmup, "long_frames": args.long_frames,
                     "chunk": args.chunk, "infer_repeats": args.infer_repeats, "workers": workers,
                     "compile": args.compile, "naive_runtime": args.naive_runtime, "zlib_level": args.zlib_level,
                     "ingest_seconds": args.ingest_seconds, "ingest_size": list(args.ingest_size),
                     "ingest_fps": args.ingest_fps, "ingest_clips": args.ingest_clips, "set": list(args.set), "seed": args.seed,
                     "in_process": args.in_process, "study": STUDY},
        "device": device_info(device),
        "runtime": {"fast": fast_env, "naive": naive_env},
    }
    spec = {"device": device, "batch": args.batch, "frames": args.frames, "face_size": args.face_size,
            "lip_size": args.lip_size, "warmup": args.warmup, "repeats": args.repeats, "chunk": args.chunk,
            "workers": workers, "compile": args.compile, "set": list(args.set), "seed": args.seed, "out": str(tmp / "out"),
            "profile_repeats": args.profile_repeats, "clip_seconds": args.clip_seconds}
    try:
        if "train" in parts:
            res["train"] = bench_train(args, spec, tmp, log)
            res["device"] = res["train"].pop("device")
        if "infer" in parts:
            res["infer"] = bench_infer(args, spec, tmp, log)
        if "ingest" in parts:
            res["ingest"] = bench_ingest(args, tmp, log)
        if "scale" in parts:
            from workbench.bench.scale import bench_scale
            res["scale"] = bench_scale(args, spec, tmp, log, run_worker)
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif args.keep:
            log(f"generated data kept in {tmp}")
    if "train" in res:
        res["gemm_peak"] = max((res["train"][k]["gemm_peak"] for k in ("fast", "naive")), key=lambda g: g["gflops"])
    res["targets"] = check_targets(res)
    res["wall_s"] = time.perf_counter() - t0
    return res


def main(args: argparse.Namespace) -> int:
    """`workbench bench`: print the report (and write --json)."""
    res = run(args)
    print(render(res))
    if args.json:
        from workbench.data.records import write_json
        write_json(Path(args.json), res)
        print(f"JSON: {args.json}")
    return 0


def _worker_main(argv: list[str]) -> int:
    """`python -m workbench.bench.bench --worker KIND SPEC.json RESULT.json` (what run_worker starts)."""
    if len(argv) != 4 or argv[0] != "--worker" or argv[1] not in WORKERS:
        print(f"usage: python -m workbench.bench.bench --worker {{{','.join(WORKERS)}}} SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[2]).read_text())
    out = WORKERS[argv[1]](spec)
    Path(argv[3]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
