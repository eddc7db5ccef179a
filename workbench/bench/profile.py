"""One training step taken apart (part of `workbench bench --parts train`): where the time goes.

Each piece of a step at the bench's sizes runs on its own, forward and backward with a fixed upstream
gradient, on inputs of the shapes it sees in a real step: the face and lip CNNs on every frame of the
batch, the face and lip GRUs, the audio GRU over the MFCC steps of a clip of `clip_seconds` (20 s: 625
sequential steps; the uniform sampler spans the whole video, so the clip's audio is the video's), the
attention + classifier + loss, and the optimiser step (gradient clipping, Adam). The whole synthetic
step is timed too: what the pieces do not add up to is framework overhead. Both paths: the fast one
(fast kernels, channels-last, bf16 autocast where the CPU has it) and the naive reference (fp32, NCHW,
packed GRUs, full attention). Data loading is measured separately by the train part. The report's lines
are `workbench.bench.render.render_profile`.

Imports torch at import time: import this module only once the runtime environment is set (a worker
process, or after `launch.apply_fast_env`).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from workbench.bench.naive import naive_cnn, naive_forward
from workbench.core.runtime import amp_dtype, autocast, init_seed
from workbench.model.losses import build_objective
from workbench.model.mmmsba import MMMSBA


def _time(fn: Callable[[], None], repeats: int) -> list[float]:
    fn()  # warm-up: first-touch allocations, kernel selection
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _pieces(model, cfg, fast: bool, B: int, T: int, Ta: int, seed: int) -> dict[str, Callable[[], None]]:
    """name -> a function running that piece forward and backward once."""
    dev = torch.device("cpu")
    dtype = amp_dtype(dev, cfg.train.amp) if fast else None
    g = torch.Generator().manual_seed(seed)
    D = cfg.model.dense
    face = torch.randint(0, 256, (B * T, cfg.data.face_size, cfg.data.face_size, 3), dtype=torch.uint8, generator=g)
    lip = torch.randint(0, 256, (B * T, cfg.data.lip_size, cfg.data.lip_size, 3), dtype=torch.uint8, generator=g)
    if not fast:
        face, lip = face.float() / 255.0, lip.float() / 255.0
    mask = torch.ones(B, T, dtype=torch.bool)
    lengths, alen = mask.sum(1), torch.full((B,), Ta)
    feats = {k: torch.randn(B, n, d, generator=g).requires_grad_() for k, n, d in
             (("face", T, model.face_cnn.out_dim), ("lip", T, model.lip_cnn.out_dim), ("audio", Ta, cfg.audio.n_mfcc))}
    fused = [torch.randn(B, n, D, generator=g).requires_grad_() for n in (T, T, Ta)]
    audio_idx = torch.linspace(0, Ta - 1, T).long()[None].expand(B, T)
    label = torch.arange(B) % 2
    objective = build_objective(cfg.loss, [1, 1])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)

    def backward(out: torch.Tensor) -> None:
        out.float().backward(torch.ones_like(out, dtype=torch.float32) / out.numel())

    def cnn(m, x):
        def run():
            with autocast(dev, dtype):
                y = m(x) if fast else naive_cnn(m, x)
            backward(y)
        return run

    def gru(enc, x, n):
        def run():
            with autocast(dev, dtype):
                y = enc(x, n)
            backward(y)
        return run

    def head():
        with autocast(dev, dtype):
            out = model.fuse(*fused, audio_idx, mask)
        objective(out["frame_logits"], out["video_logits"], label, mask)["loss"].backward()

    def optimiser():
        for p in model.parameters():
            p.grad = torch.zeros_like(p) if p.grad is None else p.grad
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()

    return {"face CNN": cnn(model.face_cnn, face), "lip CNN": cnn(model.lip_cnn, lip),
            "face GRU": gru(model.face_seq, feats["face"], lengths), "lip GRU": gru(model.lip_seq, feats["lip"], lengths),
            f"audio GRU ({Ta} steps)": gru(model.audio_seq, feats["audio"], alen),
            "attention + classifier + loss": head, "optimiser (clip + Adam)": optimiser}


def profile_step(cfg, fast: bool, *, clip_seconds: float = 20.0, repeats: int = 2, seed: int = 0) -> dict[str, Any]:
    """Seconds of each piece of one training step and of the whole step (without data), CPU, for one path."""
    init_seed(seed)
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc).train()
    model = model.to(memory_format=torch.channels_last) if fast else model.use_fast_kernels(False)
    B, T = cfg.train.batch_size, cfg.data.max_frames
    Ta = int(round(clip_seconds * cfg.audio.sample_rate / cfg.audio.hop_length)) + 1
    out: dict[str, Any] = {"path": "fast" if fast else "naive", "batch": B, "frames": T, "audio_steps": Ta,
                           "pieces": {}}
    for name, fn in _pieces(model, cfg, fast, B, T, Ta, seed).items():
        out["pieces"][name] = _time(fn, repeats)
    dev = torch.device("cpu")
    dtype = amp_dtype(dev, cfg.train.amp) if fast else None
    g = torch.Generator().manual_seed(seed + 1)
    batch = {"face": torch.randint(0, 256, (B, T, cfg.data.face_size, cfg.data.face_size, 3), dtype=torch.uint8, generator=g),
             "lip": torch.randint(0, 256, (B, T, cfg.data.lip_size, cfg.data.lip_size, 3), dtype=torch.uint8, generator=g),
             "audio": torch.randn(B, Ta, cfg.audio.n_mfcc, generator=g), "mask": torch.ones(B, T, dtype=torch.bool),
             "audio_idx": torch.linspace(0, Ta - 1, T).long()[None].expand(B, T).contiguous(),
             "audio_lengths": torch.full((B,), Ta), "label": torch.arange(B) % 2}
    if not fast:
        batch = {**batch, "face": batch["face"].float() / 255.0, "lip": batch["lip"].float() / 255.0}
    objective = build_objective(cfg.loss, [1, 1])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)

    def step():
        with autocast(dev, dtype):
            o = model(batch) if fast else naive_forward(model, batch)
        loss = objective(o["frame_logits"], o["video_logits"], batch["label"], batch["mask"])["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()

    out["step"] = _time(step, repeats)
    out["amp_dtype"] = str(dtype).replace("torch.", "") if dtype is not None else None
    return out
