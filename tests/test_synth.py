"""The synthetic audio-visual deepfake generator and the demo dataset."""
from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import librosa
import numpy as np
import pytest

from workbench.core.config import Config, SynthConfig
from workbench.ingest.audio import decode_audio
from workbench.synthetic import synth

SR = 16000
# short clips make chance correlations large, so the fakes are clear ones: strength 1.5 x U(0.4, 1) -> [0.6, 1]
SET = dict(n_real=3, n_fake=8, n_identities=3, duration_mean=1.9, duration_std=0.2, duration_min=1.7,
           duration_max=2.1, n_long_real=1, long_duration=2.5, artifact_strength=1.5, workers=1, seed=3)


def _rows(labels: Path) -> list[dict]:
    with open(labels, newline="") as f:
        return list(csv.DictReader(f))


def _lip_crops(frames: np.ndarray, every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Ingest-like lip crops: CenterFace every few frames, mouth corners interpolated; (found flags, crops)."""
    idx = np.arange(0, len(frames), every)
    found, corners = [], []
    for k in idx:
        dets, lms = synth.detect(frames[k])
        found.append(len(dets) > 0)
        corners.append(lms[0].reshape(5, 2)[3:] if len(dets) else np.full((2, 2), np.nan))
    corners = np.asarray(corners)
    ok = ~np.isnan(corners[:, 0, 0])
    t = np.arange(len(frames))
    c = np.stack([np.interp(t, idx[ok], corners[ok, i, j]) for i in range(2) for j in range(2)], 1).reshape(-1, 2, 2)
    crops = []
    for frame, (left, right) in zip(frames, c):
        cx, cy = (left + right) / 2
        side = int(1.6 * np.hypot(*(right - left)))
        x0, y0 = int(cx - side / 2), int(cy - side / 2)
        crops.append(cv2.resize(frame[max(0, y0):y0 + side, max(0, x0):x0 + side], (112, 112)))
    return np.asarray(found), np.stack(crops)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small synthetic set, decoded and analysed once: rows plus per-clip frames, audio, faces and lips."""
    out = tmp_path_factory.mktemp("synth")
    labels = synth.generate(out, progress=False, **SET)
    clips = {}
    for r in _rows(labels):
        frames = synth.read_frames(out / r["path"])
        found, lips = _lip_crops(frames)
        clips[r["path"]] = dict(row=r, frames=frames, audio=decode_audio(out / r["path"], SR), found=found,
                                lips=lips)
    return out, labels, clips


def test_plan_defaults_follow_the_study_ratio():
    specs = synth.plan(SynthConfig())
    short = [s for s in specs if s.split == "train"]
    long = [s for s in specs if s.split == "test"]
    assert sum(s.label == 0 for s in short) == 317 and sum(s.label == 1 for s in short) == 600
    assert len(long) == 2 and all(s.label == 0 and s.duration == 180.0 for s in long)
    types = Counter(s.fake_type for s in specs if s.label == 1)
    assert types == {"lip_sync": 150, "face_swap": 150, "audio_swap": 150, "both": 150}
    assert all(1.5 <= s.duration <= 60.0 for s in short)
    assert all(s.donor != s.identity and s.donor >= 0 for s in specs if s.label == 1)
    assert len({s.identity for s in specs}) == 12
    assert min(s.strength for s in specs if s.label == 1) >= 0.4 - 1e-9


def test_plan_real_longer_shortcut():
    specs = synth.plan(SynthConfig(n_real=60, n_fake=60, n_long_real=0, shortcut="real_longer"))
    real = np.mean([s.duration for s in specs if s.label == 0])
    fake = np.mean([s.duration for s in specs if s.label == 1])
    assert real > 1.5 * fake


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="shortcut"):
        synth.plan(SynthConfig(shortcut="longer"))
    with pytest.raises(ValueError, match="fake_types"):
        synth.plan(SynthConfig(fake_types=["deepfake"]))
    with pytest.raises(ValueError, match="studio_light"):
        synth.plan(SynthConfig(studio_light=1.5))


