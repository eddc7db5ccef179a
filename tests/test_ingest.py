"""`workbench ingest`: tiny real-face test videos -> npz records, failures, reruns, manifests."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from skimage import data as skdata

from workbench import cli
from workbench.core.config import Config
from workbench.data.records import load_record, read_index
from workbench.ingest.face import FaceTracker, bracketed_found, detect_faces
from workbench.ingest.pipeline import IngestError, ingest, ingest_video, list_jobs

W, H, FPS = 320, 240, 30
SR = 16000


def _face_frames(n: int, face: bool = True) -> np.ndarray:
    """n BGR frames: the astronaut's face on a grey background, drifting a few pixels per frame."""
    astro = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    patch = cv2.resize(astro[0:220, 140:330], (142, 165), interpolation=cv2.INTER_AREA)
    frames = np.full((n, H, W, 3), 90, np.uint8)
    if face:
        for t in range(n):
            x, y = 80 + (t % 20), 30 + (t % 10) // 2
            frames[t, y:y + 165, x:x + 142] = patch
    return frames


def _write_video(path: Path, frames: np.ndarray, fps: float = FPS, audio: np.ndarray | None = None) -> Path:
    """Encode BGR frames (and a mono 16 kHz track when given) to an H.264 mp4 with imageio-ffmpeg's ffmpeg."""
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    cmd = [ff, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}",
           "-r", str(fps), "-i", "-"]
    if audio is not None:
        wav = path.with_suffix(".wav")
        sf.write(wav, audio, SR)
        cmd += ["-i", str(wav), "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    if audio is not None:
        path.with_suffix(".wav").unlink()
    return path


def _tone(seconds: float, lead_silence: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y[: int(lead_silence * SR)] = 0.0
    return y


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Path:
    """real/ and fake/ folders with 4 good clips and one clip of each failure kind (made once)."""
    root = tmp_path_factory.mktemp("videos")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    _write_video(root / "real" / "r1.mp4", _face_frames(45), audio=_tone(1.5))
    _write_video(root / "real" / "r2.mp4", _face_frames(60, face=True), fps=60, audio=_tone(1.0))
    _write_video(root / "fake" / "f1.mp4", _face_frames(30), audio=_tone(1.0, lead_silence=0.4))
    late = np.concatenate([_face_frames(12, face=False), _face_frames(33)])  # the face appears at frame 12
    _write_video(root / "real" / "late.mp4", late, audio=_tone(1.5))
    _write_video(root / "fake" / "noaudio.mp4", _face_frames(30))
    _write_video(root / "fake" / "blank.mp4", _face_frames(30, face=False), audio=_tone(1.0))
    full = _write_video(root / "trunc_src.mp4", _face_frames(30), audio=_tone(1.0)).read_bytes()
    (root / "fake" / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (root / "trunc_src.mp4").unlink()
    (root / "fake" / "text.mp4").write_text("this is not a video\n")
    (root / "fake" / "zero.mp4").write_bytes(b"")
    (root / "fake" / "notes.txt").write_text("ignored: not a video extension\n")
    return root


@pytest.fixture(scope="module")
def ingested(videos, tmp_path_factory):
    """One batch ingest of the folder (in-process) and its summary."""
    out = tmp_path_factory.mktemp("npz")
    summary = ingest(videos, out, Config(), workers=1, progress=False)
    return out, summary


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_batch_counts_and_records(ingested):
    out, s = ingested
    assert (s.done, s.skipped, s.failed) == (4, 0, 5)
    assert s.face_rate == pytest.approx((45 + 30 + 30 + 33) / (45 + 30 + 30 + 45), abs=0.02)
    assert s.total_duration == pytest.approx(1.5 + 1.0 + 1.0 + 1.5, abs=0.1)
    assert s.video_seconds_per_second > 0
    rows = read_index(out / "index.csv")
    assert sorted(r.video_id for r in rows) == ["f1", "late", "r1", "r2"]
    assert {r.video_id: r.label for r in rows} == {"f1": 1, "late": 0, "r1": 0, "r2": 0}
    for r in rows:
        rec = load_record(out / r.path, warn=False)
        assert rec.frames.dtype == np.uint8 and rec.frames.shape[1:] == (224, 224, 3)
        assert rec.lip.dtype == np.uint8 and rec.lip.shape[1:] == (112, 112, 3)
        assert rec.audio.dtype == np.float32 and rec.audio.shape[1] == 40
        assert rec.audio.shape[0] == pytest.approx(rec.duration * 16000 / 512, abs=3)
        assert rec.audio_rate == pytest.approx(31.25)
        assert r.n_frames == rec.n_frames == len(rec.timestamps) == len(rec.face_found)
        assert np.all(np.diff(rec.timestamps) > 0)
        assert np.median(np.diff(rec.timestamps)) == pytest.approx(1 / 30, rel=0.02)
        assert rec.face_found.mean() > (0.7 if r.video_id == "late" else 0.95)
        assert rec.frames[-1].std() > 10  # real image content, not empty placeholders


def test_frames_before_the_first_face_use_its_box(ingested):
    out, _ = ingested
    rec = load_record(out / "late.npz", warn=False)
    assert rec.n_frames == 45
    assert not rec.face_found[:12].any() and rec.face_found[12:].all()
    assert abs(float(rec.frames[0].mean()) - 90) < 3  # the blank background inside the first face box
    assert rec.frames[12].std() > 10


def test_resampling_60_to_30_fps(ingested):
    out, _ = ingested
    rec = load_record(out / "r2.npz", warn=False)
    assert rec.fps == 30.0
    assert rec.n_frames == 30  # 60 frames at 60 fps -> every other frame
    assert rec.duration == pytest.approx(1.0, abs=0.02)


def test_failures_have_specific_reasons(ingested):
    out, s = ingested
    reasons = {Path(r["file"]).name: r["reason"] for r in _csv(out / "failures.csv")}
    assert set(reasons) == {"noaudio.mp4", "blank.mp4", "truncated.mp4", "text.mp4", "zero.mp4"}
    assert reasons["noaudio.mp4"] == "no audio track"
    assert reasons["blank.mp4"] == "no face detected"
    assert reasons["truncated.mp4"].startswith("truncated or corrupt container")
    assert reasons["text.mp4"].startswith("not a video file (looks like text")
    assert reasons["zero.mp4"] == "empty file (0 bytes)"
    assert dict((Path(f).name, r) for f, r in s.failures) == reasons


def test_metadata_csv(ingested):
    out, _ = ingested
    meta = {r["video_id"]: r for r in _csv(out / "metadata.csv")}
    assert set(meta) == {"f1", "late", "r1", "r2"}
    assert float(meta["f1"]["lead_silence"]) == pytest.approx(0.4, abs=0.07)
    assert float(meta["r1"]["lead_silence"]) < 0.07
    assert float(meta["r1"]["duration"]) == pytest.approx(1.5, abs=0.05)
    assert 0 < float(meta["r1"]["mean_brightness"]) < 255
    assert meta["r1"]["label"] == "0" and meta["f1"]["label"] == "1"
    assert float(meta["r1"]["face_rate"]) > 0.9


def test_rerun_skips_finished(ingested, videos):
    out, _ = ingested
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    s = ingest(videos, out, Config(), workers=1, progress=False)
    assert (s.done, s.skipped, s.failed) == (0, 4, 5)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == mtimes
    assert len(read_index(out / "index.csv")) == 4
    assert len(_csv(out / "metadata.csv")) == 4


def test_cli_rerun_with_other_settings_recomputes(videos, tmp_path, capsys):
    (tmp_path / "src" / "fake").mkdir(parents=True)
    shutil.copy(videos / "fake" / "f1.mp4", tmp_path / "src" / "fake" / "f1.mp4")
    small = ["ingest", str(tmp_path / "src"), str(tmp_path / "out"), "--workers", "1", "--no-progress",
             "--face-size", "64", "--lip-size", "32", "--detect-every", "2"]
    assert cli.main(small) == 0 and "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    rec = load_record(tmp_path / "out" / "f1.npz", warn=False)
    assert rec.frames.shape[1:] == (64, 64, 3) and rec.lip.shape[1:] == (32, 32, 3)
    assert cli.main(small) == 0 and "0 done, 1 skipped" in capsys.readouterr().out
    assert cli.main(small[:5]) == 0 and "1 done, 0 skipped" in capsys.readouterr().out  # other settings: redone
    assert load_record(tmp_path / "out" / "f1.npz", warn=False).frames.shape[1:] == (224, 224, 3)
    assert cli.main(["ingest", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2


def test_manifest_with_extras_native_fps_and_workers(videos, tmp_path):
    man = tmp_path / "labels.csv"
    man.write_text("path,label,group,split,fake_type\n"
                   f"{videos / 'real' / 'r2.mp4'},REAL,alice,test,none\n"
                   "../missing.mp4,FAKE,bob,train,lipsync\n"
                   f"{os.path.relpath(videos / 'fake' / 'f1.mp4', tmp_path)},fake,bob,train,faceswap\n")
    cfg = Config()
    cfg.ingest.fps = None
    out = tmp_path / "out"
    s = ingest(man, out, cfg, workers=2, progress=False)
    assert (s.done, s.failed) == (2, 1)
    assert s.failures == [("../missing.mp4", "file not found")]
    meta = {r["video_id"]: r for r in _csv(out / "metadata.csv")}
    assert meta["f1"]["fake_type"] == "faceswap" and meta["r2"]["fake_type"] == "none"
    assert meta["r2"]["group"] == "alice" and meta["r2"]["split"] == "test"
    idx = {r.video_id: r for r in read_index(out / "index.csv")}
    assert idx["r2"].split == "test" and idx["f1"].group == "bob"
    rec = load_record(out / "r2.npz", warn=False)
    assert rec.fps == pytest.approx(60.0) and rec.n_frames == 60  # native rate keeps every frame


def test_ingest_video_raises_with_reason(videos):
    with pytest.raises(IngestError) as e:
        ingest_video(videos / "fake" / "blank.mp4", 1, "blank", "blank", Config())
    assert e.value.reason == "no face detected"


def test_duplicate_stems_get_distinct_ids(tmp_path, videos):
    for sub in ("real", "fake"):
        (tmp_path / sub).mkdir()
        shutil.copy(videos / "fake" / "f1.mp4", tmp_path / sub / "clip.mp4")
    jobs, failures = list_jobs(tmp_path)
    assert sorted(j.video_id for j in jobs) == ["fake__clip", "real__clip"] and not failures


def test_detector_and_tracker_on_real_face():
    frames = _face_frames(7)
    faces = detect_faces(frames[0])
    assert len(faces) == 1 and faces[0].score > 0.5
    box, score, lms = faces[0]
    assert 70 < box[0] < box[2] < 240 and lms.shape == (5, 2)
    tracker = FaceTracker(Config().ingest)
    outs = [tracker.update(f) for f in frames]
    assert [d for _, _, d in outs] == [True, None, None, True, None, None, True]
    assert all(f.shape == (224, 224, 3) and lip.shape == (112, 112, 3) for f, lip, _ in outs)


def test_bracketed_found():
    assert bracketed_found([True, None, None, False, None, True, None]).tolist() == \
        [True, False, False, False, False, True, True]


def test_manifest_fake_segments_become_frame_labels(videos, tmp_path):
    f1, r1 = videos / "fake" / "f1.mp4", videos / "real" / "r1.mp4"  # 1.0 s and 1.5 s at 30 fps

    def manifest(first_segments: str) -> Path:
        man = tmp_path / "labels.csv"
        with open(man, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "video_id", "fake_segments"])
            w.writerows([[f1, 1, "partial", first_segments],
                         [f1, 1, "whole", ""],
                         [r1, 0, "real", ""],
                         [f1, 1, "after_end", "[[0.5, 1.4]]"],
                         [f1, 1, "bad_json", "[[0.5, 1.4"],
                         [f1, 1, "reversed", "[[0.5, 0.2]]"],
                         [f1, 1, "empty", "[]"],
                         [f1, 1, "between_frames", "[[0.201, 0.202]]"],
                         [r1, 0, "real_with_segments", '[[0.1, 0.2, "video"]]']])
        return man

    out = tmp_path / "out"
    s = ingest(manifest('[[0.2, 0.5, "audio"], [0.9, 1.0, "video"]]'), out, Config(), workers=1, progress=False)
    assert (s.done, s.failed) == (3, 6), s.failures
    got = sorted(r for _, r in s.failures)
    for needle in ("ends after the video", "not valid JSON", "not before end", "empty list on a FAKE row",
                   "cover no frame", "on a REAL (label 0) row"):
        assert sum(needle in r for r in got) == 1, (needle, got)
    rec = load_record(out / "partial.npz")
    # frames at k / 30 s: [0.2, 0.5) holds frames 6-14, [0.9, 1.0) frames 27-29
    assert np.flatnonzero(rec.frame_label).tolist() == list(range(6, 15)) + [27, 28, 29]
    assert load_record(out / "whole.npz").frame_label is None and load_record(out / "real.npz").frame_label is None
    meta = {r["video_id"]: r for r in _csv(out / "metadata.csv")}
    assert meta["partial"]["segment_modality"] == "audio;video" and meta["whole"]["segment_modality"] == ""
    # a changed segment list re-ingests that video (and only it)
    s = ingest(manifest("[[0.0, 0.1]]"), out, Config(), workers=1, progress=False)
    assert (s.done, s.skipped) == (1, 2)
    assert np.flatnonzero(load_record(out / "partial.npz").frame_label).tolist() == [0, 1, 2]


def test_records_are_compact_keep_the_waveform_and_ingest_reports_disk_per_hour(ingested, videos, tmp_path, capsys):
    from workbench.data.audio import mfcc
    out, s = ingested
    npz = sorted(out.glob("*.npz"))
    assert s.disk_bytes == sum(p.stat().st_size for p in npz) and s.storage == "lossless"
    assert s.gb_per_hour == pytest.approx(s.disk_bytes / 1e9 / (s.total_duration / 3600))
    assert "GB per hour of video" in str(s)
    rec = load_record(out / "r1.npz", warn=False)
    assert "storage" in np.load(out / "r1.npz").files  # per-frame images, not raw arrays
    assert rec.audio_wave.dtype == np.int16 and rec.wave_rate == 16000
    assert len(rec.audio_wave) == pytest.approx(1.5 * 16000, rel=0.03)
    np.testing.assert_allclose(rec.audio, mfcc(rec.audio_wave / 32767.0, Config().audio), atol=1e-3)  # MFCC of the kept wave
    (tmp_path / "src" / "real").mkdir(parents=True)
    shutil.copy(videos / "real" / "r1.mp4", tmp_path / "src" / "real" / "r1.mp4")
    sizes = {}
    for storage in ("raw", "jpeg"):
        assert cli.main(["ingest", str(tmp_path / "src"), str(tmp_path / storage), "--workers", "1", "--no-progress",
                         "--storage", storage]) == 0
        assert f"({storage})" in capsys.readouterr().out
        sizes[storage] = (tmp_path / storage / "r1.npz").stat().st_size
        back = load_record(tmp_path / storage / "r1.npz", warn=False)
        assert back.n_frames == rec.n_frames
        if storage == "raw":
            np.testing.assert_array_equal(back.frames, rec.frames)  # lossless storage: the very same crops
    lossless = (out / "r1.npz").stat().st_size
    assert sizes["raw"] > 2.5 * lossless and lossless > sizes["jpeg"]
    with pytest.raises(ValueError, match="storage must be one of"):
        ingest(tmp_path / "src", tmp_path / "bad", Config.load(None, ["ingest.storage=zip"]), workers=1, progress=False)
