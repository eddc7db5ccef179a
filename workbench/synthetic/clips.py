"""One clip rendered: its signals (audio, mouth, blinks, pose), its frames (streamed) and the encoded mp4."""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import soundfile as sf
from scipy.ndimage import uniform_filter1d

from workbench.synthetic.faces import (
    Identity,
    _draw_blink,
    _draw_mouth,
    _face_mask,
    generated_face,
    lip_sync_mouth,
    swap_face,
)
from workbench.synthetic.voice import (
    Schedule,
    _ramp_window,
    frame_bounds,
    frame_envelope,
    make_schedule,
    synthesize_voice,
    vocoder_artefacts,
)

STUDIO_DIM = 0.3  # brightness lost under the dimmest studio light
SEGMENT_FADE = 0.005  # seconds of crossfade into and out of a re-voiced segment (inside the segment)


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
    light: float = 0.0  # studio light (synth.studio_light): 0 daylight, 1 the dimmest, warmest studio look
    hidden: bool = False  # an unlabelled clip: labels.csv gives label -1 and fake_type unlabeled (truth kept apart)

    def row(self, identities: list[Identity]) -> list:
        """This clip's labels.csv row."""
        donor = identities[self.donor].name if self.donor >= 0 and not self.hidden else ""
        label, fake_type = (-1, "unlabeled") if self.hidden else (self.label, self.fake_type)
        strength = "" if self.hidden else f"{self.strength:.3f}"
        return [self.relpath, label, identities[self.identity].name, fake_type, f"{self.duration:.4f}",
                self.split, donor, strength, f"{self.onset:.3f}", self.fake_segments, self.video_method, f"{self.light:g}"]

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
        if ident is self.swapped:  # the generator's lower-resolution face inside the blend mask
            generated_face(img, ident.box, self.mask, self.spec.strength)
        if self.spec.fake_type == "lip_sync" or (seg and self.spec.video_method == "lip_sync"):
            lip_sync_mouth(img, ident, self.spec.strength)
        dx, dy, deg = self.sig.pose[k]
        centre, _, _ = self.ident.mouth
        M = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(deg), 1.0)
        M[:, 2] += (dx, dy)
        img = cv2.warpAffine(img, M, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return img if self.spec.light <= 0 else studio_look(img, self.spec.light)


def studio_look(img: np.ndarray, light: float) -> np.ndarray:
    """A frame filmed under dim, warm studio light (light in [0, 1]): darker, red kept, blue damped."""
    gain = (1 - STUDIO_DIM * light) * (1 - light * np.array([0.0, 0.08, 0.22], np.float32))
    return np.clip(img * gain + 0.5, 0, 255).astype(np.uint8)


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
