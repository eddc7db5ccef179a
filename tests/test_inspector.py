"""The per-frame inspector: headless, one figure, artists updated in place."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

from workbench.inspector import FrameInspector
from workbench.records import VideoRecord

T = 24


@pytest.fixture
def inspector() -> FrameInspector:
    rng = np.random.default_rng(0)
    times = np.arange(T) / 8.0
    face_found = np.ones(T, dtype=bool)
    face_found[10:13] = False
    rec = VideoRecord(frames=rng.integers(0, 255, (T, 24, 24, 3), dtype=np.uint8),
                      lip=rng.integers(0, 255, (T, 12, 12, 3), dtype=np.uint8),
                      audio=rng.normal(size=(int(T / 8 * 31.25) + 1, 40)).astype(np.float32),
                      label=0, video_id="real_long", group="id0", fps=8.0, timestamps=times,
                      face_found=face_found, duration=T / 8.0)
    pred = pd.DataFrame({"frame": np.arange(T), "timestamp": times, "p_fake": np.linspace(0.1, 0.9, T),
                         "face_found": face_found})
    return FrameInspector(rec, pred, mfcc_window_s=1.0)


def test_slider_moves_cursor_and_images(inspector: FrameInspector) -> None:
    fig, face, png0 = inspector.fig, inspector.face_im, inspector.image.value
    mfcc0 = np.array(inspector.mfcc_im.get_array())
    assert png0[:8] == b"\x89PNG\r\n\x1a\n"
    k = 17
    inspector.slider.value = k
    assert inspector.cursor.get_xdata()[0] == pytest.approx(inspector.record.timestamps[k])
    np.testing.assert_array_equal(inspector.face_im.get_array(), inspector.record.frames[k])
    np.testing.assert_array_equal(inspector.lip_im.get_array(), inspector.record.lip[k])
    assert not np.array_equal(np.array(inspector.mfcc_im.get_array()), mfcc0, equal_nan=True)
    assert inspector.fig is fig and inspector.face_im is face and len(fig.axes) == 4
    assert inspector.image.value != png0 and inspector.current == k
    assert f"{inspector.record.timestamps[k]:.2f} s" in inspector.label.value


def test_show_drives_slider_and_label(inspector: FrameInspector) -> None:
    inspector.show(11)
    assert inspector.slider.value == 11
    assert inspector.cursor.get_xdata()[0] == pytest.approx(11 / 8.0)
    assert "face_found</b> = False" in inspector.label.value
    p11 = np.linspace(0.1, 0.9, T)[11]
    assert f"{p11:.3f}" in inspector.label.value
    inspector.show(10_000)  # clipped to the last frame
    assert inspector.slider.value == T - 1


def test_mfcc_window_fixed_shape_and_widget(inspector: FrameInspector) -> None:
    shapes = set()
    for k in (0, T // 2, T - 1):
        inspector.slider.value = k
        shapes.add(np.shape(inspector.mfcc_im.get_array()))
    assert len(shapes) == 1 and shapes.pop()[0] == 40
    assert isinstance(inspector.widget, widgets.VBox)
    assert isinstance(inspector.play, widgets.Play) and inspector.play.max == inspector.slider.max == T - 1


def test_mfcc_window_slices_the_nan_padded_audio(inspector: FrameInspector) -> None:
    h = inspector.half
    pad = np.full((h, inspector.audio.shape[1]), np.nan, dtype=np.float32)
    padded = np.concatenate([pad, inspector.audio, pad])
    for t in (-1.0, 0.0, 0.4, float(inspector.times[-1]), 100.0):
        c = int(np.clip(int(round(t * inspector.audio_rate)) + h, h, padded.shape[0] - h - 1))
        np.testing.assert_array_equal(inspector._mfcc_window(t), padded[c - h:c + h + 1])
    assert np.isnan(inspector._mfcc_window(0.0)[:h]).all() and not np.isnan(inspector._mfcc_window(0.0)[h:]).any()


def test_inspector_and_strip_on_a_lazily_loaded_record(inspector: FrameInspector, tmp_path) -> None:
    from workbench.plots import temporal_figure
    from workbench.records import StoredFrames, load_record, save_record
    rec = load_record(save_record(tmp_path / "real_long.npz", inspector.record), warn=False, lazy=True)
    assert isinstance(rec.frames, StoredFrames)  # what notebook 03 hands to the figure and the inspector
    pred = pd.DataFrame({"frame": np.arange(T), "timestamp": rec.timestamps, "p_fake": inspector.pred_p,
                         "face_found": rec.face_found})
    lazy = FrameInspector(rec, pred)
    lazy.slider.value = 17
    np.testing.assert_array_equal(lazy.face_im.get_array(), inspector.record.frames[17])
    np.testing.assert_array_equal(lazy.lip_im.get_array(), inspector.record.lip[17])
    strips = [temporal_figure(pred, frames, rec.timestamps) for frames in (rec.frames, inspector.record.frames)]
    images = [[ax.images[0].get_array() for ax in fig.axes if ax.images] for fig in strips]
    assert len(images[0]) == 8
    for a, b in zip(*images):
        np.testing.assert_array_equal(a, b)
