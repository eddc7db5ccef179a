"""The per-frame inspector: face, lip crop, MFCC window and a cursor on the P(Fake) curve, frame by frame.

Why anywidget with playback in the browser: drawing is the browser's job, and the kernel only
ships data. The kernel encodes each frame's face and lip crops once as JPEG (chunks of frames,
sent on request as binary buffers), the whole MFCC matrix as one small PNG and the P(Fake) curve
as one PNG with its axes box; the browser decodes the JPEGs, draws face, lips and the MFCC window
on canvases and moves a cursor over the curve image. One frame index in the browser drives the
slider, the label and every image in a single draw, so they never disagree; Play computes the
frame from the clock (frames the decoder has not reached are dropped, never queued), and a
speed control sets the rate. The kernel is not involved while playing or scrubbing.

The alternatives measured worse: re-rendering a matplotlib canvas per frame and sending it as
an ipywidgets Image (the old inspector) costs a kernel round trip and ~0.2 s per frame on 2
cores, and ipywidgets' Play ticks queue behind it (about 4 images a second, slider ahead of
image); ipympl redraws the figure in the kernel the same way. Several ipywidgets Image widgets
fed JPEG bytes still cost a round trip per frame and update one after another.

Executed notebooks keep something to look at: the widget's state carries a still (a strip of
frames with the curve, `still`), which the browser shows until frames arrive and keeps where no
kernel answers; the cell's output also holds it as image/png for viewers without widgets
(untrusted notebooks, nbconvert).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import anywidget
import cv2
import matplotlib
import numpy as np
import pandas as pd
import traitlets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from workbench.data.records import VideoRecord
from workbench.reporting.plots import pfake_panel, temporal_figure

_HERE = Path(__file__).resolve().parent
CHUNK = 120  # frames per data message


@dataclass
class Clip:
    """One (condition, video) prepared for the browser: per-frame times, P(Fake), face and truth flags."""

    condition: str
    record: VideoRecord
    pred: pd.DataFrame  # sorted by time
    times: np.ndarray  # (T,) float64 seconds of every record frame
    p: np.ndarray  # (T,) P(Fake) of every frame (nearest prediction in time)
    face_found: np.ndarray  # (T,) bool
    truth: np.ndarray | None  # (T,) 1 on manipulated frames, when the record or the table has per-frame labels

    @property
    def n(self) -> int:
        return int(self.times.size)

    @property
    def fps(self) -> float:
        if self.record.fps and self.record.fps > 0:
            return float(self.record.fps)
        return float(1.0 / np.median(np.diff(self.times))) if self.n > 1 else 1.0


def _nearest(sorted_t: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index into sorted_t of the value nearest to each t."""
    j = np.clip(np.searchsorted(sorted_t, t), 1, max(sorted_t.size - 1, 1))
    left = np.clip(j - 1, 0, sorted_t.size - 1)
    right = np.clip(j, 0, sorted_t.size - 1)
    return np.where(np.abs(sorted_t[left] - t) <= np.abs(sorted_t[right] - t), left, right)


