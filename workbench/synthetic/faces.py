"""Synthetic identities: faces on a scene, CenterFace landmarks, face swaps, mouths and blinks drawn on a frame."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from workbench.ingest.face import load_detector, square_patch

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
def make_identities(n: int, size: int = 256, seed: int = 0, extra: int = 0) -> list[Identity]:
    """``n`` identities for a seed (cached; treat as read-only): the astronaut, then recoloured LFW faces; then
    ``extra`` more people (named new00, new01, ...) from the source faces after theirs, the first ``n`` unchanged.

    A candidate face is kept only when CenterFace finds it with the mouth wide open or blurred, the eyes
    closed, and in a tracker's smaller view (``face_scores`` >= ROBUST_SCORE).
    """
    if n < 2:
        raise ValueError(f"n_identities must be at least 2 (fakes borrow another identity), got {n}")
    astro, lfw = _face_sources()
    rng = np.random.default_rng([seed, 101])
    order = rng.permutation(len(lfw))
    if n + extra > len(lfw) + 1:
        raise ValueError(f"at most {len(lfw) + 1} identities are available, asked for {n + extra}")
    f0s = rng.permutation(np.linspace(95.0, 235.0, n))  # distinct pitches, low and high voices
    f0_extra = np.random.default_rng([seed, 103]).uniform(95.0, 235.0, extra)
    out: list[Identity] = []
    cand = -1  # -1: the astronaut, then LFW faces in a seeded order
    while len(out) < n + extra:
        if cand >= len(lfw):
            raise RuntimeError(f"only {len(out)} source faces pass the detector checks; use n_identities <= {len(out)}")
        k = len(out)
        f0, name = (float(f0s[k]), f"id{k:02d}") if k < n else (float(f0_extra[k - n]), f"new{k - n:02d}")
        ident = _candidate(astro if cand < 0 else lfw[order[cand]], cand, seed, size, f0, name)
        cand += 1
        if ident is not None and _robust(ident):
            out.append(ident)
    return out


def _candidate(source: np.ndarray, cand: int, seed: int, size: int, f0: float, name: str) -> Identity | None:
    """A candidate identity from one source face (its own seeded stream), or None when CenterFace misses it."""
    r = np.random.default_rng([seed, 202, cand + 1])
    face = source
    if cand >= 0:
        tone = r.uniform(0, 1)  # dark to light skin
        face = _recolour(source, lightness=0.55 + 0.5 * tone, a=r.uniform(8, 20), b=r.uniform(12, 28) - 6 * (1 - tone))
    face, skin = _prepare_face(face, size, r)
    scene, box = _compose_scene(skin, size, r)
    face = cv2.resize(face, (box[2], box[2]), interpolation=cv2.INTER_LINEAR)
    image = _blend_face(scene, face, box)
    dets, lms = detect(image)
    if not len(dets) or dets[0, 4] < 0.75:
        return None
    lm = lms[0].reshape(5, 2).astype(np.float64)
    if np.hypot(*(lm[4] - lm[3])) < 0.06 * size:
        return None
    return Identity(
        name=name, image=image, landmarks=lm, skin=skin * 255, f0=f0, scene=scene, face=face, box=box,
        formant_scale=float(np.interp(f0, [95, 235], [0.9, 1.15]) * r.uniform(0.96, 1.04)),
        syllable_rate=float(r.uniform(3.8, 5.2)), breath=float(r.uniform(0.02, 0.08)),
        motion=float(size * r.uniform(0.006, 0.02)), motion_hz=float(r.uniform(0.15, 0.5)),
        blink_hz=float(r.uniform(0.2, 0.5)))


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


def _resample(patch: np.ndarray, side: int) -> np.ndarray:
    """A patch rendered at ``side`` pixels and upscaled back (a generator's output resolution)."""
    h, w = patch.shape[:2]
    small = cv2.resize(patch, (max(4, side), max(4, int(round(side * h / max(w, 1))))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def generated_face(img: np.ndarray, box: tuple[int, int, int], mask: np.ndarray, strength: float) -> None:
    """A face swap's generator output in place: the face inside the blend mask at a lower resolution (sharp outside)."""
    x0, y0, n = box
    region = img[y0:y0 + n, x0:x0 + n]
    low = _resample(region, int(round(n * (0.6 - 0.42 * strength))))
    img[y0:y0 + n, x0:x0 + n] = np.clip(region * (1 - mask) + low * mask + 0.5, 0, 255).astype(np.uint8)


def lip_sync_mouth(img: np.ndarray, ident: Identity, strength: float) -> None:
    """A lip-sync generator's lower face in place: a box around the mouth pasted at low resolution, blurred teeth
    and a colour offset, so that its edges leave a rectangular seam."""
    _lip_sync_blur(img, ident, strength)
    centre, d, _ = ident.mouth
    x, y, w, h = int(centre[0] - 0.8 * d), int(centre[1] - 0.45 * d), int(1.6 * d), int(1.1 * d)
    box = img[y:y + h, x:x + w].astype(np.float32)
    tint = 1 + strength * np.array([0.10, 0.04, 0.0], np.float32)  # the generator's warmer, brighter skin
    low = _resample(box, int(round(w / (1.5 + 2.5 * strength)))) * tint
    img[y:y + h, x:x + w] = np.clip(low + 0.5, 0, 255).astype(np.uint8)


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
