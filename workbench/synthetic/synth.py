"""Synthetic audio-visual deepfake videos: real faces, speech-like voices and four kinds of fake.

Every clip is a real ``.mp4`` (H.264 yuv420p + AAC) that ingest turns into npz records exactly as it
would a user's videos. A clip is deterministic for its seed and index (independent of worker order).

Identities
    One colour face (scikit-image ``astronaut``) and grey LFW faces (``lfw_subset``) upscaled and
    recoloured with an identity's own skin tone, placed on a head with hair, shoulders and a background.
    CenterFace runs on each identity's still image: its landmarks place the mouth and the eyes, and a face
    is kept only when it is still found with the mouth wide open or blurred, the eyes closed and at a
    tracker's smaller scale (about 30 of the 101 faces pass). Each identity has its own placement, head
    motion, blink rate and voice (pitch, formant scale, speaking rate, breathiness).
Audio
    A syllable schedule (~4-5 Hz, consonant noise bursts, vowels, pauses between phrases) drives a
    Rosenberg glottal pulse train at the identity's pitch through cascaded formant resonators.
REAL
    The mouth (a dark ellipse with lips and teeth over the detected mouth) opens with the clip's own
    audio envelope; ``mouth_audio_correlation`` measures that sync from lip crops.
FAKE (``fake_type``)
    ``lip_sync``   the mouth follows another utterance (the least correlated of three, mixed in with
                   weight sqrt(s)) and is blurred;
    ``face_swap``  another identity's face blended into the face with a seam, colour mismatch and flicker;
    ``audio_swap`` the same words re-synthesised in another identity's voice, band-limited, 100 Hz frame
                   buzz, flattened pitch and hiss;
    ``both``       face_swap + audio_swap (one donor).
    A fake's strength s = artifact_strength x U(0.4, 1), clipped to [0, 1], scales every artefact.
Partial fakes (``n_partial`` in the pool, ``n_test_partial`` in the test split; ``fake_type`` partial_audio,
partial_video or partial_both)
    A REAL clip with 1-3 manipulated segments (``partial_segments``) of ``partial_seconds`` each, inside the
    speech and at least 0.2 s apart, in the audio (the segment re-voiced as in audio_swap, crossfaded in
    over 5 ms inside the segment), the video (lip_sync or face_swap, ``partial_video``, over the segment's
    frames) or both. Everything outside the segments is sample- and pixel-identical to the clip rendered as
    REAL from the same seed. Segments start and end on frame boundaries; ``fake_segments`` lists them as
    [start_s, end_s, modality] (AV-Deepfake1M style), so that a frame is manipulated when its timestamp t
    has start <= t < end (what ingest writes as the record's ``frame_label``).
Held-out test clips (split ``test``)
    ``n_long_real`` REAL and ``n_long_fake`` FAKE (fake types in turn) long-form clips of ``long_duration``,
    ``n_test_real`` / ``n_test_fake`` short ones and ``n_test_partial`` partial fakes. These clips (and the
    partial fakes) draw from their own random stream, so a configuration without them plans exactly as before.
Shortcuts (``shortcut``)
    ``real_longer``: REAL clips are 1.75x longer; ``fake_leading_silence``: FAKE speech starts after
    0.5-1 s of silence (REAL after 0-0.15 s, as always).
Output
    ``OUT/real/*.mp4``, ``OUT/fake/*.mp4`` and ``OUT/labels.csv`` (written last: the completion marker)
    with columns path, label, group, fake_type, duration, split, donor, strength, speech_onset, fake_segments
    (JSON, partial fakes only) and partial_video (their video manipulation); an ingest manifest as it stands.
    Every clip is rendered streaming, one frame at a time (long-form clips never sit in memory).
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import soundfile as sf
from scipy import signal
from scipy.ndimage import uniform_filter1d
from tqdm.auto import tqdm

from workbench.core.config import Config, SynthConfig, choices_of
from workbench.core.runtime import usable_cores
from workbench.data.records import write_csv
from workbench.ingest.face import load_detector, square_patch

FAKE_TYPES = ("lip_sync", "face_swap", "audio_swap", "both")
SHORTCUTS = choices_of("synth.shortcut")
LABEL_COLUMNS = ("path", "label", "group", "fake_type", "duration", "split", "donor", "strength", "speech_onset",
                 "fake_segments", "partial_video")
PARTIAL_MODALITIES = ("audio", "video", "both")
PARTIAL_VIDEO = ("lip_sync", "face_swap")
SEGMENT_GAP = 0.2  # seconds between two fake segments of a clip, at least
SEGMENT_FADE = 0.005  # seconds of crossfade into and out of a re-voiced segment (inside the segment)
NEW_FIELDS = ("n_partial", "partial_segments", "partial_seconds", "partial_modalities", "partial_video",
              "n_long_fake", "n_test_real", "n_test_fake", "n_test_partial")  # left out of the stamp at defaults
REAL_LONGER_FACTOR = 1.75
STAMP = ".synth.json"
VERSION = 1

# F1-F3 (Hz) of five vowels (a, e, i, o, u) and the formant bandwidths
VOWEL_FORMANTS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                           [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])
MASK_A, MASK_P = 2.5, 1.5  # face blend mask: full inside, feathered to the crop's ellipse
TRACK_CONTEXT = 3.2  # a tracker's search region / the face box (ingest: 2 x 1.25, rounded up)
ROBUST_SCORE = 0.65  # an identity's face must score this in every robustness view
MOUTH_HEIGHT = 0.22  # half-height of a fully open mouth, in mouth-corner distances
ASTRONAUT_FACE = (slice(72, 182), slice(170, 280))  # rows, cols of the face in skimage.data.astronaut()


# ---------------------------------------------------------------------------------------------- identities
@dataclass
class Identity:
    """One synthetic person: a still image with a closed mouth, its landmarks, look and voice."""

    name: str
    image: np.ndarray  # (S, S, 3) uint8 RGB
    landmarks: np.ndarray  # (5, 2) eyes, nose, mouth corners (x, y) found by CenterFace on the image
    skin: np.ndarray  # (3,) float RGB of the face
    f0: float  # mean pitch, Hz
    formant_scale: float
    syllable_rate: float  # syllables per second
    breath: float  # aspiration noise share
    motion: float  # head-motion amplitude, pixels
    motion_hz: float
    blink_hz: float
    scene: np.ndarray  # (S, S, 3) float32 RGB in [0, 1]: everything but the face
    face: np.ndarray  # (n, n, 3) float32 RGB in [0, 1]: the face crop blended into the scene
    box: tuple[int, int, int]  # x0, y0, n of the face crop in the image

    @property
    def mouth(self) -> tuple[np.ndarray, float, float]:
        """Mouth centre (x, y), corner distance and angle in degrees."""
        left, right = self.landmarks[3], self.landmarks[4]
        d = right - left
        return (left + right) / 2, float(np.hypot(*d)), float(np.degrees(np.arctan2(d[1], d[0])))

    @property
    def eye_distance(self) -> float:
        """Distance between the eye landmarks in pixels."""
        return float(np.hypot(*(self.landmarks[1] - self.landmarks[0])))


def detect(image_rgb: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """CenterFace on an RGB image: dets (N, 5) and landmarks (N, 10), best score first."""
    dets, lms = load_detector()(image_rgb, threshold=threshold)
    order = np.argsort(-dets[:, 4]) if len(dets) else np.zeros(0, dtype=int)
    return dets[order], lms[order]


@lru_cache(maxsize=1)
def _face_sources() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's face (RGB float) and the 100 LFW face crops (grey float), all in [0, 1]."""
    from skimage import data

    astro = data.astronaut()[ASTRONAUT_FACE].astype(np.float32) / 255.0
    lfw = data.lfw_subset()[:100].astype(np.float32)  # the first 100 are faces, the rest are not
    return astro, lfw


