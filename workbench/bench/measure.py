"""The torch side of the bench's helpers: peak memory, device sync, GEMM peak, device info, a checkpoint.

Imports torch at import time: import this module only once the runtime environment is set (in a worker
process, whose environment its parent set, or in `bench.run` after `launch.apply_fast_env`).
"""
from __future__ import annotations

import gc
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

from workbench.bench.common import proc_status
from workbench.core.runtime import amp_dtype, cpu_supports_bf16, init_seed
from workbench.model.mmmsba import MMMSBA

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def isa_flags() -> dict[str, Any]:
    """The CPU's vector instruction-set flags that matter to torch (/proc/cpuinfo) and torch's own kernel level."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = None
    return {"flags": [f for f in ISA_FLAGS if f in flags], "torch_capability": capability}


class PeakMemory:
    """Peak memory of this process over a `with` block: peak RSS minus the RSS at entry (MiB).

    On Linux the kernel's high-water mark is reset at entry (/proc/self/clear_refs), so the peak is the
    block's own; elsewhere ru_maxrss is used (a true peak only in a fresh process). On CUDA the device
    peak (max_memory_allocated) is recorded too.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.rss0 = proc_status("VmRSS") or 0.0
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "ru_maxrss"
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.cuda0 = torch.cuda.memory_allocated() / 2**20
        return self

    def __exit__(self, *exc) -> None:
        hwm = proc_status("VmHWM") if self.method.startswith("VmHWM") else None
        if hwm is None:
            ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            hwm = ru / 2**20 if sys.platform == "darwin" else ru / 1024.0
        self.peak_rss_mb = float(hwm)
        self.peak_mb = max(0.0, float(hwm) - self.rss0)
        self.cuda_peak_mb = None
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20 - self.cuda0

    def as_dict(self) -> dict[str, Any]:
        return {"peak_mb": self.peak_mb, "peak_rss_mb": self.peak_rss_mb, "rss_before_mb": self.rss0,
                "cuda_peak_mb": self.cuda_peak_mb, "method": self.method}


def sync(device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def gemm_peak(device: str, dtype_name: str, n: int | None = None, repeats: int = 5) -> dict[str, Any]:
    """Best-of-`repeats` GFLOPS of an n x n x n matrix product (the machine's practical peak for that dtype)."""
    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 2048)
    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    a @ b
    sync(dev)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync(dev)
        best = min(best, time.perf_counter() - t)
    return {"gflops": 2 * n**3 / best / 1e9, "dtype": dtype_name, "n": n}


def device_info(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    dev = torch.device(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"type": dev.type, "cpu": cpu, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_bf16": cpu_supports_bf16(), "isa": isa_flags()}
    dt = amp_dtype(dev, True)
    info["amp_dtype"] = str(dt).replace("torch.", "") if dt is not None else None
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["gpu_memory_gb"] = torch.cuda.get_device_properties(dev).total_memory / 1e9
    return info



def make_checkpoint(path: Path, cfg, seed: int) -> Path:
    """A model checkpoint (random weights, non-trivial BatchNorm statistics) that `load_model` reads."""
    init_seed(seed)
    model = MMMSBA(cfg.model, cfg.audio.n_mfcc)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, path)
    return path