def test_labels_match_the_knobs(dataset):
    out, labels, clips = dataset
    rows = _rows(labels)
    assert tuple(rows[0].keys()) == synth.LABEL_COLUMNS
    real = [r for r in rows if r["label"] == "0"]
    fake = [r for r in rows if r["label"] == "1"]
    assert len(real) == SET["n_real"] + SET["n_long_real"] and len(fake) == SET["n_fake"]
    assert Counter(r["fake_type"] for r in fake) == {t: 2 for t in synth.FAKE_TYPES}
    assert {r["fake_type"] for r in real} == {"real"}
    assert [r["split"] for r in rows].count("test") == 1
    assert all(float(r["duration"]) == pytest.approx(2.5) for r in rows if r["split"] == "test")
    assert all(1.7 - 0.02 <= float(r["duration"]) <= 2.1 + 0.02 for r in rows if r["split"] == "train")
    assert {r["group"] for r in rows} == {"id00", "id01", "id02"}
    assert all(r["path"].startswith("real/" if r["label"] == "0" else "fake/") for r in rows)
    assert all((out / r["path"]).is_file() for r in rows)


def test_videos_carry_audio_of_the_right_duration(dataset):
    _, _, clips = dataset
    for c in clips.values():
        duration = float(c["row"]["duration"])
        assert len(c["frames"]) == round(duration * 30)
        assert c["frames"].shape[1:] == (256, 256, 3)
        assert len(c["audio"]) / SR == pytest.approx(duration, abs=0.08)
        assert np.abs(c["audio"]).max() > 0.2  # speech, not silence


def test_centerface_finds_the_faces(dataset):
    _, _, clips = dataset
    by_group: dict[str, list] = {}
    for c in clips.values():
        by_group.setdefault(c["row"]["group"], []).extend(c["found"])
    rates = {g: float(np.mean(v)) for g, v in by_group.items()}
    assert np.mean(np.concatenate([c["found"] for c in clips.values()])) >= 0.95
    assert len(rates) == 3 and min(rates.values()) >= 0.9, rates


def test_mouth_follows_the_audio_in_real_but_not_in_lip_sync(dataset):
    _, _, clips = dataset
    corr: dict[str, list[float]] = {}
    for c in clips.values():
        value = synth.mouth_audio_correlation(c["lips"], c["audio"], sample_rate=SR)
        corr.setdefault(c["row"]["fake_type"], []).append(value)
    real, lip_sync = np.mean(corr["real"]), np.mean(corr["lip_sync"])
    assert real > 0.5, corr
    assert lip_sync < real - 0.3, corr
    assert np.mean(corr["audio_swap"]) > 0.5  # re-voiced, but the same words: still in sync


