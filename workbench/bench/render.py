"""The printed report of `workbench bench`: the lines of each part, from the results dict (what --json writes).

Imports no torch (the CLI imports this module before the runtime environment is set).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from workbench.bench.scale import render as render_scale

W = 44  # width of a path's column


def _ms(s: dict, unit: str = "s", scale: float = 1.0, fmt: str = ".2f") -> str:
    if not s or s.get("median") is None:
        return "n/a"
    m, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    return f"{m:{fmt}} {unit} [{lo:{fmt}}-{hi:{fmt}}, n={s['n']}]"


def render(res: dict) -> str:
    """The human-readable report."""
    lines = _header(res)
    if "train" in res:
        lines += _train(res["train"])
    if "infer" in res:
        lines += _infer(res["infer"])
    if "ingest" in res:
        lines += _ingest(res["ingest"])
    if "scale" in res:
        lines.append("")
        lines += render_scale(res["scale"])
    if res.get("targets"):
        lines += _targets(res["targets"])
    lines.append(f"\nbench wall time {res['wall_s']:.0f} s")
    return "\n".join(lines)


def _header(res: dict) -> list[str]:
    """The device, the settings and the runtime of both paths."""
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
    return lines


def _train(tr: dict) -> list[str]:
    """Training: step time, clips/s, GFLOPS, validation, the study protocol, memory; the step taken apart."""
    f, n, w = tr["fast"], tr["naive"], W
    lines = ["", f"training (fwd+bwd+step, data loading included)  model FLOPs/step {tr['flops_per_step'] / 1e9:.1f} G"]
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
        lines.append("")
        lines += render_profile(f["profile"], n.get("profile"))
    return lines


def _infer(inf: dict) -> list[str]:
    """Long-video inference: seconds, frames/s, peak memory, agreement of the two paths."""
    f, n, w = inf["fast"], inf["naive"], W
    lines = ["", f"per-frame P(Fake) of one {inf['frames']}-frame video, stored record -> CSV (chunk {inf['chunk']})"]
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
    return lines


def _ingest(ing: dict) -> list[str]:
    """Ingest: seconds of video per wall-clock second, one worker and all, start-up included and steady."""
    if "skipped" in ing:
        return ["", f"ingest: skipped: {ing['skipped']}"]
    c, n = ing["clip"], ing["all_workers"]["workers"]
    lines = ["", f"ingest of {c['clips_per_worker']} copies per worker of a {c['width']}x{c['height']} {c['fps']:g} fps "
             f"clip of {c['seconds']:g} s with audio (seconds of video per wall-clock second)"]
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
    return lines


def _targets(targets: list[dict]) -> list[str]:
    lines = ["", "targets"]
    for t in targets:
        mark = {True: "MET    ", False: "NOT MET", None: "n/a    "}[t["met"]]
        val = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"  [{mark}] {t['name']}: {val} (target {t['target']}){' - ' + t['note'] if t['note'] else ''}")
    return lines


# ------------------------------------------------------------------ the training step taken apart
def summarize_profile(prof: dict[str, Any]) -> dict[str, Any]:
    """Median seconds per piece, their sum, the whole step and the share of each piece in it."""
    med = {k: float(np.median(v)) for k, v in prof["pieces"].items()}
    step = float(np.median(prof["step"]))
    return {"pieces": med, "sum": sum(med.values()), "step": step,
            "share": {k: v / step for k, v in med.items()} if step > 0 else {}}


def render_profile(fast: dict[str, Any], naive: dict[str, Any] | None) -> list[str]:
    """The breakdown (`workbench.bench.profile`) as report lines: seconds per piece, fast beside naive, and the
    share of the fast step."""
    f = summarize_profile(fast)
    n = summarize_profile(naive) if naive else None
    lines = [f"one training step taken apart (batch {fast['batch']} x {fast['frames']} frames, audio GRU over "
             f"{fast['audio_steps']} MFCC steps = a 20 s clip; no data loading), median seconds:",
             f"  {'':34}{'fast':>10}{'share':>8}{'naive':>10}   naive/fast"]
    for k, v in f["pieces"].items():
        nv = n["pieces"].get(k) if n else None
        lines.append(f"  {k:34}{v:>10.3f}{100 * f['share'].get(k, 0):>7.0f}%" +
                     (f"{nv:>10.3f}   {nv / v:>6.2f}x" if nv else ""))
    lines.append(f"  {'sum of the pieces':34}{f['sum']:>10.3f}{100 * f['sum'] / f['step']:>7.0f}%" +
                 (f"{n['sum']:>10.3f}   {n['sum'] / f['sum']:>6.2f}x" if n else ""))
    lines.append(f"  {'whole step (fwd+bwd+clip+Adam)':34}{f['step']:>10.3f}{100:>7.0f}%" +
                 (f"{n['step']:>10.3f}   {n['step'] / f['step']:>6.2f}x" if n else ""))
    return lines