def make_clip(record: VideoRecord, pred_df: pd.DataFrame, condition: str = "") -> Clip:
    """Align a prediction table (every frame or a subset, `frame`/`timestamp` columns) with a record's frames."""
    if pred_df.empty:
        raise ValueError(f"{record.video_id}: empty prediction table")
    pred = pred_df.sort_values("timestamp" if "timestamp" in pred_df else "frame").reset_index(drop=True)
    times = np.asarray(record.timestamps, dtype=np.float64)
    pred_t = (pred["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in pred
              else times[pred["frame"].to_numpy(dtype=int)])
    near = _nearest(pred_t, times)
    face = (np.asarray(record.face_found, dtype=bool) if record.face_found is not None
            else np.ones(times.size, dtype=bool))
    truth = None
    if record.frame_label is not None:
        truth = np.asarray(record.frame_label, dtype=np.int8)
    elif "frame_label" in pred:
        truth = pred["frame_label"].to_numpy(dtype=np.int8)[near]
    return Clip(condition, record, pred, times, pred["p_fake"].to_numpy(dtype=np.float64)[near], face, truth)


def _uint8(x: np.ndarray) -> np.ndarray:
    """Crops as uint8 (the original study's float32 [0, 1] layout is scaled)."""
    x = np.asarray(x)
    return x if x.dtype == np.uint8 else np.clip(np.asarray(x, dtype=np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, max_side: int = 160, quality: int = 80) -> bytes:
    """One RGB uint8 crop as JPEG bytes, shrunk (never enlarged) to at most max_side pixels."""
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _png(rgba: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgba), cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def mfcc_png(audio: np.ndarray, cmap: str = "magma") -> bytes:
    """The whole MFCC matrix as one image: one column per MFCC frame, the first coefficient at the bottom."""
    a = np.asarray(audio, dtype=np.float32)
    if a.size == 0:
        a = np.zeros((1, 1), dtype=np.float32)
    lo, hi = np.percentile(a, [1, 99])
    norm = np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1)
    rgba = matplotlib.colormaps[cmap](norm.T[::-1], bytes=True)  # (n_mfcc, T_a, 4), row 0 = last coefficient
    return _png(rgba)


def _truth_rows(clip: Clip) -> np.ndarray | None:
    """The true per-frame labels at the prediction table's rows (nearest record frame), or None."""
    if clip.truth is None:
        return None
    pred_t = (clip.pred["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in clip.pred
              else clip.times[clip.pred["frame"].to_numpy(dtype=int)])
    return clip.truth[_nearest(clip.times, pred_t)]


def curve_png(clip: Clip, threshold: float = 0.5, size: tuple[int, int] = (980, 250),
              dpi: int = 100) -> tuple[bytes, list[float], list[float]]:
    """The P(Fake) curve as a PNG, its axes box [left, top, right, bottom] as shares of the image, and its x limits."""
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pfake_panel(ax, clip.pred, threshold, frame_label=_truth_rows(clip))
    half = float(np.median(np.diff(clip.times))) / 2 if clip.n > 1 else 0.5
    xlim = [float(clip.times[0] - half), float(clip.times[-1] + half)]
    ax.set_xlim(xlim)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_ylabel("P(Fake)", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), fontsize=7, frameon=False)
    fig.canvas.draw()
    x0, y0, x1, y1 = ax.get_position().extents  # figure shares, origin bottom-left
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return _png(rgba), [float(x0), float(1 - y1), float(x1), float(1 - y0)], xlim


def still_png(clip: Clip, threshold: float = 0.5, n_frames: int = 6, dpi: int = 70) -> bytes:
    """A still of the inspector for where no kernel is attached: a strip of frames with the curve."""
    truth = _truth_rows(clip)
    pred = clip.pred if truth is None else clip.pred.assign(frame_label=truth)
    fig = temporal_figure(pred, clip.record.frames, clip.times, title=f"{title_of(clip)} · still", threshold=threshold,
                          n_strip=n_frames)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def title_of(clip: Clip) -> str:
    """'baseline · real_020_long (REAL)'."""
    label = "FAKE" if int(clip.record.label) == 1 else "REAL"
    return " · ".join(x for x in (clip.condition, clip.record.video_id) if x) + f" ({label})"


class FrameInspector(anywidget.AnyWidget):
    """Dropdowns (condition, video), Play with a speed control and a slider over face, lips, MFCC and P(Fake)."""

    _esm = _HERE / "inspector.js"
    _css = _HERE / "inspector.css"
    choices = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)  # [[condition, video_id], ...]
    condition = traitlets.Unicode("").tag(sync=True)
    video = traitlets.Unicode("").tag(sync=True)
    key = traitlets.Unicode("").tag(sync=True)  # set once a selection is loaded; the browser then asks for it
    title = traitlets.Unicode("").tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)  # the frame shown (the browser reports it while playing, ~4x a second)
    speed = traitlets.Float(1.0).tag(sync=True)
    still = traitlets.Bytes(b"").tag(sync=True)  # PNG, shown where frames cannot come (no kernel)

    def __init__(self, sources: Mapping[tuple[str, str], tuple[VideoRecord, pd.DataFrame]], *,
                 threshold: float = 0.5, mfcc_window_s: float = 1.0, max_side: int = 160, jpeg_quality: int = 80,
                 chunk: int = CHUNK):
        super().__init__()
        if not sources:
            raise ValueError("FrameInspector needs at least one (condition, video) -> (record, predictions)")
        self._sources = {(str(c), str(v)): rp for (c, v), rp in sources.items()}
        self.threshold, self.mfcc_window_s = float(threshold), float(mfcc_window_s)
        self.max_side, self.jpeg_quality, self.chunk = int(max_side), int(jpeg_quality), int(chunk)
        self._chunks: dict[int, tuple[dict, list[bytes]]] = {}
        self._header: tuple[dict, list[bytes]] | None = None
        self.clip: Clip | None = None
        self.choices = [[c, v] for c, v in self._sources]
        self.on_msg(self._on_msg)
        self.select(*next(iter(self._sources)))

    @classmethod
    def for_record(cls, record: VideoRecord, pred_df: pd.DataFrame, condition: str = "", **kw: Any) -> FrameInspector:
        """An inspector over one video."""
        return cls({(condition, record.video_id): (record, pred_df)}, **kw)

    @classmethod
    def from_predictions(cls, preds: pd.DataFrame, curves: Mapping[str, pd.DataFrame],
                         records: Mapping[str, VideoRecord], **kw: Any) -> FrameInspector:
        """One choice per row of `preds` (condition, video_id, path: notebook 03's table), in its order."""
        return cls({(r.condition, r.video_id): (records[r.video_id], curves[r.path]) for r in preds.itertuples()}, **kw)

    # ------------------------------------------------------------------ selection
    def select(self, condition: str, video: str | None = None) -> None:
        """Show a condition's video (default: the same video if that condition has it, else its first)."""
        videos = [v for c, v in self._sources if c == condition]
        if not videos:
            raise KeyError(f"no condition {condition!r}; choices: {sorted({c for c, _ in self._sources})}")
        video = video if video is not None else (self.video if self.video in videos else videos[0])
        if (condition, video) not in self._sources:
            raise KeyError(f"condition {condition!r} has no video {video!r}; it has {videos}")
        same_video = video == self.video
        record, pred = self._sources[(condition, video)]
        self.clip = make_clip(record, pred, condition)
        self._chunks, self._header = {}, None
        with self.hold_sync():
            self.condition, self.video, self.title = condition, video, title_of(self.clip)
            self.frame = min(self.frame, self.clip.n - 1) if same_video else 0
            self.still = still_png(self.clip, self.threshold)
            self.key = f"{condition}\u241f{video}"

    def show(self, i: int) -> None:
        """Go to frame i (clipped to the video); the browser draws it."""
        self.frame = int(np.clip(i, 0, self.clip.n - 1))

    def describe(self, i: int | None = None) -> str:
        """The label line of frame i (default: the current frame), as the browser writes it."""
        c = self.clip
        i = self.frame if i is None else int(np.clip(i, 0, c.n - 1))
        verdict = "FAKE" if c.p[i] > self.threshold else "REAL"
        text = (f"t = {c.times[i]:.2f} s · frame {i}/{c.n - 1} · P(Fake) = {c.p[i]:.3f} ({verdict}) · "
                f"{'face found' if c.face_found[i] else 'no face'}")
        if c.truth is not None:
            text += f" · truth: {'manipulated' if c.truth[i] else 'real'} frame"
        return text

    # ------------------------------------------------------------------ data for the browser
    def header(self) -> tuple[dict, list[bytes]]:
        """The selection's metadata and its per-frame arrays, MFCC image and curve image (built once)."""
        if self._header is None:
            c = self.clip
            curve, box, xlim = curve_png(c, self.threshold)
            rec = c.record
            first_face, first_lip = _uint8(rec.frames[0]), _uint8(rec.lip[0])
            content = {"type": "clip", "key": self.key, "n": c.n, "fps": c.fps, "threshold": self.threshold,
                       "chunk": self.chunk, "audio_rate": float(rec.audio_rate),
                       "half": max(1, int(round(self.mfcc_window_s * rec.audio_rate / 2))),
                       "mfcc_window_s": self.mfcc_window_s, "curve_box": box, "xlim": xlim,
                       "face_shape": list(first_face.shape[:2]), "lip_shape": list(first_lip.shape[:2]),
                       "has_truth": c.truth is not None, "title": self.title}
            truth = c.truth if c.truth is not None else np.zeros(c.n, np.int8)
            buffers = [c.times.astype(np.float64).tobytes(), c.p.astype(np.float32).tobytes(),
                       c.face_found.astype(np.uint8).tobytes(), truth.astype(np.uint8).tobytes(),
                       mfcc_png(rec.audio), curve]
            self._header = (content, buffers)
        return self._header

    def frames_chunk(self, k: int) -> tuple[dict, list[bytes]]:
        """Frames k*chunk .. (k+1)*chunk-1 as JPEGs: offsets into one face and one lip byte string."""
        if k not in self._chunks:
            c, start = self.clip, int(k) * self.chunk
            stop = min(c.n, start + self.chunk)
            if not 0 <= start < c.n:
                raise IndexError(f"chunk {k} is outside the video's {c.n} frames")
            faces = [jpeg(f, self.max_side, self.jpeg_quality) for f in _uint8(c.record.frames[start:stop])]
            lips = [jpeg(f, self.max_side, self.jpeg_quality) for f in _uint8(c.record.lip[start:stop])]
            content = {"type": "frames", "key": self.key, "k": int(k), "start": start,
                       "face_offsets": np.cumsum([0] + [len(b) for b in faces]).tolist(),
                       "lip_offsets": np.cumsum([0] + [len(b) for b in lips]).tolist()}
            self._chunks[k] = (content, [b"".join(faces), b"".join(lips)])
        return self._chunks[k]

    def _on_msg(self, _widget: Any, content: dict, _buffers: list) -> None:
        """Requests from the browser: `clip` (the header), `frames` (a chunk), `select` (a dropdown)."""
        kind = content.get("type")
        if kind == "select":
            self.select(content["condition"], content.get("video"))
            return
        if content.get("key") != self.key:
            return  # a request for a selection that has since changed
        if kind == "clip":
            self.send(*self.header())
        elif kind == "frames":
            self.send(*self.frames_chunk(int(content["k"])))

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict]:
        """The widget, plus the still as image/png for viewers without widgets (untrusted notebooks, nbconvert)."""
        data, meta = super()._repr_mimebundle_(**kwargs)
        data["image/png"] = base64.b64encode(self.still).decode("ascii")
        data["text/plain"] = f"FrameInspector: {self.title} (a still; the live inspector needs a running kernel)"
        return data, meta


__all__ = ["Clip", "FrameInspector", "curve_png", "jpeg", "make_clip", "mfcc_png", "still_png"]