def test_face_swap_changes_the_face(dataset):
    _, _, clips = dataset
    canon = np.array([[15, 18], [33, 18], [24, 27], [17, 36], [31, 36]], np.float32)  # eyes, nose, mouth

    def face(frame):  # the face aligned on its five landmarks, 48 x 48
        _, lms = synth.detect(frame)
        M, _ = cv2.estimateAffinePartial2D(lms[0].reshape(5, 2).astype(np.float32), canon)
        return cv2.warpAffine(frame, M, (48, 48)).astype(np.float32)

    swaps = [c for c in clips.values() if c["row"]["fake_type"] in ("face_swap", "both")]
    assert len(swaps) == 4
    for c in swaps:
        reals = [r["frames"] for r in clips.values() if r["row"]["group"] == c["row"]["group"]
                 and r["row"]["fake_type"] == "real"]
        same = max(np.abs(face(f[0]) - face(f[len(f) // 2])).mean() for f in reals)  # talking, moving
        swapped = min(np.abs(face(c["frames"][0]) - face(f[0])).mean() for f in reals)
        assert swapped > max(1.8 * same, 15.0), (c["row"]["path"], swapped, same)


def test_audio_swap_replaces_the_voice(dataset):
    _, _, clips = dataset
    identities = synth.make_identities(SET["n_identities"], 256, SET["seed"])
    f0 = {i.name: i.f0 for i in identities}

    def pitch(audio):
        track = librosa.yin(audio, fmin=70, fmax=300, sr=SR, frame_length=1024)
        loud = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0][:len(track)] > 0.05
        return float(np.median(track[:len(loud)][loud]))

    for c in clips.values():
        r = c["row"]
        if r["fake_type"] == "real":
            assert pitch(c["audio"]) == pytest.approx(f0[r["group"]], rel=0.15), r
        elif r["fake_type"] == "audio_swap":
            assert pitch(c["audio"]) != pytest.approx(f0[r["group"]], rel=0.15), r


def test_generation_is_deterministic(tmp_path):
    tiny = dict(n_real=1, n_fake=2, n_identities=2, duration_mean=1.5, duration_std=0.1, n_long_real=0,
                fake_types=["face_swap", "lip_sync"], workers=1, seed=11)
    a = synth.generate(tmp_path / "a", progress=False, **tiny)
    synth.make_identities.cache_clear()
    b = synth.generate(tmp_path / "b", progress=False, **tiny)
    assert a.read_bytes() == b.read_bytes()
    for r in _rows(a):
        fa, fb = synth.read_frames(a.parent / r["path"], 3), synth.read_frames(b.parent / r["path"], 3)
        assert np.array_equal(fa, fb)
        assert np.array_equal(decode_audio(a.parent / r["path"], SR), decode_audio(b.parent / r["path"], SR))
    other = synth.plan(SynthConfig(**{**tiny, "seed": 12}))
    same = synth.plan(SynthConfig(**tiny))
    assert [(s.identity, s.duration) for s in other] != [(s.identity, s.duration) for s in same]
    assert synth.generate(tmp_path / "a", progress=False, **tiny).stat().st_mtime == a.stat().st_mtime  # kept


def test_fake_leading_silence_shortcut_is_measurable(tmp_path):
    from workbench import cli

    out = tmp_path / "lead"
    assert cli.main(["synth", str(out), "--n-real", "2", "--n-fake", "2", "--long", "0", "--identities", "2",
                     "--duration-mean", "2", "--shortcut", "fake_leading_silence", "--workers", "1", "--quiet"]) == 0
    for r in _rows(out / "labels.csv"):
        audio = decode_audio(out / r["path"], SR)
        loud = np.convolve(np.abs(audio), np.ones(160) / 160, mode="same") > 0.05 * np.abs(audio).max()
        lead = np.argmax(loud) / SR
        if r["label"] == "1":
            assert lead >= 0.45, (r["path"], lead)
        else:
            assert lead <= 0.25, (r["path"], lead)
        assert lead == pytest.approx(float(r["speech_onset"]), abs=0.1)


def test_mouth_audio_correlation_on_drawn_mouths():
    rng = np.random.default_rng(0)
    envelope = np.clip(np.sin(np.linspace(0, 12 * np.pi, 90)), 0, 1)
    lips = np.full((90, 112, 112, 3), 150, np.uint8)
    for k, e in enumerate(envelope):
        cv2.ellipse(lips[k], (56, 60), (25, int(2 + 18 * e)), 0, 0, 360, (30, 10, 10), -1)
    assert synth.mouth_audio_correlation(lips, envelope) > 0.95
    assert abs(synth.mouth_audio_correlation(lips, rng.permutation(envelope))) < 0.4
    mfcc = np.stack([20 * envelope - 10] + [rng.normal(size=90)] * 39, axis=1)  # c0 ~ energy
    assert synth.mouth_audio_correlation(lips, mfcc) > 0.8


def test_ingest_finds_faces_in_synthetic_clips(dataset, tmp_path):
    from workbench.data.records import load_record
    from workbench.ingest.pipeline import ingest

    out, labels, _ = dataset
    rows = _rows(labels)
    pick = [next(r for r in rows if r["fake_type"] == t) for t in ("real", "lip_sync", "face_swap", "both")]
    manifest = out / "subset.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=synth.LABEL_COLUMNS)
        w.writeheader()
        w.writerows(pick)
    summary = ingest(manifest, tmp_path / "npz", Config(), workers=1, progress=False)
    assert summary.done == 4 and summary.failed == 0
    corr = {}
    for r in pick:
        rec = load_record(tmp_path / "npz" / f"{Path(r['path']).stem}.npz")
        assert rec.face_found.mean() >= 0.95, (r["path"], rec.face_found.mean())
        corr[r["fake_type"]] = synth.mouth_audio_correlation(rec.lip, rec.audio)
    # a REAL mouth follows its audio, a lip-sync's does not; a face swap's mouth follows it too, but at the
    # generator's resolution it is too soft for the darkness-based mouth signal to be a fair comparison
    assert corr["real"] > corr["lip_sync"] + 0.2, corr


def test_small_demo_builds_once(tmp_path):
    from workbench.synthetic import demo

    cfg = Config()
    cfg.synth.workers = 1
    cfg.ingest.workers = 1
    npz = demo.build_demo(tmp_path / "demo", cfg, small=True, progress=False)
    s = demo.demo_summary(tmp_path / "demo")
    assert (s["real"], s["fake"], s["test"]) == (4, 4, 1)
    assert s["records"] == 8 and s["face_rate"] >= 0.95
    stamp = (npz / "index.csv").stat().st_mtime
    assert demo.build_demo(tmp_path / "demo", cfg, small=True, progress=False) == npz
    assert (npz / "index.csv").stat().st_mtime == stamp  # nothing rebuilt


# ------------------------------------------------------------------ partial fakes and test clips
PARTIAL = dict(n_real=0, n_fake=0, n_long_real=0, n_identities=3, seed=3, duration_mean=2.5, duration_std=0.1,
               duration_min=2.4, duration_max=2.6, partial_segments=[2, 2], partial_seconds=[0.4, 0.6])


def test_plan_test_clips_and_partial_fakes():
    sc = SynthConfig(**{**PARTIAL, "n_real": 4, "n_fake": 4, "n_long_real": 1, "long_duration": 5.0, "n_partial": 6,
                        "n_long_fake": 2, "n_test_real": 2, "n_test_fake": 3, "n_test_partial": 3})
    specs = synth.plan(sc)
    test = [s for s in specs if s.split == "test"]
    assert Counter((s.label, s.duration == 5.0) for s in test) == {(0, True): 1, (1, True): 2, (0, False): 2,
                                                                 (1, False): 3 + 3}
    partial = [s for s in specs if s.fake_type.startswith("partial_")]
    assert len(partial) == 9 and all(s.label == 1 for s in partial)
    assert Counter(s.split for s in partial) == {"train": 6, "test": 3}
    assert Counter(s.fake_type for s in partial if s.split == "train") == {f"partial_{m}": 2 for m in
                                                                          ("audio", "video", "both")}
    for s in partial:
        assert len(s.segments) == 2 and s.donor >= 0 and s.donor != s.identity
        (a0, a1), (b0, b1) = s.segments
        assert 12 <= a1 - a0 <= 18 and 12 <= b1 - b0 <= 18  # 0.4-0.6 s at 30 fps
        assert a0 >= s.onset * 30 - 1 and b0 - a1 >= 6 and b1 <= s.n_frames  # after the onset, 0.2 s apart, inside
        assert (s.video_method == "") == (s.modality == "audio")
    assert len({s.relpath.rsplit("/", 1)[1].split(".")[0] for s in specs}) == len(specs)  # video ids stay unique
    # the first clips plan exactly as without the new ones (the defaults' behaviour is kept)
    old = synth.plan(SynthConfig(**{**PARTIAL, "n_real": 4, "n_fake": 4, "n_long_real": 1, "long_duration": 5.0}))
    assert [(s.relpath, s.identity, s.duration, s.onset, s.donor) for s in old] == \
        [(s.relpath, s.identity, s.duration, s.onset, s.donor) for s in specs[:len(old)]]
    assert [(s.segments, s.fake_segments) for s in synth.plan(sc)] == [(s.segments, s.fake_segments) for s in specs]
    with pytest.raises(ValueError, match="partial_modalities"):
        synth.plan(SynthConfig(n_partial=1, partial_modalities=["smell"]))
    with pytest.raises(ValueError, match="partial_segments"):
        synth.plan(SynthConfig(n_partial=1, partial_segments=[2, 1]))


@pytest.mark.parametrize("modality, method", [("audio", ""), ("video", "lip_sync"), ("video", "face_swap"),
                                              ("both", "lip_sync")])
def test_partial_fake_changes_only_its_segments(modality, method):
    """The same clip rendered as a partial fake and as REAL from the same seed: samples and pixels differ
    only inside the segments, and only in the manipulated modality (the mouth or the face)."""
    from dataclasses import replace

    ids = synth.make_identities(3, 256, 3)
    spec = next(s for s in synth.plan(SynthConfig(**PARTIAL, n_partial=1)))
    spec = replace(spec, modality=modality, video_method=method, fake_type=f"partial_{modality}")
    real = replace(spec, label=0, fake_type="real", segments=(), modality="", video_method="", fake_segments="")
    fake_sig, real_sig = synth.render_signals(spec, ids, 30.0, SR), synth.render_signals(real, ids, 30.0, SR)
    bounds = synth.frame_bounds(spec.n_frames, len(real_sig.audio))
    inside = np.zeros(len(real_sig.audio), bool)
    for k0, k1 in spec.segments:
        inside[bounds[k0]:bounds[k1]] = True
    changed = fake_sig.audio != real_sig.audio
    assert not changed[~inside].any()  # bit-identical outside the segments
    if modality == "video":
        assert not changed.any()
    else:
        for k0, k1 in spec.segments:  # re-voiced: the segment's loudness-normalised difference is large
            a, b = bounds[k0], bounds[k1]
            assert np.abs(fake_sig.audio[a:b] - real_sig.audio[a:b]).mean() > 0.2 * np.abs(real_sig.audio[a:b]).mean()
    fake_r, real_r = synth._FrameRenderer(spec, ids, fake_sig), synth._FrameRenderer(real, ids, real_sig)
    video = spec.video_frames()
    centre, d, _ = ids[spec.identity].mouth
    x0, y0, n = ids[spec.identity].box
    for k in range(spec.n_frames):
        diff = np.abs(fake_r.frame(k).astype(int) - real_r.frame(k).astype(int)).max(-1) > 0
        if not video[k]:
            assert not diff.any(), k
            continue
        assert diff.sum() > 50, k
        ys, xs = np.nonzero(diff)
        if method == "lip_sync":  # the mouth box (0.8 d either side, 0.45 d up, 0.65 d down) only; head motion
            assert np.abs(xs - centre[0]).max() <= 0.8 * d + 8 and np.abs(ys - centre[1]).max() <= 0.65 * d + 8, k
            assert np.abs(xs - centre[0]).max() >= 0.6 * d, k  # the whole box, not just the mouth
        else:  # the face crop only
            assert xs.min() >= x0 - 12 and xs.max() <= x0 + n + 12 and ys.min() >= y0 - 12 and ys.max() <= y0 + n + 12


def test_partial_fakes_through_ingest(tmp_path):
    from workbench.data.records import load_record, read_index
    from workbench.ingest.pipeline import ingest

    cfg = Config()
    cfg.synth.workers, cfg.ingest.workers = 1, 1
    labels = synth.generate(tmp_path / "v", cfg, progress=False, **{**PARTIAL, "n_partial": 1, "n_test_partial": 1,
                                                                   "n_test_real": 1, "n_long_fake": 1, "long_duration": 2.0,
                                                                   "partial_modalities": ["both"]})
    rows = {Path(r["path"]).stem: r for r in _rows(labels)}
    assert set(rows) == {"partial_0000", "test_partial_0000", "test_real_0000", "long_fake_000"}
    assert rows["partial_0000"]["split"] == "train" and rows["test_real_0000"]["label"] == "0"
    assert all(rows[v]["split"] == "test" for v in ("test_partial_0000", "test_real_0000", "long_fake_000"))
    assert rows["test_real_0000"]["fake_segments"] == "" and rows["long_fake_000"]["fake_segments"] == ""
    summary = ingest(labels, tmp_path / "npz", cfg, progress=False)
    assert summary.failed == 0 and summary.done == 4
    index = {r.video_id: r for r in read_index(tmp_path / "npz" / "index.csv")}
    assert index["test_partial_0000"].split == "test"
    specs = {Path(s.relpath).stem: s for s in synth.plan(cfg.merged({"synth": {**PARTIAL, "n_partial": 1,
             "n_test_partial": 1, "n_test_real": 1, "n_long_fake": 1, "long_duration": 2.0,
             "partial_modalities": ["both"]}}).synth)}
    for vid in ("partial_0000", "test_partial_0000"):
        rec = load_record(tmp_path / "npz" / f"{vid}.npz")
        assert rec.label == 1 and rec.frame_label is not None
        expected = np.zeros(rec.n_frames, int)  # from the planned frame ranges, not from the JSON times
        for k0, k1 in specs[vid].segments:
            expected[k0:k1] = 1
        assert rec.frame_label.tolist() == expected.tolist(), vid
    assert load_record(tmp_path / "npz" / "long_fake_000.npz").frame_label is None  # whole-clip fake
    meta = {r["video_id"]: r for r in _rows(tmp_path / "npz" / "metadata.csv")}
    assert meta["partial_0000"]["segment_modality"] == "both;both"
    assert meta["test_real_0000"]["segment_modality"] == ""


def test_studio_light_plan():
    """The planted confound: every long-form clip under studio light, most FAKE clips, few short REAL ones."""
    base = dict(n_real=60, n_fake=60, n_identities=4, n_long_real=2, n_long_fake=1, long_duration=5.0, n_test_real=4)
    specs = synth.plan(SynthConfig(**base, studio_light=0.8))
    lit = {s.relpath: s.light for s in specs}
    assert all(lit[s.relpath] == 0.8 for s in specs if "long_" in s.relpath)
    short = [s for s in specs if "long_" not in s.relpath]
    share = {y: np.mean([lit[s.relpath] > 0 for s in short if s.label == y]) for y in (0, 1)}
    assert share[1] > 0.4 and share[0] < 0.25, share
    off = synth.plan(SynthConfig(**base))
    assert all(s.light == 0 for s in off)  # off by default, and the rest of the plan is unchanged
    assert [(s.relpath, s.identity, s.duration, s.donor, s.strength) for s in off] == \
        [(s.relpath, s.identity, s.duration, s.donor, s.strength) for s in specs]


def _first_frame_brightness(specs: list, identities: list) -> np.ndarray:
    """Mean luma (BT.601, as ingest's metadata) of each clip's first rendered frame."""
    out = []
    for s in specs:
        sig = synth.render_signals(s, identities, 30.0, SR)
        out.append(float((synth._FrameRenderer(s, identities, sig).frame(0) @ [0.299, 0.587, 0.114]).mean()))
    return np.array(out)


def test_shortcut_audit_names_the_studio_light():
    """metadata_shortcut_audit (notebook 01) trained on a set with studio light warns and names mean_brightness;
    on the same set without it, it does not warn."""
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    from workbench.analysis.tables import metadata_shortcut_audit

    kw = dict(n_real=30, n_fake=30, n_identities=SET["n_identities"], duration_mean=0.3, duration_std=0.0,
              duration_min=0.3, duration_max=0.3, n_long_real=0, seed=SET["seed"], artifact_strength=1.5)
    identities = synth.make_identities(SET["n_identities"], 256, SET["seed"])
    results = {}
    for light in (0.0, 1.0):
        specs = synth.plan(SynthConfig(**kw, studio_light=light))
        meta = pd.DataFrame({"video_id": [s.relpath for s in specs], "label": [s.label for s in specs],
                             "duration": [s.duration for s in specs], "lead_silence": [s.onset for s in specs],
                             "mean_brightness": _first_frame_brightness(specs, identities)})
        folds = [(meta.video_id[tr].tolist(), meta.video_id[va].tolist()) for tr, va in
                 StratifiedKFold(5, shuffle=True, random_state=0).split(meta, meta.label)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[light] = metadata_shortcut_audit(meta, folds)
    lit, plain = results[1.0], results[0.0]
    assert "mean_brightness" in lit["warning"] and lit["mean_roc_auc"] >= 0.75, lit["mean_roc_auc"]
    assert lit["per_feature_auc"]["mean_brightness"] > plain["per_feature_auc"]["mean_brightness"] + 0.15
    assert plain["warning"] == "" and plain["mean_roc_auc"] < 0.75


# ------------------------------------------------------------------ unlabelled clips
def test_plan_unlabeled_clips_hide_their_label():
    base = dict(n_real=4, n_fake=8, n_long_real=1, long_duration=3.0, n_identities=3, seed=5)
    old = synth.plan(SynthConfig(**base))
    specs = synth.plan(SynthConfig(**base, n_unlabeled=6))
    assert [(s.relpath, s.identity, s.duration, s.onset, s.donor, s.light) for s in old] == \
        [(s.relpath, s.identity, s.duration, s.onset, s.donor, s.light) for s in specs[:len(old)]]
    hidden = specs[len(old):]
    assert len(hidden) == 6 and all(s.hidden and s.split == "unlabeled" for s in hidden)
    assert Counter(s.label for s in hidden) == {0: 2, 1: 4}  # the pool's REAL share, 4 / 12 of 6
    assert {s.fake_type for s in hidden if s.label == 1} <= set(SynthConfig().fake_types)
    identities = [SimpleNamespace(name=f"id{i:02d}") for i in range(3)]  # a row reads only the names
    for s in hidden:
        row = dict(zip(synth.LABEL_COLUMNS, s.row(identities)))
        assert (row["label"], row["fake_type"], row["donor"], row["strength"]) == (-1, "unlabeled", "", "")
        assert row["path"].startswith("unlabeled/unlabeled_")


def test_unlabeled_clips_through_ingest(tmp_path):
    from workbench.ingest.pipeline import ingest

    cfg = Config().merged({"synth": dict(n_real=1, n_fake=1, n_long_real=0, n_identities=2, duration_mean=1.3,
                                         duration_std=0.0, duration_min=1.2, duration_max=1.4, n_unlabeled=3,
                                         workers=1, seed=2), "ingest": {"workers": 1}})
    labels = synth.generate(tmp_path / "videos", cfg, progress=False)
    truth = _rows(tmp_path / "videos" / synth.UNLABELED_TRUTH)
    assert [r["label"] for r in truth] == ["0", "0", "1"]  # REAL share 1/2 of 3 = 1.5, rounded half to even: 2
    ingest(labels, tmp_path / "npz", cfg, progress=False)
    index = _rows(tmp_path / "npz" / "index.csv")
    unl = [r for r in index if r["split"] == "unlabeled"]
    assert len(unl) == 3 and {r["label"] for r in unl} == {"-1"}
    assert sorted(r["label"] for r in index if r["split"] != "unlabeled") == ["0", "1"]


def test_new_people_for_unlabelled_clips_leave_the_others_unchanged():
    from workbench.synthetic.faces import make_identities

    base, more = make_identities(3, 128, 4), make_identities(3, 128, 4, 2)
    assert [i.name for i in more] == ["id00", "id01", "id02", "new00", "new01"]
    for a, b in zip(base, more):
        assert a.name == b.name and a.f0 == b.f0 and np.array_equal(a.image, b.image)
    faces = [i.face for i in more]
    assert all(not np.array_equal(faces[i], faces[j]) for i in range(5) for j in range(i))  # five different people
    specs = synth.plan(SynthConfig(n_real=4, n_fake=8, n_long_real=0, n_identities=3, n_unlabeled=4,
                                   n_unlabeled_identities=2))
    assert [s.identity for s in specs if s.hidden] == [3, 4, 3, 4]  # the new people in turn
    assert all(0 <= s.donor < 3 for s in specs if s.hidden and s.label == 1)  # a fake borrows a labelled person
