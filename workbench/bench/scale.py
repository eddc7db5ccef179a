"""`workbench bench --parts scale`: the data path at study scale, memory, speed and disk.

Records of 20 s clips at the reference sizes are written directly (no detector: this measures the data
path): a pool of natural face and lip crops (scikit-image's astronaut, moved, zoomed and relit a little
from frame to frame) is encoded once, and every clip's frames cycle through the pool's encoded bytes.
Then one training epoch of fold 0 of 5 (of a small set, as many epochs as give MIN_TIMED_STEPS timed steps)
and its validation run in a fresh process each (`workbench.bench.workers.worker_scale`), at the reference model,
batch 8, 50 frames per clip; training
clips/s leaves out the first step (loader start-up and warm-up, reported apart):

    new path    compact lossless records, data.cache_gb and data.num_workers at their defaults, at both
                dataset sizes (--scale-clips, default 40 and 400 clips);
    in-memory   today's path: uncompressed records, every video decoded into RAM before the epoch,
                no loader workers; at the small size only (the large set does not fit in memory).

The small size's two paths run `--scale-repeats` times each, alternating, and their clips/s are pooled over
the runs (a shared machine's speed drifts by tens of percent within minutes: measured, one path's three
runs at 1.31, 1.55 and 1.80 clips/s).

Each run reports peak memory of its whole process tree (the trainer and its loader workers: PSS, so pages
the workers share with the trainer count once, sampled every 0.1 s), its peak resident size (VmHWM of the
trainer), training clips/s (the epoch after the cache is filled; that fill is a one-off, timed apart),
validation clips/s and the records' bytes on disk. Disk is also measured where it means something, on
real crops: the 1080p real-face clip of the ingest part and a few demo clips, each in every storage,
with the codecs' encode and decode times.

Imports no torch at import time (the report imports this module before the runtime environment is set);
the ingest stack, which does, is optional and imported where the real-face figure needs it.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from workbench.bench.common import MIN_TIMED_STEPS, make_ingest_clip
from workbench.bench.launch import run_worker
from workbench.core.config import Config
from workbench.data.records import DEFAULT_AUDIO_RATE, VideoRecord, load_record, row_for, save_record, write_index
from workbench.data.storage import codec_for, decode_frame, encode_frame

POOL = 64  # distinct frames per pool


# ------------------------------------------------------------------ data
def natural_pool(face: int, lip: int, n: int = POOL, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` face crops (n, face, face, 3) and lip crops (n, lip, lip, 3) uint8 of a real face, moving a little."""
    try:
        from skimage import data
        img = data.astronaut()  # (512, 512, 3) RGB; the face is around rows 72-182, columns 170-280
        centre, side = np.array([225.0, 127.0]), 150.0
    except ImportError:  # no scikit-image: a smooth synthetic face-like image
        yy, xx = np.mgrid[0:512, 0:512] / 512.0
        img = np.stack([180 - 60 * yy, 140 - 30 * xx, 120 + 40 * yy * xx], -1).clip(0, 255).astype(np.uint8)
        centre, side = np.array([256.0, 256.0]), 200.0
    rng = np.random.default_rng(seed)
    faces = np.empty((n, face, face, 3), np.uint8)
    lips = np.empty((n, lip, lip, 3), np.uint8)
    for k in range(n):
        c = centre + rng.normal(0, 3, 2)
        s = side * (1 + rng.normal(0, 0.02))
        M = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), float(rng.normal(0, 2)), face / s)
        M[:, 2] += face / 2 - c
        f = cv2.warpAffine(img, M, (face, face), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        faces[k] = np.clip(f.astype(np.float32) * rng.uniform(0.95, 1.05), 0, 255).astype(np.uint8)
        lips[k] = cv2.resize(faces[k][int(0.6 * face):int(0.95 * face), int(0.25 * face):int(0.75 * face)],
                             (lip, lip), interpolation=cv2.INTER_AREA)
    return faces, lips


def write_scale_set(root: Path, n_clips: int, seconds: float, pool: tuple[np.ndarray, np.ndarray], storage: str,
                    fps: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """`n_clips` records of `seconds` at `fps` whose frames cycle through the pool (encoded once), + index.csv."""
    codec = codec_for(storage)
    faces, lips = pool
    blobs = {k: [encode_frame(x, codec) for x in arr] for k, arr in (("frames", faces), ("lip", lips))} if codec else None
    T = int(round(seconds * fps))
    n_audio = int(np.ceil(seconds * DEFAULT_AUDIO_RATE)) + 1
    rng = np.random.default_rng(seed)
    rows, t = [], time.perf_counter()
    for i in range(n_clips):
        order = (np.arange(T) + 7 * i) % len(faces)
        if codec:
            encoded = {}
            for key, bl in blobs.items():
                sizes = np.array([len(bl[j]) for j in order])
                encoded[key] = (np.frombuffer(b"".join(bl[j] for j in order), np.uint8),
                                np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
            crops = (np.broadcast_to(faces[0], (T,) + faces.shape[1:]), np.broadcast_to(lips[0], (T,) + lips.shape[1:]))
        else:
            encoded, crops = None, (faces[order], lips[order])
        mfcc = rng.normal(0, 10, (n_audio, 40)).astype(np.float32)
        mfcc[:, 0] -= 400
        rec = VideoRecord(frames=crops[0], lip=crops[1], audio=mfcc, label=int(i % 3 != 0), video_id=f"clip{i:04d}",
                          group=f"id{i % 16}", fps=fps, timestamps=np.arange(T) / fps,
                          face_found=np.ones(T, dtype=bool), duration=T / fps)
        save_record(root / f"clip{i:04d}.npz", rec, storage=storage, encoded=encoded)
        rows.append(row_for(rec, f"clip{i:04d}.npz"))
    write_index(root / "index.csv", rows)
    disk = sum(p.stat().st_size for p in root.glob("*.npz"))
    return {"root": str(root), "clips": n_clips, "seconds": seconds, "storage": storage, "disk_bytes": disk,
            "bytes_per_hour": disk / (n_clips * seconds / 3600), "write_s": time.perf_counter() - t}


# ------------------------------------------------------------------ disk on real crops
def storage_options(faces: np.ndarray, lips: np.ndarray, quality: int = 95) -> dict[str, dict[str, float]]:
    """Bytes per frame (face + lip) and encode / decode ms per frame of each storage, on these crops."""
    out = {"raw": {"bytes_per_frame": float(faces[0].nbytes + lips[0].nbytes), "encode_ms": 0.0, "decode_ms": 0.0}}
    for name, codec in (("lossless (WebP)", "webp"), ("png", "png"), (f"jpeg q{quality}", "jpeg")):
        enc_s, dec_s, size = 0.0, 0.0, 0
        for arr in (faces, lips):
            t = time.perf_counter()
            blobs = [encode_frame(x, codec, quality) for x in arr]
            enc_s += time.perf_counter() - t
            t = time.perf_counter()
            for b in blobs:
                decode_frame(b, codec, arr.shape[1:])
            dec_s += time.perf_counter() - t
            size += sum(len(b) for b in blobs)
        n = len(faces)
        out[name] = {"bytes_per_frame": size / n, "encode_ms": 1e3 * enc_s / n, "decode_ms": 1e3 * dec_s / n}
    for v in out.values():
        v["ratio"] = out["raw"]["bytes_per_frame"] / v["bytes_per_frame"]
    return out


def record_disk(records: list[Path], tmp: Path, quality: int = 95) -> dict[str, Any]:
    """Each record re-saved in every storage: bytes on disk and GB per hour of video; and the codec table."""
    sizes = {s: 0 for s in ("raw", "lossless", "jpeg")}
    seconds, samples = 0.0, ([], [])
    tmp.mkdir(parents=True, exist_ok=True)
    for p in records:
        rec = load_record(p, warn=False)
        seconds += rec.duration
        for storage in sizes:
            q = save_record(tmp / f"x_{storage}.npz", rec, storage=storage, quality=quality)
            sizes[storage] += q.stat().st_size
        k = np.linspace(0, rec.n_frames - 1, min(rec.n_frames, 8)).astype(int)
        samples[0].append(rec.frames[k])
        samples[1].append(rec.lip[k])
    shutil.rmtree(tmp, ignore_errors=True)
    per_hour = {s: b / 1e9 / (seconds / 3600) for s, b in sizes.items()}
    return {"records": len(records), "seconds": seconds, "bytes": sizes, "gb_per_hour": per_hour,
            "ratio_lossless": sizes["raw"] / sizes["lossless"], "ratio_jpeg": sizes["raw"] / sizes["jpeg"],
            "codecs": storage_options(np.concatenate(samples[0]), np.concatenate(samples[1]), quality)}


def disk_real_face(args, tmp: Path, log) -> dict[str, Any]:
    """The 1080p real-face clip of the ingest part, ingested, in every storage (the ingest stack is optional)."""
    try:
        import imageio_ffmpeg  # noqa: F401

        from workbench.ingest.face import load_detector
        load_detector()
    except Exception as e:  # noqa: BLE001 - any missing piece of the ingest stack skips this figure
        return {"skipped": f"ingest stack unavailable ({type(e).__name__}: {e})"}
    from workbench.ingest.pipeline import ingest
    w, h = args.ingest_size
    log(f"scale: disk on real crops: a {w}x{h} clip of {args.ingest_seconds:g} s, ingested ...")
    make_ingest_clip(tmp / "src" / "real" / "clip.mp4", args.ingest_seconds, w, h, args.ingest_fps, seed=args.seed)
    cfg = Config.load(None, list(args.set) + [f"data.face_size={args.face_size}", f"data.lip_size={args.lip_size}"])
    with contextlib.redirect_stdout(io.StringIO()):
        ingest(tmp / "src", tmp / "npz", cfg, workers=1, progress=False)
    return record_disk(sorted((tmp / "npz").glob("*.npz")), tmp / "resave")


def disk_demo(args, tmp: Path, log) -> dict[str, Any]:
    """A few demo clips (the small demo set: synthetic talking faces through the real ingest), in every storage.

    The demo needs the synthesis and ingest stacks (optional): imported here, a missing one skips the figure.
    """
    try:
        from workbench.synthetic.demo import build_demo
        log("scale: disk on demo crops: building the small demo set (synth + ingest) ...")
        cfg = Config.load(None, [f"data.face_size={args.face_size}", f"data.lip_size={args.lip_size}"])
        with contextlib.redirect_stdout(io.StringIO()):
            npz = build_demo(tmp / "demo", cfg, small=True, progress=False)
    except Exception as e:  # noqa: BLE001 - no ffmpeg / detector: the figure is skipped, said so
        return {"skipped": f"demo could not be built ({type(e).__name__}: {e})"}
    return record_disk(sorted(Path(npz).glob("*.npz")), tmp / "resave")


# ------------------------------------------------------------------ the part
def _pooled(reps: list[dict]) -> dict[str, Any]:
    """Repeated runs of one path and size as one: clips/s over all their timed steps, the highest peak memory."""
    r = dict(reps[0])
    clips, seconds = sum(sum(x["timed_clips"]) for x in reps), sum(sum(x["step_s"][1:]) for x in reps)
    r.update(train_clips_per_s=clips / seconds, repeat_clips_per_s=[x["steady_clips_per_s"] for x in reps],
             val_clips_per_s=sum(x["val_clips"] for x in reps) / sum(x["eval_s"] for x in reps),
             peak_tree_mb=max(x["peak_tree_mb"] for x in reps), peak_rss_mb=max(x["peak_rss_mb"] for x in reps),
             repeats=len(reps))
    return r


def _write_sets(tmp: Path, sets: list[tuple[str, int]], args, pool, log) -> dict[tuple[str, int], dict]:
    """The records of each (storage, clips) set, then written back to disk: what write_scale_set says of each."""
    written = {}
    for storage, n in sets:
        log(f"scale: writing {n} records of {args.scale_seconds:g} s ({storage}) ...")
        written[storage, n] = write_scale_set(tmp / f"scale_{storage}_{n}", n, args.scale_seconds, pool, storage,
                                              seed=args.seed)
        log(f"scale: written in {written[storage, n]['write_s']:.0f} s")
    os.sync()  # the kernel's writeback of GBs of dirty pages must not fall on a timed epoch (a run started right
    # after writing its set measured 1.06 clips/s, the same path's next run 1.68)
    return written


def bench_scale(args, spec: dict, tmp: Path, log) -> dict[str, Any]:
    """Both dataset sizes on the new path, the small one on today's in-memory path, and disk on real crops.

    The small size's two paths run `--scale-repeats` times, alternating (new, in-memory, new, ...): on a shared
    machine the speed drifts by tens of percent over minutes, and alternating lets the drift fall on both.
    """
    sizes = [int(x) for x in str(args.scale_clips).split(",")]
    small, large = min(sizes), max(sizes)
    pool = natural_pool(args.face_size, args.lip_size, seed=args.seed)
    defaults = Config().data
    paths = {"new": ("lossless", defaults.cache_gb, defaults.num_workers), "mem": ("raw", 1e6, 0)}
    names = {("new", n): f"new path, {n} clips" for n in sizes} | {("mem", small): f"in-memory (today), {small} clips"}
    repeats = max(1, args.scale_repeats)
    reps: dict[tuple, list] = {}
    res: dict[str, Any] = {"seconds": args.scale_seconds, "sizes": sizes, "repeats": repeats}
    for phase in ([("new", small), ("mem", small)] * repeats, [("new", n) for n in sorted(set(sizes)) if n != small]):
        sets = sorted({(paths[path][0], n) for path, n in phase})
        written = _write_sets(tmp, sets, args, pool, log)
        for path, n in phase:
            storage, cache_gb, workers = paths[path]
            root = tmp / f"scale_{storage}_{n}"
            log(f"scale: {names[path, n]}: an epoch of fold 0 (run {len(reps.get((path, n), [])) + 1}) ...")
            r = run_worker("scale", {**spec, "root": str(root), "cache_gb": cache_gb, "num_workers": workers,
                                     "out": str(tmp / f"scale_out_{storage}_{n}")}, True, args.in_process, tmp)
            data = written[storage, n]
            r.update(storage=storage, clips=n, disk_bytes=data["disk_bytes"], bytes_per_hour=data["bytes_per_hour"])
            reps.setdefault((path, n), []).append(r)
        for storage, n in sets:  # the large set needs the disk
            shutil.rmtree(tmp / f"scale_{storage}_{n}", ignore_errors=True)
    runs = res["runs"] = {names[k]: _pooled(v) for k, v in reps.items()}
    new_s, new_l, mem = runs[names["new", small]], runs[names["new", large]], runs[names["mem", small]]
    pairs = [a / b for a, b in zip(new_s["repeat_clips_per_s"], mem["repeat_clips_per_s"])]
    res["ratios"] = {"peak_mb_large_minus_small": new_l["peak_tree_mb"] - new_s["peak_tree_mb"],
                     "clips_per_s_new_vs_memory": new_s["train_clips_per_s"] / mem["train_clips_per_s"],
                     "clips_per_s_new_vs_memory_pairs": pairs,
                     "clips_per_s_new_large_vs_memory": new_l["train_clips_per_s"] / mem["train_clips_per_s"],
                     "disk_memory_vs_new": mem["bytes_per_hour"] / new_s["bytes_per_hour"]}
    if not args.scale_no_real:
        res["disk_real_face"] = disk_real_face(args, tmp / "scale_real", log)
        res["disk_demo"] = disk_demo(args, tmp / "scale_demo", log)
    return res


def check(res: dict, add) -> None:
    """The issue's targets for this part."""
    r = res["ratios"]
    add("scale: peak memory, large minus small dataset (MiB)", r["peak_mb_large_minus_small"], 1024, "<=",
        f"{max(res['sizes'])} vs {min(res['sizes'])} clips, whole process tree (PSS)")
    add("scale: training clips/s, new path / in-memory path", r["clips_per_s_new_vs_memory"], 0.9, ">=",
        f"{min(res['sizes'])} clips, augmentation off, same threads")
    for key, what in (("disk_real_face", "1080p real-face clip"), ("disk_demo", "demo clips")):
        d = res.get(key)
        if d and "skipped" not in d:
            add(f"scale: disk, uncompressed / lossless, {what}", d["ratio_lossless"], 3.0, ">=")


def render(res: dict) -> list[str]:
    """The part's report lines."""
    lines = [f"data path at scale: a training epoch of fold 0 of 5 (>= {MIN_TIMED_STEPS} timed steps) and its "
             f"validation, {res['seconds']:g} s clips at 30 fps (reference model, batch 8 x 50 frames); the small "
             f"size's paths run {res.get('repeats', 1)} times each, alternating"]
    head = f"  {'':34}{'validate':>9}{'cache fill':>11}{'train':>9}{'val':>8}{'peak mem':>10}{'peak RSS':>10}{'disk':>10}"
    lines += [head, f"  {'':34}{'s':>9}{'s':>11}{'clips/s':>9}{'clips/s':>8}{'MiB':>10}{'MiB':>10}{'GB/h':>10}"]
    for name, r in res["runs"].items():
        lines.append(f"  {name:34}{r['validate_s']:>9.1f}{r['preload_s']:>11.1f}{r['train_clips_per_s']:>9.2f}"
                     f"{r['val_clips_per_s']:>8.2f}{r['peak_tree_mb']:>10.0f}{r['peak_rss_mb']:>10.0f}"
                     f"{r['bytes_per_hour'] / 1e9:>10.2f}")
    for name, r in res["runs"].items():
        each = ", ".join(f"{x:.2f}" for x in r.get("repeat_clips_per_s", []))
        lines.append(f"    {name}: {r['storage']} records, cache {r['cache_gb']:g} GB ({r['cached_records']} videos "
                     f"cached{', all' if r['all_cached'] else ''}), {r['workers']} loader worker(s), "
                     f"{r['train_clips']} training / {r['val_clips']} validation clips, {r.get('epochs', 1)} epoch(s); "
                     f"first step {r.get('first_step_s', float('nan')):.1f} s (start-up, not in clips/s)"
                     + (f"; train clips/s of its {r['repeats']} runs: {each}" if r.get("repeats", 1) > 1 else ""))
    pairs = res.get("ratios", {}).get("clips_per_s_new_vs_memory_pairs", [])
    if len(pairs) > 1:
        lines.append("  training clips/s, new path / in-memory path, run by run (alternating): " + ", ".join(
            f"{x:.2f}" for x in pairs) + f"; pooled {res['ratios']['clips_per_s_new_vs_memory']:.2f}")
    lines.append("  (peak mem: PSS of the trainer and its loader workers together; peak RSS: the trainer's VmHWM)")
    for key, what in (("disk_real_face", "the 1080p real-face clip"), ("disk_demo", "demo clips")):
        d = res.get(key)
        if not d:
            continue
        if "skipped" in d:
            lines.append(f"  disk on {what}: skipped: {d['skipped']}")
            continue
        g = d["gb_per_hour"]
        lines.append(f"  disk on {what} ({d['records']} records, {d['seconds']:.0f} s): GB per hour of video: raw "
                     f"{g['raw']:.1f}, lossless {g['lossless']:.2f} ({d['ratio_lossless']:.1f}x smaller), "
                     f"jpeg {g['jpeg']:.2f} ({d['ratio_jpeg']:.1f}x)")
        lines.append(f"    {'codec':18}{'ratio':>8}{'bytes/frame':>13}{'encode ms':>11}{'decode ms':>11}   (face + lip)")
        for name, c in d["codecs"].items():
            lines.append(f"    {name:18}{c['ratio']:>8.2f}{c['bytes_per_frame']:>13.0f}{c['encode_ms']:>11.2f}"
                         f"{c['decode_ms']:>11.2f}")
    return lines
