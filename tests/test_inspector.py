"""The per-frame inspector's kernel side: what it ships to the browser, selection, the still.

The browser side (drawing, playback, frames per second) is tested in a real browser in test_browser.py.
"""
from __future__ import annotations

import base64

import cv2
import numpy as np
import pandas as pd
import pytest

from workbench.data.records import VideoRecord
from workbench.reporting.inspector import FrameInspector, jpeg, make_clip

T = 24


def _record(video_id: str, n: int, seed: int, frame_label: np.ndarray | None = None, label: int = 0) -> VideoRecord:
    rng = np.random.default_rng(seed)
    times = np.arange(n) / 8.0
    face_found = np.ones(n, dtype=bool)
    face_found[10:13] = False
    # smooth frames (a gradient that moves with time) so JPEG round trips are close
    yy, xx = np.mgrid[0:48, 0:48]
    frames = np.stack([np.stack([(xx * 4 + 9 * t) % 256, yy * 4, np.full_like(xx, 40 + 5 * t)], -1)
                       for t in range(n)]).astype(np.uint8)
    return VideoRecord(frames=frames, lip=frames[:, ::4, ::4].copy(),
                       audio=rng.normal(size=(int(n / 8 * 31.25) + 1, 40)).astype(np.float32),
                       label=label, video_id=video_id, group="id0", fps=8.0, timestamps=times,
                       face_found=face_found, duration=n / 8.0, frame_label=frame_label)


def _pred(rec: VideoRecord, p: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"frame": np.arange(rec.n_frames), "timestamp": rec.timestamps, "p_fake": p,
                         "face_found": rec.face_found})


@pytest.fixture
def inspector() -> FrameInspector:
    rec = _record("real_long", T, 0)
    fake = _record("fake_part", 40, 1, frame_label=np.r_[np.zeros(20, np.int8), np.ones(10, np.int8), np.zeros(10, np.int8)],
                   label=1)
    return FrameInspector({("baseline", "real_long"): (rec, _pred(rec, np.linspace(0.1, 0.9, T))),
                           ("baseline", "fake_part"): (fake, _pred(fake, np.linspace(0.9, 0.2, 40))),
                           ("balanced", "real_long"): (rec, _pred(rec, np.linspace(0.6, 0.7, T)))})


def sent(ins: FrameInspector, content: dict, monkeypatch) -> list[tuple[dict, list]]:
    """What the inspector sends back for one message from the browser."""
    out = []
    monkeypatch.setattr(ins, "send", lambda c, buffers=None: out.append((c, buffers)))
    ins._on_msg(ins, content, [])
    return out


def test_header_arrays_match_the_record_and_predictions(inspector, monkeypatch):
    (content, buffers), = sent(inspector, {"type": "clip", "key": inspector.key}, monkeypatch)
    rec = inspector.clip.record
    assert content["n"] == T and content["fps"] == 8.0 and content["title"] == "baseline · real_long (REAL)"
    np.testing.assert_array_equal(np.frombuffer(buffers[0], np.float64), rec.timestamps)
    np.testing.assert_allclose(np.frombuffer(buffers[1], np.float32), np.linspace(0.1, 0.9, T), rtol=1e-6)
    np.testing.assert_array_equal(np.frombuffer(buffers[2], np.uint8), rec.face_found)
    assert not content["has_truth"]
    mfcc = cv2.imdecode(np.frombuffer(buffers[4], np.uint8), cv2.IMREAD_UNCHANGED)
    assert mfcc.shape[:2] == (40, rec.audio.shape[0])  # one column per MFCC frame, one row per coefficient
    # the first coefficient is the bottom row: its brightness follows audio[:, 0]
    col_hi, col_lo = int(np.argmax(rec.audio[:, 0])), int(np.argmin(rec.audio[:, 0]))
    assert mfcc[-1, col_hi].astype(int).sum() > mfcc[-1, col_lo].astype(int).sum()