def _recolour(grey: np.ndarray, lightness: float, a: float, b: float) -> np.ndarray:
    """A grey face in an identity's skin tone (Lab: scaled L, constant a/b), RGB float in [0, 1]."""
    lab = np.stack([np.clip(grey * 100.0 * lightness + 8.0 * (1 - lightness), 0, 100),
                    np.full_like(grey, a), np.full_like(grey, b)], axis=-1).astype(np.float32)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)


def _compose_scene(skin: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Background, shoulders, neck, hair and head (float RGB in [0, 1]) and the face box (x0, y0, side)."""
    S = size
    fp = S * rng.uniform(0.40, 0.50)
    cx, cy = S * (0.5 + rng.uniform(-0.06, 0.06)), S * (0.46 + rng.uniform(-0.04, 0.04))
    top, bottom = rng.uniform(0.25, 0.85, 3), rng.uniform(0.1, 0.6, 3)
    ramp = np.linspace(0, 1, S, dtype=np.float32)[:, None, None]
    img = ((top * (1 - ramp) + bottom * ramp) * np.ones((1, S, 1))).astype(np.float32)
    hair = rng.choice([[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.45, 0.3], [0.5, 0.5, 0.5], [0.15, 0.1, 0.1]])
    shirt = rng.uniform(0.05, 0.9, 3)

    def ellipse(c, axes, colour):
        cv2.ellipse(img, (int(c[0] * 16), int(c[1] * 16)), (int(axes[0] * 16), int(axes[1] * 16)), 0, 0, 360,
                    tuple(float(v) for v in colour), -1, cv2.LINE_AA, 4)

    ellipse((cx, cy + 1.05 * fp), (1.05 * fp, 0.5 * fp), shirt)
    cv2.rectangle(img, (int(cx - 0.22 * fp), int(cy + 0.3 * fp)), (int(cx + 0.22 * fp), int(cy + 0.75 * fp)),
                  tuple(float(v) for v in skin * 0.85), -1)
    ellipse((cx, cy - 0.18 * fp), (0.66 * fp, 0.62 * fp), hair)
    ellipse((cx, cy + 0.04 * fp), (0.56 * fp, 0.64 * fp), skin)
    n = int(round(fp))
    return img, (int(round(cx - n / 2)), int(round(cy - n / 2)), n)


def _ellipse_ring(n: int) -> np.ndarray:
    """Squared elliptical radius over an n x n face crop (1 on the ellipse that bounds the face)."""
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n - 0.5
    return (xx / 0.5) ** 2 + (yy / 0.55) ** 2


def _face_mask(n: int, sharpness: float = MASK_A) -> np.ndarray:
    """Blend mask (n, n, 1) of a face crop: 1 inside, falling to 0 on the bounding ellipse (sharper: harder seam)."""
    return (np.clip(sharpness * (1 - _ellipse_ring(n)), 0, 1) ** MASK_P).astype(np.float32)[..., None]


def _blend_face(scene: np.ndarray, face: np.ndarray, box: tuple[int, int, int],
                sharpness: float = MASK_A) -> np.ndarray:
    """A face crop (float RGB) blended into a scene (float RGB) at box; uint8 RGB."""
    x0, y0, n = box
    if face.shape[0] != n:
        face = cv2.resize(face, (n, n), interpolation=cv2.INTER_LINEAR)
    img = scene.copy()
    mask = _face_mask(n, sharpness)
    img[y0:y0 + n, x0:x0 + n] = img[y0:y0 + n, x0:x0 + n] * (1 - mask) + face * mask
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _prepare_face(face_rgb: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Upscaled, softened face crop (float RGB) and its skin colour, for a frame of ``size`` pixels."""
    n = int(round(size * rng.uniform(0.40, 0.50)))
    face = cv2.resize(face_rgb, (n, n), interpolation=cv2.INTER_CUBIC)
    face = cv2.GaussianBlur(np.clip(face, 0, 1), (0, 0), max(0.5, n / 160))
    ring = _ellipse_ring(n)
    skin = face[(ring > 0.55) & (ring < 0.9)].mean(0) * 0.6 + face[ring < 0.3].mean(0) * 0.4
    return face, skin


@lru_cache(maxsize=4)
def make_identities(n: int, size: int = 256, seed: int = 0) -> list[Identity]:
    """``n`` identities for a seed (cached; treat as read-only): the astronaut, then recoloured LFW faces.

    A candidate face is kept only when CenterFace finds it with the mouth wide open or blurred, the eyes
    closed, and in a tracker's smaller view (``face_scores`` >= ROBUST_SCORE).
    """
    if n < 2:
        raise ValueError(f"n_identities must be at least 2 (fakes borrow another identity), got {n}")
    astro, lfw = _face_sources()
    rng = np.random.default_rng([seed, 101])
    order = rng.permutation(len(lfw))
    if n > len(lfw) + 1:
        raise ValueError(f"at most {len(lfw) + 1} identities are available, asked for {n}")
    f0s = rng.permutation(np.linspace(95.0, 235.0, n))  # distinct pitches, low and high voices
    out: list[Identity] = []
    cand = -1  # -1: the astronaut, then LFW faces in a seeded order
    while len(out) < n:
        if cand >= len(lfw):
            raise RuntimeError(f"only {len(out)} source faces pass the detector checks; use n_identities <= {len(out)}")
        k = len(out)
        r = np.random.default_rng([seed, 202, cand + 1])
        if cand < 0:
            face = astro
        else:
            tone = r.uniform(0, 1)  # dark to light skin
            face = _recolour(lfw[order[cand]], lightness=0.55 + 0.5 * tone, a=r.uniform(8, 20),
                             b=r.uniform(12, 28) - 6 * (1 - tone))
        face, skin = _prepare_face(face, size, r)
        scene, box = _compose_scene(skin, size, r)
        face = cv2.resize(face, (box[2], box[2]), interpolation=cv2.INTER_LINEAR)
        image = _blend_face(scene, face, box)
        cand += 1
        dets, lms = detect(image)
        if not len(dets) or dets[0, 4] < 0.75:
            continue
        lm = lms[0].reshape(5, 2).astype(np.float64)
        if np.hypot(*(lm[4] - lm[3])) < 0.06 * size:
            continue
        f0 = float(f0s[k])
        ident = Identity(
            name=f"id{k:02d}", image=image, landmarks=lm, skin=skin * 255, f0=f0, scene=scene, face=face, box=box,
            formant_scale=float(np.interp(f0, [95, 235], [0.9, 1.15]) * r.uniform(0.96, 1.04)),
            syllable_rate=float(r.uniform(3.8, 5.2)), breath=float(r.uniform(0.02, 0.08)),
            motion=float(size * r.uniform(0.006, 0.02)), motion_hz=float(r.uniform(0.15, 0.5)),
            blink_hz=float(r.uniform(0.2, 0.5)))
        if _robust(ident):
            out.append(ident)
    return out


def swap_face(target: Identity, donor: Identity, strength: float, rng: np.random.Generator) -> Identity:
    """The target's scene with the donor's face: colour-matched by (1 - strength), seam sharpened by strength."""
    x0, y0, n = target.box
    tone = (1 - strength) * target.skin + strength * donor.skin * rng.uniform(0.9, 1.1, 3)
    gain = (tone / np.maximum(donor.skin, 1.0)).astype(np.float32)
    face = cv2.resize(donor.face, (n, n), interpolation=cv2.INTER_LINEAR) * gain
    image = _blend_face(target.scene, face, target.box, sharpness=MASK_A + 5.0 * strength)
    scale = n / donor.box[2]
    landmarks = (donor.landmarks - donor.box[:2]) * scale + (x0, y0)
    return replace(target, image=image, landmarks=landmarks, skin=tone, face=face)


def _track_view(image: np.ndarray, det: np.ndarray, context: float = TRACK_CONTEXT, side: int = 160) -> np.ndarray:
    """The face's neighbourhood (context x its box, black outside the frame) area-resized to side: a tracker's view."""
    box = ((det[0] + det[2]) / 2, (det[1] + det[3]) / 2, context * max(det[2] - det[0], det[3] - det[1]))
    _, _, _, patch = square_patch(image, box)  # a tuple: keeps the detector's float32 arithmetic
    return cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)


