"""The plan of a synthetic set: every clip's label, identity, duration, fake type, donor and segments."""
from __future__ import annotations

import json
import math

import numpy as np

from workbench.core.config import SynthConfig, choices_of
from workbench.synthetic.clips import ClipSpec

FAKE_TYPES = ("lip_sync", "face_swap", "audio_swap", "both")
SHORTCUTS = choices_of("synth.shortcut")
PARTIAL_MODALITIES = ("audio", "video", "both")
PARTIAL_VIDEO = ("lip_sync", "face_swap")
SEGMENT_GAP = 0.2  # seconds between two fake segments of a clip, at least
REAL_LONGER_FACTOR = 1.75
STUDIO_FAKE_SHARE = 0.6  # short FAKE clips (partial ones included) filmed in the studio, under synth.studio_light
STUDIO_REAL_SHARE = 0.1  # short REAL clips filmed there; every long-form clip is


def _check(sc: SynthConfig) -> None:
    """Fail early and clearly on settings that cannot work."""
    if sc.n_real < 0 or sc.n_fake < 0 or sc.n_long_real < 0:
        raise ValueError("n_real, n_fake and n_long_real must be >= 0")
    if sc.shortcut not in SHORTCUTS:  # a SynthConfig built directly bypasses the config's own check
        raise ValueError(f"synth.shortcut must be one of {list(SHORTCUTS)}, got {sc.shortcut!r}")
    if not 0 <= sc.studio_light <= 1:
        raise ValueError(f"synth.studio_light must be in [0, 1] (0 = off), got {sc.studio_light}")
    bad = [t for t in sc.fake_types if t not in FAKE_TYPES]
    if bad or (sc.n_fake and not sc.fake_types):
        raise ValueError(f"fake_types must be a non-empty subset of {FAKE_TYPES}, got {sc.fake_types}")
    if not 0 < sc.duration_min <= sc.duration_max:
        raise ValueError(f"need 0 < duration_min <= duration_max, got {sc.duration_min}, {sc.duration_max}")
    if sc.size < 96 or sc.size % 2:
        raise ValueError(f"size must be an even number of pixels >= 96, got {sc.size}")
    if sc.fps <= 0 or sc.artifact_strength < 0:
        raise ValueError("fps must be > 0 and artifact_strength >= 0")
    counts = {k: getattr(sc, k) for k in ("n_partial", "n_long_fake", "n_test_real", "n_test_fake", "n_test_partial",
                                          "n_unlabeled", "n_unlabeled_identities")}
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


def _duration(rng: np.random.Generator, sc: SynthConfig, label: int) -> float:
    """A short clip's seconds: Normal(mean, std) clipped to [min, max], REAL ones longer under the real_longer shortcut."""
    d = float(np.clip(rng.normal(sc.duration_mean, sc.duration_std), sc.duration_min, sc.duration_max))
    return d * (REAL_LONGER_FACTOR if sc.shortcut == "real_longer" and label == 0 else 1.0)


def _onset(rng: np.random.Generator, sc: SynthConfig, label: int) -> float:
    """Seconds of leading silence: 0-0.15, FAKE ones 0.5-1 under the fake_leading_silence shortcut."""
    lead = sc.shortcut == "fake_leading_silence" and label == 1
    return float(rng.uniform(0.5, 1.0) if lead else rng.uniform(0.0, 0.15))