def test_curve_box_maps_time_and_pfake_to_the_drawn_curve(inspector, monkeypatch):
    (content, buffers), = sent(inspector, {"type": "clip", "key": inspector.key}, monkeypatch)
    img = cv2.imdecode(np.frombuffer(buffers[5], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # RGB
    h, w = img.shape[:2]
    x0, y0, x1, y1 = content["curve_box"]
    lo, hi = content["xlim"]
    curve = np.array([0x1d, 0x35, 0x57])  # the P(Fake) line's colour
    for k in (2, 9, 15, 21):
        t, p = inspector.clip.times[k], inspector.clip.p[k]
        px = (x0 + (t - lo) / (hi - lo) * (x1 - x0)) * w
        py = (y0 + (1 - p) * (y1 - y0)) * h
        win = img[int(py) - 3:int(py) + 4, int(px) - 3:int(px) + 4].reshape(-1, 3).astype(int)
        assert np.abs(win - curve).sum(1).min() < 60, (k, px, py)  # the browser's cursor dot sits on the line
        far = img[int((y0 + 0.02 * (y1 - y0)) * h), int(px)].astype(int) if p < 0.8 else None
        assert far is None or np.abs(far - curve).sum() > 60


def test_frame_chunks_decode_to_the_frames(inspector, monkeypatch):
    (content, (face, lip)), = sent(inspector, {"type": "frames", "key": inspector.key, "k": 0}, monkeypatch)
    off = content["face_offsets"]
    assert content["start"] == 0 and len(off) == T + 1 and off[-1] == len(face)
    for i in (0, 7, T - 1):
        img = cv2.imdecode(np.frombuffer(face[off[i]:off[i + 1]], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        assert np.abs(img.astype(int) - inspector.clip.record.frames[i].astype(int)).mean() < 6
    lo = content["lip_offsets"]
    lip7 = cv2.imdecode(np.frombuffer(lip[lo[7]:lo[8]], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert lip7.shape == inspector.clip.record.lip[7].shape
    small = FrameInspector.for_record(inspector.clip.record, inspector.clip.pred, chunk=10)
    (c2, _), = sent(small, {"type": "frames", "key": small.key, "k": 2}, monkeypatch)
    assert c2["start"] == 20 and len(c2["face_offsets"]) == T - 20 + 1  # the last, shorter chunk


def test_jpeg_shrinks_large_crops_only():
    big = np.zeros((224, 224, 3), np.uint8)
    small = np.zeros((40, 30, 3), np.uint8)
    assert cv2.imdecode(np.frombuffer(jpeg(big, max_side=160), np.uint8), cv2.IMREAD_COLOR).shape == (160, 160, 3)
    assert cv2.imdecode(np.frombuffer(jpeg(small, max_side=160), np.uint8), cv2.IMREAD_COLOR).shape == (40, 30, 3)


def test_selection_reloads_and_stale_requests_are_ignored(inspector, monkeypatch):
    old_key, old_still = inspector.key, inspector.still
    inspector.show(17)
    assert inspector.frame == 17
    sent(inspector, {"type": "select", "condition": "balanced"}, monkeypatch)  # a dropdown in the browser
    assert (inspector.condition, inspector.video) == ("balanced", "real_long")  # same video kept
    assert inspector.frame == 17 and inspector.key != old_key and inspector.still != old_still
    assert sent(inspector, {"type": "clip", "key": old_key}, monkeypatch) == []
    (content, buffers), = sent(inspector, {"type": "clip", "key": inspector.key}, monkeypatch)
    np.testing.assert_allclose(np.frombuffer(buffers[1], np.float32), np.linspace(0.6, 0.7, T), rtol=1e-6)
    inspector.select("baseline", "fake_part")
    assert inspector.frame == 0 and inspector.clip.n == 40 and inspector.title == "baseline · fake_part (FAKE)"
    with pytest.raises(KeyError, match="no video"):
        inspector.select("balanced", "fake_part")
    with pytest.raises(KeyError, match="no condition"):
        inspector.select("nope")
    assert [tuple(c) for c in inspector.choices] == [("baseline", "real_long"), ("baseline", "fake_part"),
                                                     ("balanced", "real_long")]


def test_true_fake_frames_are_shipped_and_drawn(inspector, monkeypatch):
    inspector.select("baseline", "fake_part")
    (content, buffers), = sent(inspector, {"type": "clip", "key": inspector.key}, monkeypatch)
    assert content["has_truth"]
    truth = np.frombuffer(buffers[3], np.uint8)
    assert truth[20:30].all() and not truth[:20].any() and not truth[30:].any()
    img = cv2.imdecode(np.frombuffer(buffers[5], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    h, w = img.shape[:2]
    x0, y0, x1, y1 = content["curve_box"]
    lo, hi = content["xlim"]
    band_y = int((y0 + 0.02 * (y1 - y0)) * h)  # the truth bar runs along the top of the axes
    purple = np.array([0x7b, 0x2c, 0xbf])
    col = lambda k: int((x0 + (inspector.clip.times[k] - lo) / (hi - lo) * (x1 - x0)) * w)  # noqa: E731
    assert np.abs(img[band_y, col(25)].astype(int) - purple).sum() < 40
    assert np.abs(img[band_y, col(5)].astype(int) - purple).sum() > 100
    assert "truth: manipulated frame" in inspector.describe(25) and "truth: real frame" in inspector.describe(5)
    # a prediction table's frame_label column serves when the record has none
    rec = inspector.clip.record
    bare = VideoRecord(**{**vars(rec), "frame_label": None})
    pred = _pred(rec, np.full(40, 0.3)).assign(frame_label=truth.astype(int))
    np.testing.assert_array_equal(make_clip(bare, pred).truth, truth)
    assert make_clip(bare, _pred(rec, np.full(40, 0.3))).truth is None


def test_describe_show_and_sparse_predictions(inspector):
    inspector.show(11)
    text = inspector.describe()
    assert "t = 1.38 s" in text and "frame 11/23" in text and "no face" in text
    assert f"{np.linspace(0.1, 0.9, T)[11]:.3f} (REAL)" in text
    inspector.show(10_000)
    assert inspector.frame == T - 1 and "(FAKE)" in inspector.describe()
    rec = inspector.clip.record
    every_third = _pred(rec, np.linspace(0.1, 0.9, T)).iloc[::3]  # e.g. training density
    clip = make_clip(rec, every_third)
    assert clip.n == T and clip.p[4] == pytest.approx(every_third["p_fake"].iloc[1])  # frame 4 -> prediction at 3


def test_display_carries_a_still_for_viewers_without_widgets(inspector):
    data, _ = inspector._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == inspector.still
    still = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert still.shape[1] > 600 and "real_long" in data["text/plain"]


def test_inspector_and_strip_on_a_lazily_loaded_record(inspector, tmp_path, monkeypatch):
    from workbench.data.records import load_record, save_record
    from workbench.data.storage import StoredFrames
    from workbench.reporting.plots import temporal_figure
    src = inspector.clip.record
    rec = load_record(save_record(tmp_path / "real_long.npz", src), warn=False, lazy=True)
    assert isinstance(rec.frames, StoredFrames)  # what notebook 03 hands to the figure and the inspector
    pred = _pred(rec, np.linspace(0.1, 0.9, T))
    lazy = FrameInspector.for_record(rec, pred, "baseline")
    (_, (face, _)), = sent(lazy, {"type": "frames", "key": lazy.key, "k": 0}, monkeypatch)
    (_, (face_mem, _)), = sent(inspector, {"type": "frames", "key": inspector.key, "k": 0}, monkeypatch)
    assert face == face_mem  # same JPEG bytes from disk as from memory
    strips = [temporal_figure(pred, frames, rec.timestamps) for frames in (rec.frames, src.frames)]
    images = [[ax.images[0].get_array() for ax in fig.axes if ax.images] for fig in strips]
    assert len(images[0]) == 8
    for a, b in zip(*images):
        np.testing.assert_array_equal(a, b)