def _lip_sync_blur(img: np.ndarray, ident: Identity, strength: float) -> None:
    """A lip-sync generator's soft mouth: the mouth region blurred in place."""
    centre, d, _ = ident.mouth
    x, y, w, h = int(centre[0] - 0.6 * d), int(centre[1] - 0.35 * d), int(1.2 * d), int(0.8 * d)
    img[y:y + h, x:x + w] = cv2.GaussianBlur(img[y:y + h, x:x + w], (0, 0), 0.5 + 1.5 * strength)


def face_scores(ident: Identity) -> np.ndarray:
    """CenterFace scores of an identity: mouth open, open + blurred, half open + blink; full frame and tracker view."""
    base, _ = detect(ident.image, threshold=0.3)
    if not len(base):
        return np.zeros(1)
    scores = []
    for opening, blur, blink in ((1.0, False, False), (1.0, True, False), (0.6, False, True)):
        img = ident.image.copy()
        _draw_mouth(img, ident, opening)
        if blur:
            _lip_sync_blur(img, ident, 1.0)
        if blink:
            _draw_blink(img, ident)
        for view in (img, _track_view(img, base[0])):
            dets, _ = detect(view, threshold=0.05)
            scores.append(dets[0, 4] if len(dets) else 0.0)
    return np.array(scores)


