"""Where and how the code runs: usable cores, the torch device, mixed precision, seeds and RNG states."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with n torch threads (the count before is restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else all cores)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ------------------------------------------------------------------ device and precision
def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU; asking for CUDA without one fails loudly."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (else bf16 autocast is slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for this device, or None for full fp32."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context (disabled when dtype is None)."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def rng_state() -> dict[str, Any]:
    """Every random state a training epoch draws from: python, numpy, torch CPU and every CUDA device."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() saved (CUDA states only where this machine has the same devices)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def init_seed(seed: int) -> None:
    """Seed torch (CPU and CUDA) deterministically."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
