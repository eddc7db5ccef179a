"""Audio front end: decode a container's audio with ffmpeg, MFCC features and leading/trailing silence.

librosa and imageio-ffmpeg are imported inside the functions that use them: training (audio noise needs
`mfcc`) runs on machines that have neither ffmpeg nor, for the video parts, librosa.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.core.config import AudioConfig
from workbench.data.audio import mfcc, quantize, silence
from workbench.data.records import WAVE_SCALE

# First bytes of the containers we accept; used to tell a damaged video from a file that is no video at all.
_MAGIC = (
    (4, b"ftyp"),  # MP4 / MOV / M4V / 3GP
    (4, b"moov"),  # old QuickTime
    (4, b"mdat"),  # QuickTime with the media data first
    (4, b"wide"),  # QuickTime
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x47"),  # MPEG transport stream
)


class IngestError(RuntimeError):
    """One video cannot be ingested; ``reason`` says why in a few words (it goes to failures.csv)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


AudioError = IngestError  # the audio track's reasons are ingest reasons: one error class, one failures.csv column


@dataclass
class AudioFeatures:
    """MFCC frames and the silence measured at both ends of the track."""

    mfcc: np.ndarray  # (T_a, n_mfcc) float32, time-major, computed from `wave`
    wave: np.ndarray  # (N,) int16 mono waveform at the sample rate (y * 32767, rounded)
    rate: float  # MFCC frames per second (sample_rate / hop_length)
    duration: float  # seconds of decoded audio
    lead_silence: float  # seconds
    trail_silence: float  # seconds


def looks_like_video(path: str | Path) -> bool:
    """True when the file starts with the header of a known video container."""
    with open(path, "rb") as f:
        head = f.read(16)
    return any(head[off:off + len(magic)] == magic for off, magic in _MAGIC)


def _last_line(stderr: str) -> str:
    """The last non-empty line of ffmpeg's stderr, stripped ("no message" when there is none)."""
    return next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "no message")


def _explain_open_error(path: Path, stderr: str) -> str:
    """A specific reason for an input ffmpeg could not open."""
    last = _last_line(stderr)
    if not looks_like_video(path):
        with open(path, "rb") as f:
            head = f.read(512)
        kind = "looks like text" if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head) else "unknown header"
        return f"not a video file ({kind}; ffmpeg: {last})"
    if "moov atom not found" in stderr:
        return "truncated or corrupt container (moov atom not found)"
    return f"corrupt container (ffmpeg: {last})"


def decode_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """The container's first audio track as mono float32 at ``sample_rate``; raise AudioError with the reason."""
    import imageio_ffmpeg
    path = Path(path)
    if not path.is_file():
        raise AudioError("file not found")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
           "-i", str(path), "-map", "0:a:0?", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    stderr = proc.stderr.decode("utf-8", "replace")
    if "Error opening input" in stderr:
        raise AudioError(_explain_open_error(path, stderr))
    if "does not contain any stream" in stderr:
        raise AudioError("no audio track")
    y = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4")
    if proc.returncode != 0 and y.size == 0:
        raise AudioError(f"audio could not be decoded (ffmpeg exit {proc.returncode}: {_last_line(stderr)})")
    if y.size == 0:
        raise AudioError("audio track is empty (0 samples)")
    if not np.isfinite(y).all():
        raise AudioError("audio track decodes to NaN or inf samples")
    return y.astype(np.float32)


def audio_features(path: str | Path, cfg: AudioConfig, top_db: float = 40.0) -> AudioFeatures:
    """Decode a file's audio and compute its MFCC frames (from the int16 waveform that is kept) and end silences."""
    wave = quantize(decode_audio(path, cfg.sample_rate))
    y = wave.astype(np.float32) / np.float32(WAVE_SCALE)
    lead, trail = silence(y, cfg.sample_rate, top_db=top_db, hop_length=cfg.hop_length)
    return AudioFeatures(mfcc=mfcc(y, cfg), wave=wave, rate=cfg.sample_rate / cfg.hop_length,
                         duration=len(y) / cfg.sample_rate,
                         lead_silence=float(lead), trail_silence=float(trail))
