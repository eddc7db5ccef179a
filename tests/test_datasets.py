"""Public datasets read from their own metadata (workbench.ingest.datasets) and ingested: tiny trees in each layout."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_ingest import _face_frames, _tone, _write_video  # the tiny real-face clip of the ingest tests

from workbench import cli
from workbench.core.config import Config
from workbench.data.records import IndexRow, load_record, read_index
from workbench.data.splits import make_folds
from workbench.ingest.datasets import (
    detect_layout,
    read_av1m,
    read_dataset,
    read_dfdc,
    read_fakeavceleb,
    read_lavdf,
    stratified_sample,
)
from workbench.ingest.pipeline import list_jobs
from workbench.training.kfold import load_dataset


# ------------------------------------------------------------------ the trees
@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """One 1.0 s clip at 30 fps with a face and a tone (frames at k / 30 s)."""
    return _write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", _face_frames(30), audio=_tone(1.0))


def _put(clip: Path, root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / rel)


FAV_CSV = """source,target1,target2,method,category,type,race,gender,path,
id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,FakeAVCeleb/RealVideo-RealAudio/African/men/id00076
id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,FakeAVCeleb/RealVideo-RealAudio/African/men/id00076
id00076,id00166,-,faceswap-wav2lip,D,FakeVideo-FakeAudio,African,men,00109_10_id00166_wavtolip.mp4,FakeAVCeleb/FakeVideo-FakeAudio/African/men/id00076
id00166,-,-,rtvc,B,RealVideo-FakeAudio,Asian (East),women,00021_fake.mp4,FakeAVCeleb/RealVideo-FakeAudio/Asian (East)/women/id00166
id00166,id00076,-,faceswap,C,FakeVideo-RealAudio,Asian (East),women,00021_gone.mp4,FakeAVCeleb/FakeVideo-RealAudio/Asian (East)/women/id00166
"""


@pytest.fixture(scope="module")
def fav(clip, tmp_path_factory) -> Path:
    """FakeAVCeleb v1.2: meta_data.csv with a repeated row and a listed file that is missing."""
    root = tmp_path_factory.mktemp("FakeAVCeleb_v1.2")
    (root / "meta_data.csv").write_text(FAV_CSV)
    _put(clip, root, "RealVideo-RealAudio/African/men/id00076/00109.mp4",
         "FakeVideo-FakeAudio/African/men/id00076/00109_10_id00166_wavtolip.mp4",
         "RealVideo-FakeAudio/Asian (East)/women/id00166/00021_fake.mp4")
    return root


def _lavdf_entry(file: str, split: str, original: str | None = None, periods=(), video=False, audio=False) -> dict:
    return {"file": file, "n_fakes": len(periods), "fake_periods": [list(p) for p in periods], "timestamps": [0.0],
            "duration": 1.0, "transcript": "so what", "original": original, "modify_video": video,
            "modify_audio": audio, "split": split, "video_frames": 30, "audio_channels": 1, "audio_frames": 16000}


@pytest.fixture(scope="module")
def lavdf(clip, tmp_path_factory) -> Path:
    """LAV-DF: metadata.json (a list), files under train/, dev/, test/."""
    root = tmp_path_factory.mktemp("LAV-DF")
    meta = [_lavdf_entry("train/000001.mp4", "train"),
            _lavdf_entry("train/000002.mp4", "train", "train/000001.mp4", [(0.2, 0.5)], video=True, audio=True),
            _lavdf_entry("dev/000003.mp4", "dev", "dev/000004.mp4", [(0.6, 0.8)], audio=True),
            _lavdf_entry("dev/000004.mp4", "dev"),
            _lavdf_entry("test/000005.mp4", "test")]
    (root / "metadata.json").write_text(json.dumps(meta))
    _put(clip, root, *(e["file"] for e in meta))
    return root


def _av1m_entry(file: str, split: str, kind: str, segs=(), audio_segs=None, visual_segs=None, **extra) -> dict:
    e = {"file": file, "original": None if kind == "real" else "id00000/orig.mp4", "split": split,
         "modify_type": kind, "audio_model": "" if kind == "real" else "yourtts",
         "fake_segments": [list(s) for s in segs], "video_frames": 30, "audio_frames": 16000, **extra}
    if audio_segs is not None:
        e["audio_fake_segments"], e["visual_fake_segments"] = audio_segs, visual_segs
    return e


@pytest.fixture(scope="module")
def av1m(clip, tmp_path_factory) -> Path:
    """AV-Deepfake1M: {train,val}_metadata.json, files relative to train/ and val/; test/ without metadata."""
    root = tmp_path_factory.mktemp("AV-Deepfake1M")
    train = [_av1m_entry("id00012/abc/00001/real.mp4", "train", "real", audio_segs=[], visual_segs=[]),
             _av1m_entry("id00012/abc/00001/fake_video_fake_audio.mp4", "train", "both-modified",
                         [(0.2, 0.4), (0.6, 0.8)], audio_segs=[[0.2, 0.4]], visual_segs=[[0.6, 0.8]]),
             _av1m_entry("id00020/xyz/00002/real.mp4", "train", "real")]
    val = [_av1m_entry("id00030/qqq/00003/real.mp4", "val", "real"),
           _av1m_entry("id00030/qqq/00003/fake_video_real_audio.mp4", "val", "visual_modified", [(0.2, 0.5)],
                       unknown_key={"ignored": True})]
    (root / "train_metadata.json").write_text(json.dumps(train))
    (root / "val_metadata.json").write_text(json.dumps(val))
    (root / "train_metadata" / "id00012").mkdir(parents=True)  # the per-file metadata folder: no videos
    (root / "train_metadata" / "id00012" / "x.json").write_text("{}")
    _put(clip, root, *(f"train/{e['file']}" for e in train), *(f"val/{e['file']}" for e in val), "test/000001.mp4")
    return root


@pytest.fixture(scope="module")
def dfdc(clip, tmp_path_factory) -> Path:
    """DFDC: dfdc_train_part_N/metadata.json, {name: {label, split, original}}."""
    root = tmp_path_factory.mktemp("dfdc")
    parts = {"dfdc_train_part_0": {"aaa.mp4": {"label": "REAL", "split": "train", "original": None},
                                   "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"}},
             "dfdc_train_part_1": {"ccc.mp4": {"label": "FAKE", "split": "train", "original": "ddd.mp4",
                                               "extra": 1},
                                   "ddd.mp4": {"label": "REAL", "split": "train", "original": None}}}
    for part, meta in parts.items():
        (root / part).mkdir()
        (root / part / "metadata.json").write_text(json.dumps(meta))
        _put(clip, root, *(f"{part}/{name}" for name in meta))
    return root


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _pick(rows: list[dict], *keys: str) -> dict[str, tuple]:
    """{video_id: (row[key], ...)} of reader rows or CSV rows."""
    return {r["video_id"]: tuple(r[k] for k in keys) for r in rows}


def _ingest(root: Path, out: Path, *flags: str) -> int:
    return cli.main(["ingest", str(root), str(out), "--workers", "1", "--no-progress", *flags])


def _frames(path: Path) -> list[int] | None:
    rec = load_record(path, warn=False)
    return None if rec.frame_label is None else np.flatnonzero(rec.frame_label).tolist()


# ------------------------------------------------------------------ readers
def test_fakeavceleb_rows(fav, capsys):
    rows = read_fakeavceleb(fav)
    assert "1 repeated or blank rows read once" in capsys.readouterr().out
    keys = ("path", "label", "group", "split", "fake_type", "audio_fake", "video_fake", "race")
    assert _pick(rows, *keys) == {
        "RealVideo-RealAudio/African/men/id00076/00109":
            ("RealVideo-RealAudio/African/men/id00076/00109.mp4", "0", "id00076", "train", "real", "0", "0", "African"),
        "FakeVideo-FakeAudio/African/men/id00076/00109_10_id00166_wavtolip":
            ("FakeVideo-FakeAudio/African/men/id00076/00109_10_id00166_wavtolip.mp4", "1", "id00076", "train",
             "faceswap-wav2lip", "1", "1", "African"),
        "RealVideo-FakeAudio/Asian (East)/women/id00166/00021_fake":
            ("RealVideo-FakeAudio/Asian (East)/women/id00166/00021_fake.mp4", "1", "id00166", "train", "rtvc", "1", "0",
             "Asian (East)"),
        "FakeVideo-RealAudio/Asian (East)/women/id00166/00021_gone":
            ("FakeVideo-RealAudio/Asian (East)/women/id00166/00021_gone.mp4", "1", "id00166", "train", "faceswap", "0",
             "1", "Asian (East)")}
    assert all(r["source_path"] == r["path"] and "fake_segments" not in r for r in rows)


def test_lavdf_rows(lavdf):
    rows = read_lavdf(lavdf)
    keys = ("label", "split", "group", "fake_type", "audio_fake", "video_fake", "fake_segments", "source_path")
    assert _pick(rows, *keys) == {
        "train/000001": ("0", "train", "train/000001", "real", "0", "0", "", "train/000001.mp4"),
        "train/000002": ("1", "train", "train/000001", "both_modified", "1", "1", '[[0.2, 0.5, "both"]]',
                         "train/000002.mp4"),
        "dev/000003": ("1", "dev", "dev/000004", "audio_modified", "1", "0", '[[0.6, 0.8, "audio"]]', "dev/000003.mp4"),
        "dev/000004": ("0", "dev", "dev/000004", "real", "0", "0", "", "dev/000004.mp4"),
        "test/000005": ("0", "test", "test/000005", "real", "0", "0", "", "test/000005.mp4")}


def test_av1m_rows_and_unlabelled_test_folder(av1m, capsys):
    rows = read_av1m(av1m)
    assert capsys.readouterr().out.strip() == ("AV-Deepfake1M: skipped 1 unlabelled video(s) in test/ (no "
                                               "test_metadata.json; --unlabeled ingests them with label -1)")
    keys = ("path", "label", "split", "group", "fake_type", "audio_fake", "video_fake", "fake_segments", "audio_model")
    expected = {
        "id00012/abc/00001/real": ("train/id00012/abc/00001/real.mp4", "0", "train", "id00012", "real", "0", "0", "",
                                   ""),
        "id00012/abc/00001/fake_video_fake_audio": (
            "train/id00012/abc/00001/fake_video_fake_audio.mp4", "1", "train", "id00012", "both_modified", "1", "1",
            '[[0.2, 0.4, "audio"], [0.6, 0.8, "video"]]', "yourtts"),
        "id00020/xyz/00002/real": ("train/id00020/xyz/00002/real.mp4", "0", "train", "id00020", "real", "0", "0", "",
                                   ""),
        "id00030/qqq/00003/real": ("val/id00030/qqq/00003/real.mp4", "0", "val", "id00030", "real", "0", "0", "", ""),
        "id00030/qqq/00003/fake_video_real_audio": (
            "val/id00030/qqq/00003/fake_video_real_audio.mp4", "1", "val", "id00030", "visual_modified", "0", "1",
            '[[0.2, 0.5, "video"]]', "yourtts")}
    assert _pick(rows, *keys) == expected
    with_test = read_av1m(av1m, unlabeled=True)
    assert "1 unlabelled video(s) in test/ ingested with label -1" in capsys.readouterr().out
    assert _pick(with_test, *keys) == {**expected, "000001": ("test/000001.mp4", "-1", "unlabeled", "000001", "", "",
                                                              "", "", "")}


def test_av1m_real_mp4_in_two_folders_gets_two_ids(av1m):
    jobs, failures = list_jobs(av1m, "av1m")
    assert not failures
    reals = sorted((j.video_id, j.stem) for j in jobs if j.path.name == "real.mp4")
    assert reals == [("id00012/abc/00001/real", "id00012__abc__00001__real"),
                     ("id00020/xyz/00002/real", "id00020__xyz__00002__real"),
                     ("id00030/qqq/00003/real", "id00030__qqq__00003__real")]


def test_dfdc_rows(dfdc):
    rows = read_dfdc(dfdc)
    keys = ("path", "label", "split", "group", "fake_type", "audio_fake", "video_fake", "original")
    assert _pick(rows, *keys) == {
        "dfdc_train_part_0/aaa": ("dfdc_train_part_0/aaa.mp4", "0", "train", "aaa", "real", "0", "0", ""),
        "dfdc_train_part_0/bbb": ("dfdc_train_part_0/bbb.mp4", "1", "train", "aaa", "FAKE", "0", "1", "aaa.mp4"),
        "dfdc_train_part_1/ccc": ("dfdc_train_part_1/ccc.mp4", "1", "train", "ddd", "FAKE", "0", "1", "ddd.mp4"),
        "dfdc_train_part_1/ddd": ("dfdc_train_part_1/ddd.mp4", "0", "train", "ddd", "real", "0", "0", "")}


def test_layout_detection(fav, lavdf, av1m, dfdc, tmp_path, capsys):
    assert [detect_layout(p) for p in (fav, lavdf, av1m, dfdc, dfdc / "dfdc_train_part_0", tmp_path)] == \
        ["fakeavceleb", "lavdf", "av1m", "dfdc", "dfdc", None]
    (tmp_path / "metadata.min.json").write_text("\n [ ]")
    assert detect_layout(tmp_path) == "lavdf"
    jobs, _ = list_jobs(lavdf)  # no --dataset: recognised, and said so
    assert f"{lavdf}: recognised the LAV-DF layout (read as --dataset lavdf)" in capsys.readouterr().out
    assert sorted(j.video_id for j in jobs) == ["dev/000003", "dev/000004", "test/000005", "train/000001",
                                                "train/000002"]


def test_bad_metadata_gives_specific_errors(tmp_path):
    (tmp_path / "metadata.json").write_text('{"a.mp4": {}}')
    with pytest.raises(ValueError, match="metadata.json: expected a JSON list of videos, got a dict"):
        read_lavdf(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps([_lavdf_entry("train/1.mp4", "holdout"), {"split": "train"}]))
    with pytest.raises(ValueError, match=r"metadata.json: entry 1 has no 'file'"):
        read_lavdf(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps([_lavdf_entry("train/1.mp4", "holdout")]))
    assert read_lavdf(tmp_path)[0]["split"] == "holdout"  # an unknown split is kept verbatim
    (tmp_path / "train_metadata.json").write_text(json.dumps([_av1m_entry("id1/a/real.mp4", "train", "partly")]))
    with pytest.raises(ValueError, match=r"train_metadata.json entry 0 \(id1/a/real.mp4\): unknown modify_type 'partly'"):
        read_av1m(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"x.mp4": {"label": "MAYBE"}}))
    with pytest.raises(ValueError, match=r"metadata.json: x.mp4: unknown label 'MAYBE' \(expected REAL or FAKE\)"):
        read_dfdc(tmp_path)
    (tmp_path / "meta_data.csv").write_text(FAV_CSV.splitlines()[0] + "\nid1,-,-,real,E,t,r,g,1.mp4,FakeAVCeleb/a\n")
    with pytest.raises(ValueError, match=r"meta_data.csv line 2 \(1.mp4\): unknown category 'E'"):
        read_fakeavceleb(tmp_path)
    (tmp_path / "meta_data.csv").write_text("source,path\nid1,1.mp4\n")
    with pytest.raises(ValueError, match="is not FakeAVCeleb's"):
        read_fakeavceleb(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no <subset>_metadata.json"):
        read_dataset(tmp_path / "empty", "av1m")
    assert cli.main(["ingest", str(tmp_path / "empty"), str(tmp_path / "o"), "--dataset", "lavdf"]) == 2


def test_limit_is_a_stratified_seeded_sample(tmp_path, capsys):
    meta = {f"r{i:02d}.mp4": {"label": "REAL", "split": "train"} for i in range(10)}
    meta.update({f"f{i:02d}.mp4": {"label": "FAKE", "split": "train", "original": "r00.mp4"} for i in range(30)})
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    labels = lambda jobs: sorted(j.label for j in jobs)  # noqa: E731
    eight, _ = list_jobs(tmp_path, "dfdc", limit=8, seed=1)
    assert labels(eight) == [0, 0] + [1] * 6
    assert "--limit 8: a stratified sample (seed 1) of the 40 videos: 2 REAL, 6 FAKE" in capsys.readouterr().out
    assert [j.video_id for j in list_jobs(tmp_path, "dfdc", limit=8, seed=1)[0]] == [j.video_id for j in eight]
    four, _ = list_jobs(tmp_path, "dfdc", limit=4, seed=1)
    assert labels(four) == [0, 1, 1, 1] and {j.video_id for j in four} <= {j.video_id for j in eight}
    other, _ = list_jobs(tmp_path, "dfdc", limit=8, seed=2)
    assert {j.video_id for j in other} != {j.video_id for j in eight}
    assert labels(list_jobs(tmp_path, "dfdc", limit=5, seed=1)[0]) == [0, 1, 1, 1, 1]  # 1.25 / 3.75 -> 1 / 4
    items = [("a", -1), ("b", -1), ("c", 0), ("d", 0), ("e", 1), ("f", 1)]
    got = stratified_sample(items, 3, 0, label=lambda x: x[1], key=lambda x: x[0])
    assert sorted(x[1] for x in got) == [-1, 0, 1]


# ------------------------------------------------------------------ end to end
def test_ingest_fakeavceleb(fav, tmp_path):
    out = tmp_path / "out"
    assert _ingest(fav, out, "--dataset", "fakeavceleb") == 0
    assert _csv(out / "failures.csv") == [
        {"file": "FakeVideo-RealAudio/Asian (East)/women/id00166/00021_gone.mp4", "reason": "file not found"}]
    meta = _pick(_csv(out / "metadata.csv"), "label", "group", "split", "fake_type", "audio_fake", "video_fake", "gender")
    assert meta == {
        "FakeVideo-FakeAudio/African/men/id00076/00109_10_id00166_wavtolip":
            ("1", "id00076", "train", "faceswap-wav2lip", "1", "1", "men"),
        "RealVideo-FakeAudio/Asian (East)/women/id00166/00021_fake": ("1", "id00166", "train", "rtvc", "1", "0", "women"),
        "RealVideo-RealAudio/African/men/id00076/00109": ("0", "id00076", "train", "real", "0", "0", "men")}
    rows = read_index(out / "index.csv")
    assert sorted(r.path for r in rows) == ["FakeVideo-FakeAudio__African__men__id00076__00109_10_id00166_wavtolip.npz",
                                            "RealVideo-FakeAudio__Asian_East___women__id00166__00021_fake.npz",
                                            "RealVideo-RealAudio__African__men__id00076__00109.npz"]
    for r in rows:
        rec = load_record(out / r.path, warn=False)
        assert (rec.label, rec.group, rec.frame_label) == (r.label, r.group, None)


def test_ingest_lavdf(lavdf, tmp_path):
    out = tmp_path / "out"
    assert _ingest(lavdf, out, "--dataset", "lavdf") == 0
    idx = {r.video_id: (r.label, r.split, r.group) for r in read_index(out / "index.csv")}
    assert idx == {"train/000001": (0, "train", "train/000001"), "train/000002": (1, "train", "train/000001"),
                   "dev/000003": (1, "dev", "dev/000004"), "dev/000004": (0, "dev", "dev/000004"),
                   "test/000005": (0, "test", "test/000005")}
    assert _frames(out / "train__000002.npz") == list(range(6, 15))  # [0.2, 0.5) s: frames 6-14 at 30 fps
    assert _frames(out / "dev__000003.npz") == list(range(18, 24))  # [0.6, 0.8) s
    assert _frames(out / "train__000001.npz") is None
    assert load_record(out / "train__000002.npz", warn=False).label == 1
    meta = _pick(_csv(out / "metadata.csv"), "segment_modality", "source_path", "audio_fake", "video_fake")
    assert meta["train/000002"] == ("both", "train/000002.mp4", "1", "1")
    assert meta["dev/000003"] == ("audio", "dev/000003.mp4", "1", "0")


def test_ingest_av1m_then_unlabelled_on_request(av1m, tmp_path, capsys):
    out = tmp_path / "out"
    assert _ingest(av1m, out, "--dataset", "av1m") == 0
    assert "5 done, 0 skipped, 0 failed" in capsys.readouterr().out
    idx = {r.video_id: (r.path, r.label, r.split, r.group) for r in read_index(out / "index.csv")}
    assert idx == {
        "id00012/abc/00001/real": ("id00012__abc__00001__real.npz", 0, "train", "id00012"),
        "id00012/abc/00001/fake_video_fake_audio": ("id00012__abc__00001__fake_video_fake_audio.npz", 1, "train",
                                                    "id00012"),
        "id00020/xyz/00002/real": ("id00020__xyz__00002__real.npz", 0, "train", "id00020"),
        "id00030/qqq/00003/real": ("id00030__qqq__00003__real.npz", 0, "val", "id00030"),
        "id00030/qqq/00003/fake_video_real_audio": ("id00030__qqq__00003__fake_video_real_audio.npz", 1, "val",
                                                    "id00030")}
    assert _frames(out / "id00012__abc__00001__fake_video_fake_audio.npz") == list(range(6, 12)) + list(range(18, 24))
    assert _frames(out / "id00030__qqq__00003__fake_video_real_audio.npz") == list(range(6, 15))
    meta = _pick(_csv(out / "metadata.csv"), "segment_modality", "fake_type", "audio_model")
    assert meta["id00012/abc/00001/fake_video_fake_audio"] == ("audio;video", "both_modified", "yourtts")

    assert _ingest(av1m, out, "--dataset", "av1m", "--unlabeled") == 0  # resumes: only the test file is new
    assert "1 done, 5 skipped, 0 failed" in capsys.readouterr().out
    row = {r.video_id: r for r in read_index(out / "index.csv")}["000001"]
    assert (row.path, row.label, row.split, row.group) == ("000001.npz", -1, "unlabeled", "000001")
    rec = load_record(out / "000001.npz", warn=False)
    assert rec.label == -1 and rec.frame_label is None and rec.frame_labels().tolist() == [-1] * 30

    cfg = Config.load(None, [f"data.root={out}"])
    logs: list[str] = []
    data = load_dataset(cfg, log=logs.append)  # the K-fold pool and test never hold the unlabelled clip
    assert sorted(r.video_id for r in data.rows) == sorted(set(idx)) and data.test_rows == []
    assert logs == [f"{out}: 1 unlabelled video(s) (label -1 or split=unlabeled) left out of the folds and the test"]
    with pytest.raises(ValueError, match=r"1 unlabelled video\(s\) \(label -1\) cannot be split into folds"):
        make_folds(data.rows + [IndexRow("000001.npz", "000001", -1, "000001", 1.0, 30, "unlabeled")], cfg)


def test_ingest_dfdc(dfdc, tmp_path):
    out = tmp_path / "out"
    assert _ingest(dfdc, out, "--dataset", "dfdc") == 0
    idx = {r.video_id: (r.path, r.label, r.split, r.group) for r in read_index(out / "index.csv")}
    assert idx == {"dfdc_train_part_0/aaa": ("dfdc_train_part_0__aaa.npz", 0, "train", "aaa"),
                   "dfdc_train_part_0/bbb": ("dfdc_train_part_0__bbb.npz", 1, "train", "aaa"),
                   "dfdc_train_part_1/ccc": ("dfdc_train_part_1__ccc.npz", 1, "train", "ddd"),
                   "dfdc_train_part_1/ddd": ("dfdc_train_part_1__ddd.npz", 0, "train", "ddd")}
    for path, label, _, group in idx.values():
        rec = load_record(out / path, warn=False)
        assert (rec.label, rec.group, rec.frame_label) == (label, group, None)
    meta = _pick(_csv(out / "metadata.csv"), "fake_type", "audio_fake", "video_fake", "source_path")
    assert meta["dfdc_train_part_0/bbb"] == ("FAKE", "0", "1", "dfdc_train_part_0/bbb.mp4")
    assert meta["dfdc_train_part_1/ddd"] == ("real", "0", "0", "dfdc_train_part_1/ddd.mp4")
