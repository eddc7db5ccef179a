"""Tiny npz datasets written directly in the record format, for tests and benchmarks.

No video decoding: faces are textured blobs whose mouth opening follows the audio energy in
REAL clips; FAKE clips carry a blending seam on the face and a mouth that ignores the audio.
The signal is in every frame, so both video-level and frame-level learning are possible.
Optionally (``fake_type``) a FAKE carries only one of the three cues, the audio tilt, the face seam or
the mouth, and (``segments``) only on some frames: a partial fake with per-frame labels. With ``lead_silence`` a
record's MFCCs are computed from a speech-like 16 kHz waveform (kept as ``audio_wave``) whose first ``lead_silence``
seconds are digitally silent (the mouth closed meanwhile): the leading-silence shortcut of Smeu et al. when only FAKE
clips get a silence.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from workbench.core.config import AudioConfig
from workbench.data.audio import mfcc as mfcc_of
from workbench.data.audio import quantize
from workbench.data.records import DEFAULT_AUDIO_RATE, WAVE_SCALE, VideoRecord, row_for, save_record, write_index

# which cues a FAKE toy record carries: all of them (the default), or one modality only
TOY_FAKE_TYPES = {"all": ("audio", "face", "lip"), "audio": ("audio",), "face": ("face",), "lip": ("lip",),
                  "none": ()}  # none: a FAKE label with no cue of its own (e.g. only a planted shortcut)


def toy_record(video_id: str, label: int, n_frames: int, *, face: int = 32, lip: int = 16, fps: float = 30.0,
               group: str = "id0", rng: np.random.Generator, strength: float = 1.0, fake_type: str = "all",
               segments: Sequence[tuple[int, int]] | None = None, wave: bool = False,
               lead_silence: float | None = None) -> VideoRecord:
    """One synthetic record: (T, face, face, 3) and (T, lip, lip, 3) uint8 crops plus (T_a, 40) MFCC.

    A FAKE carries the cues of ``fake_type`` (TOY_FAKE_TYPES) on every frame, or only on the frame ranges
    [k0, k1) of ``segments`` (then the record gets ``frame_label``). ``lead_silence`` (seconds, 0 for none): MFCCs
    computed from a kept speech-like waveform that starts with that much silence.
    """
    if fake_type not in TOY_FAKE_TYPES:
        raise ValueError(f"fake_type must be one of {sorted(TOY_FAKE_TYPES)}, got {fake_type!r}")
    cues = TOY_FAKE_TYPES[fake_type] if label == 1 else ()
    fake = np.ones(n_frames, bool) if segments is None else np.zeros(n_frames, bool)
    for k0, k1 in segments or ():
        fake[k0:k1] = True
    duration = n_frames / fps
    audio_rate = DEFAULT_AUDIO_RATE
    n_audio = int(np.ceil(duration * audio_rate)) + 1
    t_audio = np.arange(n_audio) / audio_rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t_audio + rng.uniform(0, 2 * np.pi))
    speech = None
    if lead_silence is not None:  # MFCCs of a kept waveform, silent for its first seconds
        envelope[t_audio < lead_silence] = 0.0
        speech, mfcc = speech_wave(envelope, duration, lead_silence, rng)
        t_old, t_audio = t_audio, np.arange(mfcc.shape[0]) / audio_rate
        envelope = np.interp(t_audio, t_old, envelope)
    else:
        mfcc = rng.normal(0, 1, (n_audio, 40)).astype(np.float32)
        mfcc[:, 0] += (envelope * 20 - 10).astype(np.float32)
    if "audio" in cues:  # a vocoder-like spectral tilt (on the audio of the fake frames)
        mfcc[fake[np.minimum((t_audio * fps).astype(int), n_frames - 1)], 1:6] += np.float32(2.0 * strength)
    ts = np.arange(n_frames) / fps
    env_frames = np.interp(ts, t_audio, envelope)
    if label == 1:  # the mouth follows someone else's audio
        other = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 2) * ts + rng.uniform(0, 2 * np.pi))
        env_frames = np.where(fake, other, env_frames) if "lip" in cues else env_frames
    yy, xx = np.mgrid[0:face, 0:face] / face
    skin = rng.uniform(90, 200, 3)
    base = (skin[None, None] * (1 - 0.4 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2))[..., None])
    frames = np.empty((n_frames, face, face, 3), dtype=np.uint8)
    lips = np.empty((n_frames, lip, lip, 3), dtype=np.uint8)
    ly = np.arange(lip)[:, None] / lip
    for t in range(n_frames):
        f = base + rng.normal(0, 6, base.shape)
        if "face" in cues and fake[t]:
            seam = slice(face // 3, face // 3 + max(2, face // 8))
            f[:, seam] += 45 * strength * (1 + 0.3 * np.sin(t))  # flickering blend seam
        frames[t] = np.clip(f, 0, 255).astype(np.uint8)
        opening = 0.1 + 0.35 * env_frames[t]
        mouth = (np.abs(ly - 0.5) < opening / 2).astype(float) * np.ones((1, lip))
        lp = skin[None, None] * (1 - 0.8 * mouth[..., None]) + rng.normal(0, 5, (lip, lip, 3))
        lips[t] = np.clip(lp, 0, 255).astype(np.uint8)
    return VideoRecord(frames=frames, lip=lips, audio=mfcc, label=label, video_id=video_id, group=group, fps=fps,
                       timestamps=ts, face_found=np.ones(n_frames, dtype=bool), duration=duration,
                       audio_rate=audio_rate, frame_label=None if segments is None else fake.astype(np.int8),
                       audio_wave=speech if speech is not None else toy_wave(t_audio, envelope) if wave else None)


def toy_wave(t_audio: np.ndarray, envelope: np.ndarray, rate: float = 16000.0) -> np.ndarray:
    """A 16 kHz int16 waveform (a 220 Hz tone under the clip's speech envelope), for audio augmentation tests."""
    t = np.arange(int(round(t_audio[-1] * rate)) + 1) / rate
    y = 0.3 * np.interp(t, t_audio, envelope) * np.sin(2 * np.pi * 220.0 * t)
    return np.round(y * WAVE_SCALE).astype(np.int16)


def speech_wave(envelope: np.ndarray, duration: float, lead_silence: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(int16 waveform, its MFCC): a voiced tone and noise under a syllable envelope, silent for the first seconds."""
    cfg = AudioConfig()
    n = int(round(duration * cfg.sample_rate))
    t = np.arange(n) / cfg.sample_rate
    env = np.interp(t, np.arange(len(envelope)) / DEFAULT_AUDIO_RATE, envelope)
    y = 0.3 * env * (np.sin(2 * np.pi * rng.uniform(120, 220) * t) + 0.5 * rng.normal(0, 1, n))
    y[t < lead_silence] = 0.0
    w = quantize(y)
    return w, mfcc_of(w.astype(np.float32) / np.float32(WAVE_SCALE), cfg)


def make_toy_dataset(root: str | Path, *, n_real: int = 12, n_fake: int = 20, frames: tuple[int, int] = (24, 48),
                     face: int = 32, lip: int = 16, n_groups: int = 8, n_test_long: int = 0, long_frames: int = 300,
                     seed: int = 0, strength: float = 1.0, fake_types: Sequence[str] = ("all",),
                     n_partial: int = 0, n_test_long_fake: int = 0, n_test_short: tuple[int, int] = (0, 0),
                     wave: bool = False, n_unlabeled: tuple[int, int] = (0, 0),
                     withhold_labels: bool = False, splits: dict[str, tuple[int, int]] | None = None,
                     fake_lead_silence: tuple[float, float] | None = None) -> Path:
    """Write a toy dataset folder (npz + index.csv); returns the folder.

    FAKE clips take ``fake_types`` in turn; ``n_partial`` partial fakes (after the others, ids partial_*)
    carry theirs on one segment of a third to a half of their frames, with frame labels.
    The held-out test split (split=test): `n_test_long` long REAL and `n_test_long_fake` long FAKE clips of
    `long_frames` frames, and `n_test_short` = (REAL, FAKE) clips of pool length. ``wave`` keeps a waveform
    (``audio_wave``) in each record, which audio augmentation needs.
    `n_unlabeled` = (REAL-like, FAKE-like) clips of split=unlabeled (ids unlabeled_*, last), stored with label -1
    as ``workbench ingest --unlabeled`` does, or with ``withhold_labels`` with their true label kept in the files
    (the split alone marks them unlabelled: a test that the label is never read). ``splits`` = {name: (REAL, FAKE)}
    writes those clips with index.csv `split` = name (ids <name>_real_*, <name>_fake_*) instead of n_real / n_fake.
    ``fake_lead_silence`` = (lo, hi) seconds: every record's MFCCs come from a kept speech-like waveform, and each FAKE
    one starts with a silence drawn from that range (the leading-silence shortcut).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    pool = [(lab, name, False) for name, (nr, nf) in splits.items() for lab in (0, 1) for _ in range(nr if lab == 0 else nf)] \
        if splits else [(0, "train", False)] * n_real + [(1, "train", False)] * n_fake
    n_real = sum(1 for lab, _, _ in pool if lab == 0) if splits else n_real
    specs = (pool + [(0, "test", True)] * n_test_long
             + [(1, "test", True)] * n_test_long_fake + [(0, "test", False)] * n_test_short[0]
             + [(1, "test", False)] * n_test_short[1] + [(1, "partial", False)] * n_partial
             + [(0, "unlabeled", False)] * n_unlabeled[0] + [(1, "unlabeled", False)] * n_unlabeled[1])
    for i, (label, split, long) in enumerate(specs):
        n = long_frames if long else int(rng.integers(frames[0], frames[1] + 1))
        vid = f"{'real' if label == 0 else 'fake'}_{i:03d}" + ("_long" if long else "_test" if split == "test" else "")
        vid = f"unlabeled_{i:03d}" if split == "unlabeled" else vid
        vid = f"{split}_{vid.split('_test')[0]}" if splits and i < len(pool) else vid
        fake_type = fake_types[(i - n_real) % len(fake_types)] if label == 1 else "all"
        segments = None
        if split == "partial":
            vid, split = f"partial_{i:03d}", "train"
            length = int(rng.integers(n // 3, n // 2 + 1))
            start = int(rng.integers(0, n - length + 1))
            segments = [(start, start + length)]
        lead = (float(rng.uniform(*fake_lead_silence)) if label == 1 else 0.0) if fake_lead_silence else None
        rec = toy_record(vid, label, n, face=face, lip=lip, group=f"id{i % n_groups}", rng=rng, strength=strength,
                         fake_type=fake_type, segments=segments, wave=wave, lead_silence=lead)
        if split == "unlabeled" and not withhold_labels:
            rec.label = -1
        save_record(root / f"{vid}.npz", rec)
        rows.append(row_for(rec, f"{vid}.npz", split))
    write_index(root / "index.csv", rows)
    return root
