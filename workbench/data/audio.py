"""Audio features of a waveform: int16 quantisation, MFCC, leading and trailing silence."""
from __future__ import annotations

import numpy as np

from workbench.core.config import AudioConfig
from workbench.data.records import WAVE_SCALE


def quantize(y: np.ndarray) -> np.ndarray:
    """A float waveform in [-1, 1] as int16 (y * 32767, rounded, clipped): what records keep as ``audio_wave``."""
    return np.round(np.clip(y, -1.0, 1.0) * WAVE_SCALE).astype(np.int16)


def mfcc(y: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """MFCC frames (T_a, n_mfcc) float32 of a mono signal at ``cfg.sample_rate``."""
    import librosa
    m = librosa.feature.mfcc(y=y, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft, hop_length=cfg.hop_length)
    return np.ascontiguousarray(m.T, dtype=np.float32)


def silence(y: np.ndarray, sample_rate: int, top_db: float = 40.0, frame_length: int = 2048,
            hop_length: int = 512) -> tuple[float, float]:
    """Seconds of silence (quieter than ``top_db`` below the peak) at the start and the end of a signal."""
    import librosa
    duration = len(y) / sample_rate
    if len(y) == 0 or float(np.max(np.abs(y))) == 0.0:
        return duration, 0.0  # all silent: count it as leading silence
    _, (start, end) = librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)
    return start / sample_rate, max(0.0, (len(y) - end) / sample_rate)
