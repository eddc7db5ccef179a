"""Synthetic speech: a syllable schedule spoken by a glottal source through formants, and vocoder artefacts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

# F1-F3 (Hz) of five vowels (a, e, i, o, u) and the formant bandwidths
VOWEL_FORMANTS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                           [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])


@dataclass
class Schedule:
    """What is said, independent of the voice: per-sample voiced / unvoiced gains, vowels and intonation."""

    voiced: np.ndarray  # (N,) float32 gain in [0, 1]
    unvoiced: np.ndarray  # (N,) float32 gain in [0, 1]
    vowels: np.ndarray  # (5, N) float32 crossfaded vowel weights
    pitch: np.ndarray  # (N,) float32 relative pitch contour around 1
    sample_rate: int


def _ramp_window(n: int, attack: int, release: int) -> np.ndarray:
    """A gain window of n samples rising over ``attack`` and falling over ``release`` samples."""
    i = np.arange(n, dtype=np.float32)
    return np.clip(np.minimum((i + 1) / max(attack, 1), (n - i) / max(release, 1)), 0, 1)


def make_schedule(rng: np.random.Generator, n_samples: int, sample_rate: int, rate: float,
                  onset: float = 0.0) -> Schedule:
    """Phrases of 3-8 syllables at ``rate`` per second with pauses, starting at ``onset`` seconds."""
    sr = sample_rate
    voiced = np.zeros(n_samples, np.float32)
    unvoiced = np.zeros(n_samples, np.float32)
    vowel_id = np.zeros(n_samples, np.int8)
    knots_t, knots_p = [0], [1.0]
    t = int(onset * sr)
    end = n_samples - int(0.08 * sr)
    while t < end:
        n_syl = int(rng.integers(3, 9))
        for j in range(n_syl):
            dur = int(sr * np.clip(rng.normal(1 / rate, 0.25 / rate), 0.09, 0.45))
            cons = int(sr * rng.uniform(0.03, 0.07)) if rng.random() < 0.6 else 0
            vowel, amp = int(rng.integers(5)), float(rng.uniform(0.55, 1.0))
            a, b = t + cons, min(t + dur, end)
            if b <= a:
                break
            if cons:
                unvoiced[t:a] = np.maximum(unvoiced[t:a], amp * 0.8 * _ramp_window(a - t, cons // 3, cons // 3))
            voiced[a:b] = _ramp_window(b - a, int(0.015 * sr), int(0.04 * sr)) * amp
            vowel_id[t:b] = vowel
            knots_t.append(t + dur // 2)
            knots_p.append(1.0 + 0.08 * (1 - 2 * j / max(n_syl - 1, 1)) + rng.uniform(-0.04, 0.04))
            t += dur
        t += int(sr * rng.uniform(0.15, 0.6))
    knots_t.append(n_samples)
    knots_p.append(knots_p[-1])
    pitch = np.interp(np.arange(n_samples), knots_t, knots_p).astype(np.float32)
    smooth = int(0.025 * sr)
    vowels = np.stack([uniform_filter1d((vowel_id == v).astype(np.float32), smooth) for v in range(5)])
    return Schedule(voiced=voiced, unvoiced=unvoiced, vowels=vowels, pitch=pitch, sample_rate=sr)


def _formant_sos(formants: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cascaded unit-DC-gain resonators (Klatt) as second-order sections."""
    r = np.exp(-np.pi * FORMANT_BANDWIDTHS / sample_rate)
    c = 2 * r * np.cos(2 * np.pi * np.minimum(formants, 0.45 * sample_rate) / sample_rate)
    gain = 1 - c + r ** 2
    return np.stack([gain, 0 * r, 0 * r, np.ones_like(r), -c, r ** 2], axis=1)


def synthesize_voice(schedule: Schedule, f0: float, formant_scale: float, breath: float,
                     rng: np.random.Generator, *, monotone: float = 0.0) -> np.ndarray:
    """Speak a schedule: glottal pulses at f0 through vowel formants, plus consonant and breath noise."""
    sr = schedule.sample_rate
    n = len(schedule.voiced)
    pitch = 1 + (schedule.pitch.astype(np.float64) - 1) * (1 - monotone)
    phase = np.cumsum(f0 * pitch / sr)
    frac = phase % 1.0
    tp, tn = 0.4, 0.16  # Rosenberg pulse: opening and closing shares of the period
    flow = np.where(frac < tp, 0.5 * (1 - np.cos(np.pi * frac / tp)),
                    np.where(frac < tp + tn, np.cos(np.pi * (frac - tp) / (2 * tn)), 0.0))
    source = np.diff(flow, prepend=0.0) * 8.0
    voiced = np.zeros(n)
    for v, formants in enumerate(VOWEL_FORMANTS):
        voiced += schedule.vowels[v] * signal.sosfilt(_formant_sos(formants * formant_scale, sr), source)
    noise = rng.standard_normal(n)
    hiss = signal.sosfilt(signal.butter(4, 2500, "highpass", fs=sr, output="sos"), noise)
    aspiration = signal.sosfilt(signal.butter(2, [500, 3500], "bandpass", fs=sr, output="sos"), noise)
    y = voiced * schedule.voiced + 0.5 * hiss * schedule.unvoiced + breath * aspiration * schedule.voiced
    return (y / max(np.percentile(np.abs(y), 99.9), 1e-6) * 0.5).astype(np.float32)


def vocoder_artefacts(y: np.ndarray, sample_rate: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limit, 100 Hz frame buzz and hiss, all scaled by strength in [0, 1]."""
    if strength <= 0:
        return y
    cutoff = 7000 - 3500 * strength
    out = signal.sosfilt(signal.butter(6, min(cutoff, 0.45 * sample_rate), "lowpass", fs=sample_rate,
                                       output="sos"), y)
    t = np.arange(len(y)) / sample_rate
    out = out * (1 + 0.15 * strength * np.sign(np.sin(2 * np.pi * 100.0 * t)))  # 10 ms vocoder frames
    out += 0.004 * strength * rng.standard_normal(len(y)) * (np.abs(out) > 0.01)
    return (out / max(np.percentile(np.abs(out), 99.9), 1e-6) * 0.5).astype(np.float32)


def frame_bounds(n_frames: int, n_samples: int) -> np.ndarray:
    """Sample index where each video frame starts, plus the end (n_frames + 1 values)."""
    return np.round(np.linspace(0, n_samples, n_frames + 1)).astype(np.int64)


def _frame_means(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Mean (float64) of a per-sample signal over each video frame's samples; 0 for a frame without samples."""
    b = frame_bounds(n_frames, len(x))
    return np.add.reduceat(np.append(x, 0.0), b[:-1]) / np.maximum(np.diff(b), 1)


def frame_envelope(schedule: Schedule, n_frames: int) -> np.ndarray:
    """Speech loudness per video frame in [0, 1] (mean voiced + consonant gain over the frame)."""
    gain = schedule.voiced + 0.4 * schedule.unvoiced
    return np.clip(_frame_means(gain, n_frames), 0, 1).astype(np.float32)
