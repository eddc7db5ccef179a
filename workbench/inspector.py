"""An ipywidgets per-frame inspector: face, lip crop, MFCC window and a cursor on the P(Fake) curve.

One matplotlib figure is built once (pyplot-free, Agg canvas). Moving the slider updates its
artists in place and re-renders the canvas to PNG bytes shown in a ``widgets.Image``, so it
works headless, in classic Jupyter and in JupyterLab without any extension (no ipympl).
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from workbench.plots import _spans
from workbench.records import VideoRecord


class FrameInspector:
    """Slider (+ Play) over a record's frames showing face, lip, MFCC window and P(Fake) cursor."""

    def __init__(self, record: VideoRecord, pred_df: pd.DataFrame, mfcc_window_s: float = 1.0,
                 threshold: float = 0.5, play_interval_ms: int = 150, dpi: int = 80):
        self.record = record
        self.threshold = float(threshold)
        self.dpi = int(dpi)
        self.times = np.asarray(record.timestamps, dtype=np.float64)
        self.n = record.n_frames
        pred = pred_df.sort_values("timestamp" if "timestamp" in pred_df else "frame").reset_index(drop=True)
        self.pred_t = (pred["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in pred
                       else self.times[pred["frame"].to_numpy(dtype=int)])
        self.pred_p = pred["p_fake"].to_numpy(dtype=np.float64)
        self._p_by_frame = (dict(zip(pred["frame"].astype(int), self.pred_p)) if "frame" in pred else {})
        self.face_found = (np.asarray(record.face_found, dtype=bool) if record.face_found is not None
                           else np.ones(self.n, dtype=bool))
        # MFCC window: fixed width in MFCC frames so set_data keeps the image shape
        self.audio = np.asarray(record.audio, dtype=np.float32)
        self.audio_rate = float(record.audio_rate)
        self.half = max(1, int(round(mfcc_window_s * self.audio_rate / 2)))
        pad = np.full((self.half, self.audio.shape[1]), np.nan, dtype=np.float32)
        self._padded = np.concatenate([pad, self.audio, pad])  # built once; _mfcc_window slices it
        self._build_figure(mfcc_window_s)
        self.image = widgets.Image(format="png")
        self.label = widgets.HTML()
        self.slider = widgets.IntSlider(value=0, min=0, max=self.n - 1, step=1, description="frame",
                                        continuous_update=True, layout=widgets.Layout(width="70%"))
        self.play = widgets.Play(value=0, min=0, max=self.n - 1, step=1, interval=play_interval_ms,
                                 description="play")
        self._link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_slider, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider]), self.label, self.image])
        self.current = -1
        self.show(0)

    # ------------------------------------------------------------------ figure
    def _build_figure(self, mfcc_window_s: float) -> None:
        """Create the figure and every artist that show() updates."""
        self.fig = Figure(figsize=(11, 6), dpi=self.dpi, layout="constrained")
        FigureCanvasAgg(self.fig)
        gs = self.fig.add_gridspec(2, 3, height_ratios=[1.3, 1], width_ratios=[1, 1, 1.6])
        ax_face, ax_lip, ax_mfcc = (self.fig.add_subplot(gs[0, j]) for j in range(3))
        self.ax_curve = self.fig.add_subplot(gs[1, :])
        rec = self.record
        self.face_im = ax_face.imshow(rec.frames[0])
        self.lip_im = ax_lip.imshow(rec.lip[0])
        for ax, name in ((ax_face, "face"), (ax_lip, "lip")):
            ax.set_title(name)
            ax.axis("off")
        lo, hi = np.percentile(self.audio, [1, 99]) if self.audio.size else (0.0, 1.0)
        w = self.half / self.audio_rate
        self.mfcc_im = ax_mfcc.imshow(self._mfcc_window(0.0).T, aspect="auto", origin="lower", cmap="magma",
                                      vmin=lo, vmax=hi, extent=(-w, w, 0, self.audio.shape[1]),
                                      interpolation="nearest")
        ax_mfcc.axvline(0.0, color="cyan", lw=1)
        ax_mfcc.set(title=f"MFCC ±{mfcc_window_s / 2:.2f} s", xlabel="s from frame", ylabel="coefficient")
        ax = self.ax_curve
        ax.plot(self.pred_t, self.pred_p, color="#1d3557", lw=1)
        ax.axhline(self.threshold, color="k", ls="--", lw=0.8)
        no_face = ~self.face_found
        if no_face.any():
            _spans(ax, self.times, no_face, color="grey", alpha=0.25, lw=0)
        self.cursor = ax.axvline(self.times[0], color="#e63946", lw=1.5)
        (self.marker,) = ax.plot([self.times[0]], [self._p_at(0)], "o", color="#e63946", ms=6)
        ax.set(ylim=(0, 1), xlabel="time (s)", ylabel="P(Fake)")
        self.title = self.fig.suptitle("")

    def _mfcc_window(self, t: float) -> np.ndarray:
        """MFCC frames within ±half of time t (NaN-padded at the edges), shape (2*half+1, n_mfcc)."""
        c = int(round(t * self.audio_rate)) + self.half
        c = int(np.clip(c, self.half, self._padded.shape[0] - self.half - 1))
        return self._padded[c - self.half:c + self.half + 1]

    def _p_at(self, i: int) -> float:
        """P(Fake) of frame i (by frame index, else nearest prediction time)."""
        if i in self._p_by_frame:
            return float(self._p_by_frame[i])
        if self.pred_p.size == 0:
            return float("nan")
        return float(self.pred_p[int(np.argmin(np.abs(self.pred_t - self.times[i])))])

    # ------------------------------------------------------------------ interaction
    def _on_slider(self, change: dict) -> None:
        """Slider callback."""
        self._render(int(np.clip(change["new"], 0, self.n - 1)))

    def show(self, i: int) -> None:
        """Go to frame i (the slider follows; its observer renders)."""
        i = int(np.clip(i, 0, self.n - 1))
        if self.slider.value != i:
            self.slider.value = i  # fires _on_slider -> _render
        else:
            self._render(i)

    def _render(self, i: int) -> None:
        """Update every artist to frame i, redraw the canvas once and put the PNG into the image widget."""
        t, p, ff = float(self.times[i]), self._p_at(i), bool(self.face_found[i])
        self.current = i
        self.face_im.set_data(self.record.frames[i])
        self.lip_im.set_data(self.record.lip[i])
        self.mfcc_im.set_data(self._mfcc_window(t).T)
        self.cursor.set_xdata([t, t])
        self.marker.set_data([t], [p])
        verdict = "FAKE" if p > self.threshold else "REAL"
        self.title.set_text(f"{self.record.video_id}  frame {i}/{self.n - 1}  t = {t:.2f} s  "
                            f"P(Fake) = {p:.3f} ({verdict})  face_found = {ff}")
        self.label.value = (f"<b>t</b> = {t:.2f} s &nbsp; <b>P(Fake)</b> = {p:.3f} ({verdict}) &nbsp; "
                            f"<b>face_found</b> = {ff}")
        self.fig.canvas.draw()
        buf = io.BytesIO()
        mpimg.imsave(buf, np.asarray(self.fig.canvas.buffer_rgba()), format="png")
        self.image.value = buf.getvalue()

    def _ipython_display_(self) -> None:
        """Display the widget when the inspector is a cell's last expression."""
        from IPython.display import display

        display(self.widget)


__all__ = ["FrameInspector"]
