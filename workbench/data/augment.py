"""The study's training-time augmentations: JPEG re-compression, Gaussian noise, colour jitter, audio noise.

Each is a switch of `AugmentConfig` (``augment.*``) with its probability; ``augment.only_real`` restricts
them to REAL clips. They run inside `ClipDataset.__getitem__` (so in the DataLoader workers) for training
draws only, never at evaluation. Every choice is keyed by the draw (seed, epoch, position), each
augmentation from its own stream: switching one on changes neither the clip's frames nor another's draws.

Video (face and lip crops, one set of parameters per clip: one camera and one encoder for all its frames):
    colour jitter   hue shift (OpenCV HSV), then brightness, contrast and saturation factors;
    noise           additive Gaussian noise, a fresh field per pixel and frame, sigma drawn per clip;
    compression     JPEG encode and decode (OpenCV, 4:2:0) at a quality drawn per clip.
Audio: white noise added to the 16 kHz waveform kept in the record (``audio_wave``) at an SNR drawn per
clip, and the MFCCs computed again from the noisy waveform (librosa, imported when first needed).

Written with OpenCV and numpy, already dependencies: every operation here is a few lines of them, with
no second image library to install (AlbumentationsX is AGPL; albumentations queries the network when
imported unless told not to) and uint8 crops in, uint8 crops out.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from workbench.core.config import AudioConfig, AugmentConfig
from workbench.data.audio import mfcc
from workbench.data.records import WAVE_SCALE
from workbench.data.storage import BadRecordError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB weights of grey (ITU-R BT.601)
STREAMS = {"decide": 0, "pixels": 1, "audio": 2}


@dataclass
class Plan:
    """What one training draw gets: None where an augmentation is off or not drawn."""

    jpeg_quality: int | None
    noise_std: float | None
    jitter: tuple[float, float, float, float] | None  # brightness, contrast, saturation factors; hue shift (turns)
    snr_db: float | None
    key: tuple[int, ...]  # the draw's key, for the per-pixel and per-sample noise streams

    @property
    def audio_noise(self) -> bool:
        return self.snr_db is not None

    @property
    def video(self) -> bool:
        return self.jpeg_quality is not None or self.noise_std is not None or self.jitter is not None


def active(cfg: AugmentConfig) -> bool:
    """True when any augmentation is switched on."""
    return cfg.compression or cfg.noise or cfg.color_jitter or cfg.audio_noise


def needs_wave(cfg: AugmentConfig) -> bool:
    """True when training reads the waveform (audio noise is on)."""
    return cfg.audio_noise


def prepare(cfg: AugmentConfig, audio: AudioConfig) -> None:
    """Load what the switched-on augmentations need now, in the trainer: loader workers forked from it inherit it
    instead of paying it again every epoch (librosa's first MFCC takes ~2 s: imports and compiled kernels)."""
    if cfg.audio_noise:
        try:
            mfcc(np.zeros(audio.n_fft, dtype=np.float32), audio)
        except ImportError as e:
            raise ImportError(f"augment.audio_noise needs librosa ({e}); install it or switch audio noise off") from e


def _stream(key: tuple[int, ...], name: str) -> np.random.Generator:
    return np.random.default_rng([*map(int, key), 104729, STREAMS[name]])


def plan(cfg: AugmentConfig, label: int, key: tuple[int, ...]) -> Plan | None:
    """The augmentations of the draw `key` for a clip of `label`; None when none applies."""
    if not active(cfg):
        return None
    if cfg.only_real and label != 0:
        return None
    rng = _stream(key, "decide")
    u = rng.random(4)  # every decision and parameter is drawn, used or not: the streams never shift
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    sigma = float(rng.uniform(*cfg.noise_std))
    jitter = (float(rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)),
              float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)),
              float(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)),
              float(rng.uniform(-cfg.hue, cfg.hue)))
    snr = float(rng.uniform(*cfg.snr_db))
    p = Plan(jpeg_quality=quality if cfg.compression and u[0] < cfg.compression_p else None,
             noise_std=sigma if cfg.noise and u[1] < cfg.noise_p else None,
             jitter=jitter if cfg.color_jitter and u[2] < cfg.color_jitter_p else None,
             snr_db=snr if cfg.audio_noise and u[3] < cfg.audio_noise_p else None, key=tuple(key))
    return p if p.video or p.audio_noise else None