def _robust(ident: Identity, min_score: float = ROBUST_SCORE) -> bool:
    """CenterFace still finds the face with the mouth wide open or blurred, eyes closed, and at tracker scale."""
    return bool(face_scores(ident).min() >= min_score)


# ---------------------------------------------------------------------------------------------------- audio
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


# ---------------------------------------------------------------------------------------------------- video
def _draw_mouth(img: np.ndarray, ident: Identity, opening: float) -> None:
    """An open mouth (dark ellipse, lip rim, upper teeth) over the identity's mouth, height ~ opening in [0, 1]."""
    if opening < 0.03:
        return
    centre, d, angle = ident.mouth
    c = (int(round(centre[0] * 16)), int(round((centre[1] + 0.04 * d) * 16)))
    axes = (int(round(0.4 * d * 16)), int(round(max(0.6, MOUTH_HEIGHT * d * opening) * 16)))
    lip = tuple(float(v) for v in ident.skin * np.array([0.75, 0.45, 0.45]))
    inside = tuple(float(v) for v in ident.skin * np.array([0.33, 0.2, 0.2]))
    cv2.ellipse(img, c, (axes[0] + 16, axes[1] + 16), angle, 0, 360, lip, -1, cv2.LINE_AA, 4)
    cv2.ellipse(img, c, axes, angle, 0, 360, inside, -1, cv2.LINE_AA, 4)
    up = np.array([np.sin(np.radians(angle)), -np.cos(np.radians(angle))]) * 0.6 * axes[1]  # towards the nose
    teeth = (int(round(c[0] + up[0])), int(round(c[1] + up[1])))
    cv2.ellipse(img, teeth, (int(axes[0] * 0.62), int(axes[1] * 0.32)), angle, 0, 360, (225, 220, 210), -1,
                cv2.LINE_AA, 4)


def _draw_blink(img: np.ndarray, ident: Identity) -> None:
    """Closed eyelids over both eyes."""
    e = ident.eye_distance
    lid = tuple(float(v) for v in ident.skin * 0.92)
    for x, y in ident.landmarks[:2]:
        c = (int(round(x * 16)), int(round(y * 16)))
        cv2.ellipse(img, c, (int(0.24 * e * 16), int(0.13 * e * 16)), 0, 0, 360, lid, -1, cv2.LINE_AA, 4)
        cv2.ellipse(img, c, (int(0.22 * e * 16), int(0.04 * e * 16)), 0, 0, 180, (40, 30, 30), 1, cv2.LINE_AA, 4)


@dataclass
class ClipSpec:
    """Everything needed to render one clip (picklable, drawn up front in the main process)."""

    index: int
    relpath: str
    label: int
    identity: int
    fake_type: str  # real | lip_sync | face_swap | audio_swap | both
    donor: int  # identity whose face / voice / utterance a fake borrows (-1 for REAL)
    strength: float
    duration: float
    n_frames: int
    onset: float  # seconds of leading silence
    split: str
    seed: int
    segments: tuple[tuple[int, int], ...] = ()  # partial fakes: manipulated frames [k0, k1) of each segment
    modality: str = ""  # partial fakes: audio | video | both
    video_method: str = ""  # partial fakes with a video segment: lip_sync | face_swap
    fake_segments: str = ""  # partial fakes: JSON [[start_s, end_s, modality], ...]

    def row(self, identities: list[Identity]) -> list:
        """This clip's labels.csv row."""
        donor = identities[self.donor].name if self.donor >= 0 else ""
        return [self.relpath, self.label, identities[self.identity].name, self.fake_type, f"{self.duration:.4f}",
                self.split, donor, f"{self.strength:.3f}", f"{self.onset:.3f}", self.fake_segments, self.video_method]

    def fake_frames(self) -> np.ndarray:
        """(n_frames,) bool: the frames inside a fake segment (every modality); all False for other clips."""
        m = np.zeros(self.n_frames, bool)
        for a, b in self.segments:
            m[a:b] = True
        return m

    def video_frames(self) -> np.ndarray:
        """(n_frames,) bool: the frames whose picture a partial fake manipulates."""
        return self.fake_frames() if self.modality in ("video", "both") else np.zeros(self.n_frames, bool)