def plan(sc: SynthConfig) -> list[ClipSpec]:
    """Every clip of a configuration, drawn from ``sc.seed`` (labels, identities, durations, types, donors)."""
    _check(sc)
    rng = np.random.default_rng([sc.seed, 11])
    n_id = sc.n_identities
    specs: list[ClipSpec] = []

    def donor_of(i: int) -> int:
        return int((i + rng.integers(1, n_id)) % n_id)

    def add(relpath, label, ident, fake_type, donor, strength, dur, split):
        n_frames = max(2, int(round(dur * sc.fps)))
        specs.append(ClipSpec(index=len(specs), relpath=relpath, label=label, identity=int(ident),
                              fake_type=fake_type, donor=donor, strength=round(float(strength), 3),
                              duration=n_frames / sc.fps, n_frames=n_frames, onset=_onset(rng, sc, label), split=split,
                              seed=sc.seed))

    for j in range(sc.n_long_real):
        add(f"real/long_{j:03d}.mp4", 0, rng.integers(n_id), "real", -1, 0.0, sc.long_duration, "test")
    real_ids = rng.permutation(np.arange(sc.n_real) % n_id)
    for j, ident in enumerate(real_ids):
        add(f"real/real_{j:04d}.mp4", 0, ident, "real", -1, 0.0, _duration(rng, sc, 0), "train")
    fake_ids = rng.permutation(np.arange(sc.n_fake) % n_id)
    types = rng.permutation(np.array([sc.fake_types[j % len(sc.fake_types)] for j in range(sc.n_fake)], dtype=object))
    for j, (ident, fake_type) in enumerate(zip(fake_ids, types)):
        strength = np.clip(sc.artifact_strength * rng.uniform(0.4, 1.0), 0.0, 1.0)
        add(f"fake/fake_{j:04d}.mp4", 1, ident, str(fake_type), donor_of(ident), strength, _duration(rng, sc, 1), "train")
    _plan_more(sc, specs)
    _plan_unlabeled(sc, specs)
    _plan_light(sc, specs)
    return specs


def _plan_unlabeled(sc: SynthConfig, specs: list[ClipSpec]) -> None:
    """``n_unlabeled`` short clips drawn like the pool (REAL share, fake types, durations, onsets, any shortcut), their
    own stream;
    labels.csv hides their label (``ClipSpec.hidden``)."""
    if sc.n_unlabeled <= 0:
        return
    rng = np.random.default_rng([sc.seed, 14])
    n_id = sc.n_identities
    n_real = int(round(sc.n_unlabeled * sc.n_real / max(1, sc.n_real + sc.n_fake))) if sc.fake_types else sc.n_unlabeled
    for j in range(sc.n_unlabeled):
        label = int(j >= n_real)
        new = sc.n_unlabeled_identities
        ident = n_id + j % new if new else int(rng.integers(n_id))
        fake_type = sc.fake_types[(j - n_real) % len(sc.fake_types)] if label else "real"
        n_frames = max(2, int(round(_duration(rng, sc, label) * sc.fps)))
        strength = float(np.clip(sc.artifact_strength * rng.uniform(0.4, 1.0), 0.0, 1.0)) if label else 0.0
        specs.append(ClipSpec(index=len(specs), relpath=f"unlabeled/unlabeled_{j:04d}.mp4", label=label,
                              identity=ident, fake_type=fake_type,
                              donor=int((ident + rng.integers(1, n_id)) % n_id) if label else -1,  # a labelled person
                              strength=round(strength, 3), duration=n_frames / sc.fps, n_frames=n_frames,
                              onset=_onset(rng, sc, label), split="unlabeled", seed=sc.seed, hidden=True))


def _plan_light(sc: SynthConfig, specs: list[ClipSpec]) -> None:
    """The planted studio-light confound: which clips are filmed under ``studio_light`` (their own stream)."""
    if sc.studio_light <= 0:
        return
    rng = np.random.default_rng([sc.seed, 13])
    for spec in specs:
        draw = rng.random()  # one draw per clip, so that a clip's light does not depend on the others'
        long = spec.relpath.split("/")[-1].startswith(("long_", "long_fake_"))
        share = 1.0 if long else STUDIO_FAKE_SHARE if spec.label == 1 else STUDIO_REAL_SHARE
        spec.light = float(sc.studio_light) if draw < share else 0.0


def _plan_more(sc: SynthConfig, specs: list[ClipSpec]) -> None:
    """The clips added since the first version (test clips of both classes, partial fakes), from their own stream."""
    rng = np.random.default_rng([sc.seed, 12])
    n_id = sc.n_identities

    def add(relpath, label, ident, fake_type, split, long=False) -> ClipSpec:
        d = _duration(rng, sc, label)  # drawn for long clips too: the stream stays the same
        d = sc.long_duration if long else d
        onset = _onset(rng, sc, label)
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