# ------------------------------------------------------------------ video
def color_jitter(x: np.ndarray, jitter: tuple[float, float, float, float]) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> float32: hue shift, then brightness, contrast (about each frame's mean grey), saturation."""
    b, c, s, h = jitter
    if h:
        shift = int(round(h * 256)) % 256
        hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV_FULL) for f in x])  # hue in 0..255 for a full turn
        hsv[..., 0] += np.uint8(shift)  # wraps modulo 256: a rotation of the hue circle
        x = np.stack([cv2.cvtColor(f, cv2.COLOR_HSV2RGB_FULL) for f in hsv])
    y = x.astype(np.float32) * np.float32(b)
    grey = y @ LUMA  # (T, H, W)
    mean = grey.mean(axis=(1, 2), keepdims=True)[..., None]  # (T, 1, 1, 1)
    y = (y - mean) * np.float32(c) + mean
    grey = (y @ LUMA)[..., None]
    return (y - grey) * np.float32(s) + grey


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB through a JPEG encoder and decoder at `quality`."""
    out = np.empty_like(x)
    for k, f in enumerate(x):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB, dst=out[k])
    return out


def _one(x: np.ndarray, p: Plan, rng: np.random.Generator) -> np.ndarray:
    y = color_jitter(x, p.jitter) if p.jitter is not None else None
    if p.noise_std is not None:
        y = x.astype(np.float32) if y is None else y
        y += rng.standard_normal(y.shape, dtype=np.float32) * np.float32(p.noise_std)
    if y is not None:
        x = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return jpeg(x, p.jpeg_quality) if p.jpeg_quality is not None else x


def apply_video(face: torch.Tensor, lip: torch.Tensor, p: Plan) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's (T, H, W, 3) and (T, h, w, 3) uint8 crops after the plan's video augmentations."""
    if not p.video:
        return face, lip
    rng = _stream(p.key, "pixels")
    return (torch.from_numpy(_one(face.numpy(), p, rng)), torch.from_numpy(_one(lip.numpy(), p, rng)))


# ------------------------------------------------------------------ audio
def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """y plus white Gaussian noise at `snr_db` below the signal's mean power (a silent signal is returned as is)."""
    power = float(np.mean(np.square(y, dtype=np.float64)))
    if power == 0.0:
        return y
    sigma = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (y + rng.standard_normal(y.shape, dtype=np.float32) * np.float32(sigma)).astype(np.float32)


def noisy_mfcc(rec, p: Plan, cfg: AudioConfig) -> np.ndarray:
    """The record's MFCC computed again from its waveform with noise at the plan's SNR, frame for frame as stored."""
    if rec.audio_wave is None:
        raise BadRecordError(rec.path, "augment.audio_noise needs the waveform 'audio_wave', which this record "
                                       "lacks (written before ingest kept it): ingest the videos again")
    if int(rec.wave_rate) != cfg.sample_rate:
        raise BadRecordError(rec.path, f"'audio_wave' is at {rec.wave_rate:g} Hz, audio.sample_rate is {cfg.sample_rate}")
    y = add_noise(rec.audio_wave.astype(np.float32) / np.float32(WAVE_SCALE), p.snr_db, _stream(p.key, "audio"))
    m = mfcc(y, cfg)
    n = rec.audio.shape[0]
    if m.shape[0] < n:  # a waveform shorter than the stored MFCC: repeat the last frame
        m = np.concatenate([m, np.repeat(m[-1:], n - m.shape[0], axis=0)])
    return np.ascontiguousarray(m[:n])
