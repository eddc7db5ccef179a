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
                   weight sqrt(s)); the lower face around it (1.6 x 1.1 mouth widths) is pasted back at
                   1 / (1.5 + 2.5 s) of its resolution with a warmer tint (a rectangular seam), teeth blurred;
    ``face_swap``  another identity's face blended into the face with a seam, colour mismatch and flicker, the
                   face inside the blend mask at a generator's lower resolution (n x (0.6 - 0.42 s) pixels,
                   upscaled: a soft face under sharp hair, a blending boundary a 64 px crop still shows);
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
Unlabelled clips (``n_unlabeled``; split ``unlabeled``, for the pseudo_label condition)
    Short clips drawn like the pool (its REAL share, its fake types), from their own stream; ``OUT/unlabeled/``;
    with ``n_unlabeled_identities`` they show new people (groups new00, ...) whom no labelled clip shows.
    labels.csv gives them label -1 and fake_type ``unlabeled``; their truth is in ``unlabeled_truth.csv``, which
    ingest never reads (to measure pseudo-labels against).
Studio light (``studio_light`` > 0; the demo's planted confound, off by default)
    Dim, warm light (30% darker at 1.0, blue damped) on every long-form clip, REAL or FAKE, on 60% of the other
    FAKE clips and on 10% of the short REAL ones: the fakes' source footage and the long interviews were filmed in
    the same studio. A detector that learns the light calls the long REAL clips FAKE; notebook 01's metadata
    audit sees it in ``mean_brightness``; labels.csv's ``studio_light`` column says which clips are lit.
Shortcuts (``shortcut``)
    ``real_longer``: REAL clips are 1.75x longer; ``fake_leading_silence``: FAKE speech starts after
    0.5-1 s of silence (REAL after 0-0.15 s, as always).
Output
    ``OUT/real/*.mp4``, ``OUT/fake/*.mp4`` and ``OUT/labels.csv`` (written last: the completion marker)
    with columns path, label, group, fake_type, duration, split, donor, strength, speech_onset, fake_segments
    (JSON, partial fakes only), partial_video (their video manipulation) and studio_light; an ingest manifest as
    it stands. Modules: faces (identities, swaps, mouths), voice (speech, vocoder), clips (rendering, encoding),
    planning (which clips), this one (the set, resuming, analysis helpers).
    Every clip is rendered streaming, one frame at a time (long-form clips never sit in memory).
"""
from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from scipy.ndimage import uniform_filter1d
from tqdm.auto import tqdm

from workbench.core.config import Config, SynthConfig
from workbench.core.runtime import usable_cores
from workbench.data.records import write_csv
from workbench.synthetic.clips import (  # noqa: F401
    ClipSignals,
    ClipSpec,
    _corr,
    _FrameRenderer,
    _init_worker,
    _work,
    render_clip,
    render_signals,
)
from workbench.synthetic.faces import Identity, detect, face_scores, make_identities, swap_face  # noqa: F401
from workbench.synthetic.planning import FAKE_TYPES, PARTIAL_MODALITIES, PARTIAL_VIDEO, SHORTCUTS, plan, plan_segments  # noqa: F401
from workbench.synthetic.voice import (  # noqa: F401
    Schedule,
    _frame_means,
    frame_bounds,
    frame_envelope,
    make_schedule,
    synthesize_voice,
    vocoder_artefacts,
)

LABEL_COLUMNS = ("path", "label", "group", "fake_type", "duration", "split", "donor", "strength", "speech_onset",
                 "fake_segments", "partial_video", "studio_light")
NEW_FIELDS = ("n_partial", "partial_segments", "partial_seconds", "partial_modalities", "partial_video",
              "n_long_fake", "n_test_real", "n_test_fake", "n_test_partial", "studio_light", "n_unlabeled",
              "n_unlabeled_identities")  # left out of the stamp at defaults
STAMP = ".synth.json"
UNLABELED_TRUTH = "unlabeled_truth.csv"  # the hidden labels of the split=unlabeled clips
VERSION = 2  # 2: face swaps at a generator's resolution, lip-sync boxes, studio light


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
    identities = make_identities(sc.n_identities, sc.size, sc.seed, sc.n_unlabeled_identities)
    labels.unlink(missing_ok=True)
    planned = {s.relpath for s in specs}
    if stamp.exists() and not same:  # a different set lived here: drop its videos
        for p in [*out.glob("real/*.mp4"), *out.glob("fake/*.mp4"), *out.glob("unlabeled/*.mp4")]:
            if p.name.startswith(("real_", "long_", "fake_", "test_", "partial_", "unlabeled_")) \
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
    hidden = [s for s in specs if s.hidden]
    truth = out / UNLABELED_TRUTH
    if hidden:  # what an annotator would have said: for measuring pseudo-labels, never ingested
        write_csv(truth, ("path", "label", "fake_type"), ((s.relpath, s.label, s.fake_type) for s in hidden))
    else:
        truth.unlink(missing_ok=True)
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