@dataclass
class ClipSignals:
    """A clip's signals before any pixel is drawn."""

    audio: np.ndarray  # (N,) float32
    opening: np.ndarray  # (T,) mouth opening in [0, 1]
    envelope: np.ndarray  # (T,) the clip's own audio loudness per frame
    blink: np.ndarray  # (T,) bool
    pose: np.ndarray  # (T, 3) dx, dy, degrees


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, 0 when either signal is constant."""
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def render_signals(spec: ClipSpec, identities: list[Identity], fps: float, sample_rate: int) -> ClipSignals:
    """Audio, mouth opening, blinks and head pose of a clip (vectorised; no pixels)."""
    rng = np.random.default_rng([spec.seed, spec.index, 303])
    ident = identities[spec.identity]
    donor = identities[spec.donor] if spec.donor >= 0 else None
    T = spec.n_frames
    n = int(round(T * sample_rate / fps))
    s = spec.strength
    schedule = make_schedule(rng, n, sample_rate, ident.syllable_rate, spec.onset)
    envelope = frame_envelope(schedule, T)
    voice_rng = np.random.default_rng([spec.seed, spec.index, 404])
    if spec.fake_type in ("audio_swap", "both"):
        audio = synthesize_voice(schedule, donor.f0, donor.formant_scale, donor.breath, voice_rng, monotone=0.6 * s)
        audio = vocoder_artefacts(audio, sample_rate, s, voice_rng)
    else:
        audio = synthesize_voice(schedule, ident.f0, ident.formant_scale, ident.breath, voice_rng)
    room = np.float32(3e-4) * voice_rng.standard_normal(n).astype(np.float32)  # room noise, -60 dB
    audio = audio + room
    if spec.modality in ("audio", "both"):  # a partial fake's segments re-voiced (their own random stream)
        audio = _revoice_segments(audio, room, schedule, donor, spec, sample_rate)
    opening = envelope
    if spec.fake_type == "lip_sync":  # the mouth says other words: the least correlated of 3 utterances
        others = [frame_envelope(make_schedule(rng, n, sample_rate, donor.syllable_rate, spec.onset), T)
                  for _ in range(3)]
        other = min(others, key=lambda o: abs(_corr(o, envelope)))
        w = np.sqrt(s)
        opening = (1 - w) * envelope + w * other
    if spec.video_method == "lip_sync" and spec.segments:  # the same, over a partial fake's segments only
        prng = np.random.default_rng([spec.seed, spec.index, 707])
        others = [frame_envelope(make_schedule(prng, n, sample_rate, donor.syllable_rate, spec.onset), T)
                  for _ in range(3)]
        other = min(others, key=lambda o: abs(_corr(o, envelope)))
        w = np.sqrt(s)
        opening = np.where(spec.video_frames(), (1 - w) * envelope + w * other, opening)
    opening = np.clip(opening, 0, 1) ** 0.8
    t = np.arange(T) / fps
    blink = np.zeros(T, bool)
    starts = rng.uniform(0, T / fps, rng.poisson(ident.blink_hz * T / fps))
    for b in (starts * fps).astype(int):
        blink[b:b + max(2, int(round(0.12 * fps)))] = True
    ph = rng.uniform(0, 2 * np.pi, 4)
    f = ident.motion_hz
    pose = np.stack([ident.motion * (np.sin(2 * np.pi * f * t + ph[0]) + 0.4 * np.sin(2 * np.pi * 2.3 * f * t + ph[1])),
                     0.6 * ident.motion * np.sin(2 * np.pi * 0.8 * f * t + ph[2]),
                     1.5 * np.sin(2 * np.pi * 0.6 * f * t + ph[3])], axis=1)
    return ClipSignals(audio=audio.astype(np.float32), opening=opening.astype(np.float32), envelope=envelope,
                     blink=blink, pose=pose)


def _revoice_segments(audio: np.ndarray, room: np.ndarray, schedule: Schedule, donor: Identity, spec: ClipSpec,
                      sample_rate: int) -> np.ndarray:
    """The clip's audio with each segment's samples crossfaded (inside the segment) into the donor's voice."""
    rng = np.random.default_rng([spec.seed, spec.index, 606])
    swapped = synthesize_voice(schedule, donor.f0, donor.formant_scale, donor.breath, rng, monotone=0.6 * spec.strength)
    swapped = vocoder_artefacts(swapped, sample_rate, spec.strength, rng) + room
    bounds = frame_bounds(spec.n_frames, len(audio))
    fade = max(1, int(round(SEGMENT_FADE * sample_rate)))
    out = audio.copy()
    for k0, k1 in spec.segments:
        a, b = int(bounds[k0]), int(bounds[k1])
        w = _ramp_window(b - a, fade, fade)
        out[a:b] = (1 - w) * audio[a:b] + w * swapped[a:b]
    return out


class _FrameRenderer:
    """Draws a clip's frames one at a time (streaming: long clips never sit in memory)."""

    def __init__(self, spec: ClipSpec, identities: list[Identity], sig: ClipSignals):
        self.spec, self.sig = spec, sig
        self.ident = identities[spec.identity]
        self.size = self.ident.image.shape[0]
        s = spec.strength
        rng = np.random.default_rng([spec.seed, spec.index, 505])
        self.flicker = None
        self.segment = spec.video_frames()  # a partial fake's manipulated frames (none for whole-clip fakes)
        self.swapped = None  # the donor's face: on every frame of a face swap, on the segments of a partial one
        if spec.fake_type in ("face_swap", "both") or spec.video_method == "face_swap":
            self.swapped = swap_face(self.ident, identities[spec.donor], s, rng)
            if not self.segment.any():
                self.ident = self.swapped
            x0, y0, n = self.swapped.box
            self.region = (slice(y0, y0 + n), slice(x0, x0 + n))
            self.mask = _face_mask(n)
            jitter = uniform_filter1d(rng.standard_normal(spec.n_frames), 2)  # fast, frame to frame
            self.flicker = (s * 0.12 * jitter).astype(np.float32)

    def frame(self, k: int) -> np.ndarray:
        """Frame k as RGB uint8."""
        seg = bool(self.segment[k])
        ident = self.swapped if seg and self.spec.video_method == "face_swap" else self.ident
        img = ident.image.copy()
        _draw_mouth(img, ident, float(self.sig.opening[k]))
        if self.sig.blink[k]:
            _draw_blink(img, ident)
        if self.flicker is not None and ident is self.swapped:  # the swapped face brightens and darkens
            face = img[self.region].astype(np.float32)
            img[self.region] = np.clip(face * (1 + self.flicker[k] * self.mask) + 0.5, 0, 255).astype(np.uint8)
        if self.spec.fake_type == "lip_sync" or (seg and self.spec.video_method == "lip_sync"):
            _lip_sync_blur(img, ident, self.spec.strength)
        dx, dy, deg = self.sig.pose[k]
        centre, _, _ = self.ident.mouth
        M = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(deg), 1.0)
        M[:, 2] += (dx, dy)
        return cv2.warpAffine(img, M, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# ------------------------------------------------------------------------------------------------- encoding
def _encode(path: Path, frames, n_frames: int, size: int, fps: float, audio: np.ndarray, sample_rate: int) -> None:
    """Pipe RGB frames to ffmpeg with a WAV beside them; H.264 yuv420p + AAC, bit-exact, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".synth-", dir=path.parent) as tmp:
        wav, mp4, log = Path(tmp) / "a.wav", Path(tmp) / "v.mp4", Path(tmp) / "ffmpeg.log"
        sf.write(wav, audio, sample_rate, subtype="PCM_16")
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", f"{fps:g}", "-i", "pipe:0",
               "-i", str(wav), "-map", "0:v", "-map", "1:a",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-threads", "1",
               "-c:a", "aac", "-b:a", "64k", "-ar", str(sample_rate),
               "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
               str(mp4)]
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
            try:
                for k in range(n_frames):
                    proc.stdin.write(np.ascontiguousarray(frames(k)).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            rc = proc.wait()
        if rc != 0:
            raise RuntimeError(f"ffmpeg failed on {path.name} (exit {rc}): {log.read_text().strip()[-500:]}")
        os.replace(mp4, path)


def render_clip(spec: ClipSpec, identities: list[Identity], out_dir: Path, fps: float, sample_rate: int) -> int:
    """Render and encode one clip to out_dir/spec.relpath; returns its number of frames."""
    sig = render_signals(spec, identities, fps, sample_rate)
    renderer = _FrameRenderer(spec, identities, sig)
    _encode(Path(out_dir) / spec.relpath, renderer.frame, spec.n_frames, identities[0].image.shape[0], fps,
            sig.audio, sample_rate)
    return spec.n_frames


_WORKER: dict = {}


def _init_worker(identities: list[Identity], out_dir: str, fps: float, sample_rate: int) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(identities=identities, out_dir=Path(out_dir), fps=fps, sample_rate=sample_rate)


def _work(spec: ClipSpec) -> int:
    return render_clip(spec, _WORKER["identities"], _WORKER["out_dir"], _WORKER["fps"], _WORKER["sample_rate"])


# --------------------------------------------------------------------------------------------------- the set
def _check(sc: SynthConfig) -> None:
    """Fail early and clearly on settings that cannot work."""
    if sc.n_real < 0 or sc.n_fake < 0 or sc.n_long_real < 0:
        raise ValueError("n_real, n_fake and n_long_real must be >= 0")
    bad = [t for t in sc.fake_types if t not in FAKE_TYPES]
    if bad or (sc.n_fake and not sc.fake_types):
        raise ValueError(f"fake_types must be a non-empty subset of {FAKE_TYPES}, got {sc.fake_types}")
    if not 0 < sc.duration_min <= sc.duration_max:
        raise ValueError(f"need 0 < duration_min <= duration_max, got {sc.duration_min}, {sc.duration_max}")
    if sc.size < 96 or sc.size % 2:
        raise ValueError(f"size must be an even number of pixels >= 96, got {sc.size}")
    if sc.fps <= 0 or sc.artifact_strength < 0:
        raise ValueError("fps must be > 0 and artifact_strength >= 0")
    counts = {k: getattr(sc, k) for k in ("n_partial", "n_long_fake", "n_test_real", "n_test_fake", "n_test_partial")}
    if min(counts.values()) < 0:
        raise ValueError(f"clip counts must be >= 0, got {counts}")
    if (sc.n_long_fake or sc.n_test_fake) and not sc.fake_types:
        raise ValueError("n_long_fake and n_test_fake need at least one of fake_types")
    if sc.n_partial or sc.n_test_partial:
        lo, hi = (sc.partial_segments + [0, 0])[:2]
        if len(sc.partial_segments) != 2 or not 1 <= lo <= hi:
            raise ValueError(f"partial_segments must be [min, max] with 1 <= min <= max, got {sc.partial_segments}")
        if len(sc.partial_seconds) != 2 or not 0 < sc.partial_seconds[0] <= sc.partial_seconds[1]:
            raise ValueError(f"partial_seconds must be [min, max] seconds with 0 < min <= max, got {sc.partial_seconds}")
        bad = [m for m in sc.partial_modalities if m not in PARTIAL_MODALITIES]
        if bad or not sc.partial_modalities:
            raise ValueError(f"partial_modalities must be a non-empty subset of {PARTIAL_MODALITIES}, "
                             f"got {sc.partial_modalities}")
        bad = [m for m in sc.partial_video if m not in PARTIAL_VIDEO]
        if bad or (not sc.partial_video and set(sc.partial_modalities) - {"audio"}):
            raise ValueError(f"partial_video must be a non-empty subset of {PARTIAL_VIDEO}, got {sc.partial_video}")


def _seconds(k: int, fps: float) -> float:
    """Frame k's start time to 6 decimals, never above k / fps: frame k has start <= t, frame k - 1 does not."""
    return math.floor(k * 1e6 / fps) / 1e6


def plan_segments(rng: np.random.Generator, n_frames: int, fps: float, onset: float,
                  sc: SynthConfig) -> list[tuple[int, int]]:
    """A partial fake's segments as frame ranges [k0, k1): ``partial_segments`` of ``partial_seconds`` each,
    after the speech onset, at least SEGMENT_GAP apart (fewer or shorter when the clip is too short)."""
    first = int(np.ceil(onset * fps))
    if n_frames - first < 2:
        first = 0
    avail = n_frames - first
    gap = max(1, int(round(SEGMENT_GAP * fps)))
    n = int(rng.integers(sc.partial_segments[0], sc.partial_segments[1] + 1))
    lo, hi = (max(1, int(round(x * fps))) for x in sc.partial_seconds)
    lengths = rng.integers(lo, hi + 1, n)
    while n > 1 and lengths.sum() + gap * (n - 1) > avail:
        n, lengths = n - 1, lengths[:-1]
    lengths[0] = min(lengths[0], max(1, avail // 2))  # a clip shorter than one segment: half of it
    free = int(avail - lengths.sum() - gap * (n - 1))
    offsets = np.sort(rng.integers(0, free + 1, n))  # the free frames before each segment, cumulated
    segments, pos = [], first
    for k in range(n):
        start = pos + int(offsets[k] - (offsets[k - 1] if k else 0))
        segments.append((start, start + int(lengths[k])))
        pos = start + int(lengths[k]) + gap
    return segments


def plan(sc: SynthConfig) -> list[ClipSpec]:
    """Every clip of a configuration, drawn from ``sc.seed`` (labels, identities, durations, types, donors)."""
    _check(sc)
    rng = np.random.default_rng([sc.seed, 11])
    n_id = sc.n_identities
    specs: list[ClipSpec] = []

    def duration(label: int) -> float:
        d = float(np.clip(rng.normal(sc.duration_mean, sc.duration_std), sc.duration_min, sc.duration_max))
        return d * (REAL_LONGER_FACTOR if sc.shortcut == "real_longer" and label == 0 else 1.0)

    def onset(label: int) -> float:
        lead = sc.shortcut == "fake_leading_silence" and label == 1
        return float(rng.uniform(0.5, 1.0) if lead else rng.uniform(0.0, 0.15))

    def donor_of(i: int) -> int:
        return int((i + rng.integers(1, n_id)) % n_id)

    def add(relpath, label, ident, fake_type, donor, strength, dur, split):
        n_frames = max(2, int(round(dur * sc.fps)))
        specs.append(ClipSpec(index=len(specs), relpath=relpath, label=label, identity=int(ident),
                              fake_type=fake_type, donor=donor, strength=round(float(strength), 3),
                              duration=n_frames / sc.fps, n_frames=n_frames, onset=onset(label), split=split,
                              seed=sc.seed))

    for j in range(sc.n_long_real):
        add(f"real/long_{j:03d}.mp4", 0, rng.integers(n_id), "real", -1, 0.0, sc.long_duration, "test")
    real_ids = rng.permutation(np.arange(sc.n_real) % n_id)
    for j, ident in enumerate(real_ids):
        add(f"real/real_{j:04d}.mp4", 0, ident, "real", -1, 0.0, duration(0), "train")
    fake_ids = rng.permutation(np.arange(sc.n_fake) % n_id)
    types = rng.permutation(np.array([sc.fake_types[j % len(sc.fake_types)] for j in range(sc.n_fake)], dtype=object))
    for j, (ident, fake_type) in enumerate(zip(fake_ids, types)):
        strength = np.clip(sc.artifact_strength * rng.uniform(0.4, 1.0), 0.0, 1.0)
        add(f"fake/fake_{j:04d}.mp4", 1, ident, str(fake_type), donor_of(ident), strength, duration(1), "train")
    _plan_more(sc, specs)
    return specs


def _plan_more(sc: SynthConfig, specs: list[ClipSpec]) -> None:
    """The clips added since the first version (test clips of both classes, partial fakes), from their own stream."""
    rng = np.random.default_rng([sc.seed, 12])
    n_id = sc.n_identities

    def add(relpath, label, ident, fake_type, split, long=False) -> ClipSpec:
        d = float(np.clip(rng.normal(sc.duration_mean, sc.duration_std), sc.duration_min, sc.duration_max))
        d = sc.long_duration if long else d * (REAL_LONGER_FACTOR if sc.shortcut == "real_longer" and label == 0 else 1.0)
        lead = sc.shortcut == "fake_leading_silence" and label == 1
        onset = float(rng.uniform(0.5, 1.0) if lead else rng.uniform(0.0, 0.15))
        donor = int((ident + rng.integers(1, n_id)) % n_id) if label == 1 else -1
        strength = float(np.clip(sc.artifact_strength * rng.uniform(0.4, 1.0), 0.0, 1.0)) if label == 1 else 0.0
        n_frames = max(2, int(round(d * sc.fps)))
        specs.append(ClipSpec(index=len(specs), relpath=relpath, label=label, identity=int(ident), fake_type=fake_type,
                              donor=donor, strength=round(strength, 3), duration=n_frames / sc.fps,
                              n_frames=n_frames, onset=onset, split=split, seed=sc.seed))
        return specs[-1]

    def shares(n: int, values: list[str]) -> list[tuple[int, str]]:  # identities and kinds spread evenly
        kinds = rng.permutation(np.array([values[j % len(values)] for j in range(n)], dtype=object))
        return list(zip(rng.permutation(np.arange(n) % n_id).tolist(), [str(k) for k in kinds]))

    def partials(n: int, name: str, split: str) -> None:
        for j, (ident, modality) in enumerate(shares(n, sc.partial_modalities)):
            spec = add(name.format(j), 1, ident, f"partial_{modality}", split)
            spec.modality = modality
            spec.video_method = str(rng.choice(sc.partial_video)) if modality != "audio" else ""
            spec.segments = tuple(plan_segments(rng, spec.n_frames, sc.fps, spec.onset, sc))
            spec.fake_segments = json.dumps([[_seconds(a, sc.fps), _seconds(b, sc.fps), modality]
                                             for a, b in spec.segments])

    for j in range(sc.n_long_fake):
        add(f"fake/long_fake_{j:03d}.mp4", 1, rng.integers(n_id), sc.fake_types[j % len(sc.fake_types)], "test", True)
    for j, (ident, _) in enumerate(shares(sc.n_test_real, ["real"])):
        add(f"real/test_real_{j:04d}.mp4", 0, ident, "real", "test")
    for j, (ident, fake_type) in enumerate(shares(sc.n_test_fake, sc.fake_types)):
        add(f"fake/test_fake_{j:04d}.mp4", 1, ident, fake_type, "test")
    partials(sc.n_partial, "fake/partial_{:04d}.mp4", "train")
    partials(sc.n_test_partial, "fake/test_partial_{:04d}.mp4", "test")


def _settings(cfg: Config) -> dict:
    """What defines a generated folder (for resuming an interrupted run)."""
    settings = {"version": VERSION, "sample_rate": cfg.audio.sample_rate, **asdict(cfg.synth)}
    settings.pop("workers")
    default = asdict(SynthConfig())
    for k in NEW_FIELDS:  # a folder made before these existed stays valid while they are unused
        if settings[k] == default[k]:
            settings.pop(k)
    return settings


def generate(out_dir: str | Path, cfg: Config | None = None, *, seed: int | None = None, progress: bool = True,
             **overrides) -> Path:
    """Render the synthetic set into out_dir (real/, fake/, labels.csv last) and return labels.csv.

    ``overrides`` are SynthConfig fields (n_real=..., shortcut=...); ``seed`` overrides ``synth.seed``.
    An interrupted run with the same settings resumes: finished videos are kept.
    """
    if seed is not None:
        overrides["seed"] = seed
    cfg = (cfg if cfg is not None else Config()).merged({"synth": overrides})
    sc = cfg.synth
    specs = plan(sc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = out / "labels.csv"
    stamp = out / STAMP
    settings = _settings(cfg)
    same = stamp.exists() and json.loads(stamp.read_text()) == settings
    if labels.exists() and not stamp.exists():
        raise FileExistsError(f"{labels} was not written by workbench synth; choose an empty output folder")
    if labels.exists() and same and all((out / s.relpath).exists() for s in specs):
        return labels
    identities = make_identities(sc.n_identities, sc.size, sc.seed)
    labels.unlink(missing_ok=True)
    planned = {s.relpath for s in specs}
    if stamp.exists() and not same:  # a different set lived here: drop its videos
        for p in [*out.glob("real/*.mp4"), *out.glob("fake/*.mp4")]:
            if p.name.startswith(("real_", "long_", "fake_", "test_", "partial_")) \
                    and str(p.relative_to(out)) not in planned:
                p.unlink()
    stamp.write_text(json.dumps(settings, indent=1))
    todo = [s for s in specs if not (same and (out / s.relpath).exists())]
    todo.sort(key=lambda s: -s.n_frames)  # long clips first: better load balance
    sr = cfg.audio.sample_rate
    workers = min(sc.workers or usable_cores(), max(1, len(todo)))
    with tqdm(total=sum(s.n_frames for s in todo), unit="frame", desc="synth", disable=not progress) as bar:
        if workers <= 1:
            for s in todo:
                bar.update(render_clip(s, identities, out, sc.fps, sr))
        else:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                     initargs=(identities, str(out), sc.fps, sr)) as pool:
                for fut in as_completed([pool.submit(_work, s) for s in todo]):
                    bar.update(fut.result())
    return write_csv(labels, LABEL_COLUMNS, (s.row(identities) for s in specs))


# ------------------------------------------------------------------------------------------------- analysis
def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Decoded RGB frames (T, H, W, 3) uint8 of a video (the first ``max_frames`` when given)."""
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    frames = []
    for k, buf in enumerate(gen):
        if max_frames is not None and k >= max_frames:
            break
        frames.append(np.frombuffer(buf, np.uint8).reshape(h, w, 3))
    gen.close()
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


def mouth_signal(lip_frames: np.ndarray, region: float = 0.6) -> np.ndarray:
    """Mouth opening per lip crop: soft share of dark pixels in the crop's centre (threshold from the clip)."""
    lip = np.asarray(lip_frames)
    if lip.ndim != 4:
        raise ValueError(f"lip frames must be (T, h, w, 3), got shape {lip.shape}")
    h, w = lip.shape[1:3]
    y0, x0 = int(h * (1 - region) / 2), int(w * (1 - region) / 2)
    lum = lip[:, y0:h - y0, x0:w - x0].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if lum.max() <= 1.0 + 1e-6:  # float crops in [0, 1]
        lum = lum * 255
    thr = min(70.0, 0.5 * float(np.median(lum)))
    return np.clip((thr - lum) / max(thr, 1.0), 0, 1).mean(axis=(1, 2))


def audio_energy(audio: np.ndarray, n_frames: int, sample_rate: int | None = None) -> np.ndarray:
    """Audio loudness resampled to n_frames: a waveform (needs sample_rate; RMS), an envelope, or MFCC c0."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 1 and sample_rate is not None:  # a waveform: RMS over each frame's samples
        return np.sqrt(_frame_means(a ** 2, n_frames))
    e = a[:, 0] if a.ndim == 2 else a  # MFCC (T_a, n_mfcc): the 0th coefficient is log energy
    if len(e) == n_frames:
        return e
    return np.interp((np.arange(n_frames) + 0.5) / n_frames, (np.arange(len(e)) + 0.5) / len(e), e)


def mouth_audio_correlation(lip_frames: np.ndarray, audio: np.ndarray, *, sample_rate: int | None = None,
                            max_lag: int = 0, smooth: int | None = None) -> float:
    """Pearson correlation of mouth opening (lip crops) with audio energy at frame rate; best over +-max_lag frames.

    ``audio`` is a per-frame/per-sample envelope, MFCC frames (T_a, n_mfcc: uses c0) or a waveform with
    ``sample_rate``; both signals are assumed to span the same time. ``smooth`` averages the mouth signal
    over that many frames (default: 5 for MFCC, matching its 128 ms analysis window at 30 fps; else 1).
    """
    m = mouth_signal(lip_frames)
    smooth = (5 if np.ndim(audio) == 2 else 1) if smooth is None else smooth
    if smooth > 1:
        m = uniform_filter1d(m, smooth)
    e = audio_energy(audio, len(m), sample_rate)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        a, b = (m[lag:], e[:len(e) - lag]) if lag >= 0 else (m[:lag], e[-lag:])
        best = max(best, _corr(a, b))
    return best


