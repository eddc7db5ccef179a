"""Core: config, records (both layouts, bad files), dataset, model invariances, training, K-fold, resume."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_cfg

from workbench.core.config import Config
from workbench.data.dataset import ClipDataset, collate, sample_indices
from workbench.data.records import load_record, read_index, scan_folder
from workbench.data.splits import inner_split, make_folds
from workbench.data.storage import BadRecordError
from workbench.model.mmmsba import MMMSBA
from workbench.synthetic.toydata import make_toy_dataset, toy_record
from workbench.training.engine import run_kfold
from workbench.training.kfold import load_dataset
from workbench.training.predict import frame_logits, predict_files
from workbench.training.trainer import Trainer, load_model


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=12, n_fake=20, n_test_long=1, long_frames=120)


# ------------------------------------------------------------------ config
def test_config_roundtrip_and_overrides(tmp_path):
    cfg = Config.load(None, ["train.epochs=3", "loss.class_weights=[3.0, 1.0]", "model.attention=self"])
    assert cfg.train.epochs == 3 and cfg.loss.class_weights == [3.0, 1.0] and cfg.model.attention == "self"
    p = cfg.save(tmp_path / "c.yaml")
    assert Config.load(p) == cfg
    ref = Config()
    assert (ref.train.lr, ref.train.batch_size, ref.data.max_frames, ref.model.gru_hidden) == (5e-4, 8, 50, 300)
    with pytest.raises(KeyError, match="unknown config field 'train.epoch'"):
        Config.load(None, ["train.epoch=3"])
    with pytest.raises(TypeError):
        Config.load(None, ["train.epochs=abc"])


def test_reference_model_size():
    n = MMMSBA(Config().model).n_params()
    assert 3.0e6 < n < 3.1e6  # "about 3.04 M parameters"


# ------------------------------------------------------------------ records
def test_original_layout_is_read(tmp_path):
    T = 6
    np.savez_compressed(tmp_path / "orig.npz", frames=np.random.rand(T, 32, 32, 3).astype(np.float32),
                        lip=np.random.rand(T, 16, 16, 3).astype(np.float32), audio=np.random.randn(20, 40).astype(np.float32),
                        timestamps=np.arange(T) / 10.0, label=np.int64(1), video_id="v1",
                        arcface=np.zeros((T, 512), np.float32), geometry=np.zeros((T, 10)),
                        phoneme_labels=np.array(["a", "b"], dtype=object))
    with pytest.warns(UserWarning, match="missing"):
        rec = load_record(tmp_path / "orig.npz")
    assert rec.frames.dtype == np.uint8 and rec.frames.shape == (T, 32, 32, 3)
    assert rec.label == 1 and rec.video_id == "v1" and rec.group == "v1"
    assert rec.fps == pytest.approx(10.0) and rec.face_found.all()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = scan_folder(tmp_path)  # no index: indexed on the fly
    assert [r.video_id for r in res.rows] == ["v1"] and not res.failures


@pytest.mark.parametrize("case,reason", [
    ("missing_key", "missing keys"), ("nan", "NaN"), ("zero", "zero frames"),
    ("shape", r"expected \(T, H, W, 3\)"), ("garbage", "unreadable"), ("label", r"expected 0 \(REAL\) or 1 \(FAKE\)"),
])
def test_bad_files_are_reported_with_reason(tmp_path, case, reason):
    good = dict(frames=np.zeros((4, 8, 8, 3), np.uint8), lip=np.zeros((4, 4, 4, 3), np.uint8),
                audio=np.zeros((5, 40), np.float32), label=np.int64(0))
    p = tmp_path / f"{case}.npz"
    if case == "garbage":
        p.write_bytes(b"this is not an npz")
    else:
        d = dict(good)
        if case == "missing_key":
            d.pop("lip")
        elif case == "nan":
            d["audio"] = np.full((5, 40), np.nan, np.float32)
        elif case == "zero":
            d["frames"], d["lip"] = np.zeros((0, 8, 8, 3), np.uint8), np.zeros((0, 4, 4, 3), np.uint8)
        elif case == "shape":
            d["frames"] = np.zeros((4, 8, 8), np.uint8)
        elif case == "label":
            d["label"] = np.int64(7)
        np.savez(p, **d)
    with pytest.raises(BadRecordError, match=reason) as e:
        load_record(p)
    assert e.value.path.endswith(f"{case}.npz")


def test_scan_lists_every_bad_file_and_training_refuses_them(tmp_path, toy):
    import shutil
    d = tmp_path / "ds"
    shutil.copytree(toy, d)
    (d / "real_000.npz").write_bytes(b"broken")
    (d / "fake_012.npz").write_bytes(b"broken too")
    res = scan_folder(d, validate=True)
    assert sorted(f for f, _ in res.failures) == ["fake_012.npz", "real_000.npz"]
    cfg = tiny_cfg(d, tmp_path / "out")
    with pytest.raises(ValueError, match="2 bad file"):
        load_dataset(cfg)
    cfg.data.skip_bad = True
    assert len(load_dataset(cfg).rows) == 30


def test_frame_labels_roundtrip_and_are_checked(tmp_path):
    from workbench.data.records import save_record
    rec = toy_record("p", 1, 10, face=8, lip=4, rng=np.random.default_rng(0))
    assert rec.frame_labels().tolist() == [1] * 10  # no frame labels: the video label on every frame
    rec.frame_label = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0], np.int8)
    save_record(tmp_path / "p.npz", rec)
    back = load_record(tmp_path / "p.npz")
    assert back.frame_labels().tolist() == rec.frame_label.tolist()
    item = __import__("workbench.data.dataset", fromlist=["clip_from_record"]).clip_from_record(back, np.array([1, 2, 9]))
    assert item["frame_label"].tolist() == [0, 1, 0]
    for bad, reason in ((np.zeros(10, np.int8), "marks no frame"), (np.ones(9, np.int8), "shape"),
                        (np.full(10, 2, np.int8), "must hold 0")):
        rec.frame_label = bad
        save_record(tmp_path / "bad.npz", rec)
        with pytest.raises(BadRecordError, match=reason):
            load_record(tmp_path / "bad.npz")
    real = toy_record("r", 0, 4, face=8, lip=4, rng=np.random.default_rng(0))
    real.frame_label = np.array([0, 1, 0, 0], np.int8)
    save_record(tmp_path / "r.npz", real)
    with pytest.raises(BadRecordError, match=r"'label' is 0 \(REAL\)"):
        load_record(tmp_path / "r.npz")


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index.csv and no .npz"):
        scan_folder(tmp_path)


# ------------------------------------------------------------------ sampling and batching
def test_sampling_rules():
    cfg = Config.load(None, ["data.max_frames=10"])
    idx = sample_indices(100, 30.0, cfg, train=False, rng=None)
    assert len(idx) == 10 and idx[0] < 10 and idx[-1] > 90 and np.all(np.diff(idx) > 0)
    rng = np.random.default_rng(0)
    tr = sample_indices(100, 30.0, cfg, train=True, rng=rng)
    assert len(tr) == 10 and np.all(np.diff(tr) > 0)
    assert len(sample_indices(6, 30.0, cfg, train=True, rng=rng)) == 6
    cfg.data.sampling, cfg.data.sample_fps = "fps", 10.0
    w = sample_indices(100, 30.0, cfg, train=False, rng=None)
    assert len(w) == 10 and set(np.diff(w)) == {3}


def test_audio_event_reaches_the_frame_that_shows_it():
    """An audio event at 1.30 s in a 3 s clip at 10 fps: MFCC step m is centred at m * 32 ms (hop 512 at 16 kHz), so
    the step nearest the event is m = 41 (1.312 s; m = 40 is at 1.280 s). The clip's frame at t = 1.3 s must point
    at it, whatever frames the clip keeps (here every third, from frame 1), and no other kept frame may."""
    from workbench.data.dataset import clip_from_record
    rec = toy_record("click", 0, 30, face=8, lip=4, fps=10.0, rng=np.random.default_rng(0))
    rec.audio = np.zeros((int(3.0 * rec.audio_rate) + 2, 40), np.float32)
    rec.audio[41] = 100.0
    idx = np.arange(1, 30, 3)  # frames 1, 4, ..., 13 (t = 1.3 s), ..., 28
    item = clip_from_record(rec, idx)
    k = int(np.flatnonzero(idx == 13)[0])
    assert item["timestamps"][k].item() == pytest.approx(1.3)
    heard = item["audio"][item["audio_idx"]][:, 0].numpy()  # the MFCC step each kept frame is aligned to
    assert heard[k] == 100.0 and np.count_nonzero(heard) == 1


def test_padded_batch_equals_alone():
    torch.manual_seed(0)
    cfg = Config.load(None, TINY)
    model = MMMSBA(cfg.model).eval()
    rng = np.random.default_rng(0)
    from workbench.data.dataset import clip_from_record
    recs = [toy_record(f"v{i}", i % 2, n, face=32, lip=16, rng=rng) for i, n in enumerate([9, 17, 5])]
    items = []
    for i, r in enumerate(recs):
        it = clip_from_record(r, np.arange(r.n_frames))
        it["index"] = torch.tensor(i)
        items.append(it)
    with torch.no_grad():
        batched = model(collate(items))
        for b, it in enumerate(items):
            alone = model(collate([it]))
            T = it["face"].shape[0]
            assert torch.allclose(batched["frame_logits"][b, :T], alone["frame_logits"][0], atol=1e-5)
            assert torch.allclose(batched["video_logits"][b], alone["video_logits"][0], atol=1e-5)


def test_chunked_inference_equals_one_pass():
    torch.manual_seed(0)
    cfg = Config.load(None, TINY)
    model = MMMSBA(cfg.model).eval()
    rec = toy_record("long", 0, 50, face=32, lip=16, rng=np.random.default_rng(1))
    from workbench.data.dataset import clip_from_record
    it = clip_from_record(rec, np.arange(rec.n_frames))
    it["index"] = torch.tensor(0)
    with torch.no_grad():
        one = model(collate([it]))["frame_logits"][0].numpy()
    for chunk in (7, 16, 64):
        chunked = frame_logits(model, rec, np.arange(rec.n_frames), chunk=chunk, device=torch.device("cpu"), dtype=None)[0]
        np.testing.assert_allclose(chunked, one, atol=1e-5)


def test_mc_dropout_is_seeded_and_restores_the_model():
    from workbench.training.predict import predict_record
    torch.manual_seed(0)
    cfg = Config.load(None, TINY + ["model.dropout=0.3"])
    model = MMMSBA(cfg.model).eval()
    rec = toy_record("v", 0, 40, face=32, lip=16, rng=np.random.default_rng(2))
    plain = predict_record([model], rec)
    assert "p_fake_std" not in predict_record([model], rec, mc_samples=4)  # rate 0 (no dropout): no MC samples
    a, b = predict_record([model], rec, mc_samples=4, mc_p=0.3), predict_record([model], rec, mc_samples=4, mc_p=0.3)
    np.testing.assert_array_equal(a["p_fake"], b["p_fake"])  # same masks for the same seed
    assert (a["p_fake_std"] > 0).all() and "p_fake_std" not in plain
    assert not model.training and {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    np.testing.assert_allclose(predict_record([model], rec)["p_fake"], plain["p_fake"])


@pytest.mark.parametrize("attention", ["bi_modal", "self", "none"])
@pytest.mark.parametrize("on", ["video", "frame", "both"])
def test_model_smoke(attention, on):
    cfg = Config.load(None, TINY + [f"model.attention={attention}", f"loss.on={on}"])
    model = MMMSBA(cfg.model)
    rng = np.random.default_rng(0)
    from workbench.data.dataset import clip_from_record
    from workbench.model.losses import build_objective
    items = []
    for i in range(2):
        r = toy_record(f"v{i}", i, 8 + 4 * i, face=32, lip=16, rng=rng)
        it = clip_from_record(r, np.arange(r.n_frames))
        it["index"] = torch.tensor(i)
        items.append(it)
    batch = collate(items)
    out = model(batch)
    assert out["frame_logits"].shape == (2, 12, 2) and out["video_logits"].shape == (2, 2)
    loss = build_objective(cfg.loss, [1, 1])(out["frame_logits"], out["video_logits"], batch["label"], batch["mask"])["loss"]
    loss.backward()
    assert torch.isfinite(loss) and model.classifier.weight.grad is not None


# ------------------------------------------------------------------ training and K-fold
def test_model_learns_tiny_dataset(toy, tmp_path):
    """Trained on 22 clips, scored on 10 clips it never saw (a held-out stratified share), not on its training rows."""
    from sklearn.model_selection import train_test_split
    cfg = tiny_cfg(toy, tmp_path, "train.epochs=8")
    rows = load_dataset(cfg).rows
    fit_rows, unseen = train_test_split(rows, test_size=10, stratify=[r.label for r in rows], random_state=0)
    assert not {r.video_id for r in fit_rows} & {r.video_id for r in unseen}
    tr = Trainer(cfg, ClipDataset(fit_rows, toy, cfg, train=True), ClipDataset(unseen, toy, cfg, train=False),
                 tmp_path / "fit")
    fit = tr.fit()
    h = fit.history
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0] - 0.1
    assert fit.best_metrics["val_acc"] >= 0.8 and fit.best_metrics["val_roc_auc"] >= 0.9
    assert (tmp_path / "fit" / "mmms-ba_best.pth").exists() and (tmp_path / "fit" / "history.csv").exists()


def test_kfold_end_to_end_and_resume(toy, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_cfg(toy, out, "train.epochs=2", "split.kfold=2", "train.weighted_sampler=true", "loss.weighted=true",
                   )
    lines: list[str] = []
    run_kfold(cfg, folds_to_run=[0], log=lines.append)  # "interrupted" after fold 0
    assert (out / "fold_0" / "done.json").exists() and not (out / "fold_1").exists()
    mtime = (out / "fold_0" / "mmms-ba_balanced_best.pth").stat().st_mtime
    lines.clear()
    res = run_kfold(cfg, log=lines.append)
    assert any("fold 0: finished earlier" in line for line in lines)
    assert (out / "fold_0" / "mmms-ba_balanced_best.pth").stat().st_mtime == mtime
    assert res["complete"] and len(res["folds"]) == 2
    saved = json.loads((out / "kfold_results.json").read_text())
    assert set(saved) >= {"folds", "mean", "std", "best_fold", "config", "test_ids", "selection_optimism", "test"}
    assert saved["test_ids"] == ["real_032_long"]  # held out of the folds
    ids = [set(f["outer_ids"]) for f in saved["folds"]]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 32
    for f in saved["folds"]:  # train, inner and outer parts are disjoint and cover the pool
        tr, inner, outer = set(f["train_ids"]), set(f["inner_ids"]), set(f["outer_ids"])
        assert inner and not tr & inner and not (tr | inner) & outer and len(tr | inner | outer) == 32
    for m in ("outer_acc", "outer_f1", "outer_roc_auc", "outer_balanced_acc", "outer_mcc", "outer_ap", "outer_eer",
              "outer_frame_acc", "outer_real_frame_acc", "outer_real_frame_pfake_mean", "val_loss", "val_acc"):
        assert m in saved["mean"]
    assert np.isclose(saved["mean"]["outer_acc"], np.mean([f["metrics"]["outer_acc"] for f in saved["folds"]]))
    assert np.isclose(saved["std"]["outer_acc"], np.std([f["metrics"]["outer_acc"] for f in saved["folds"]], ddof=1))
    import pandas as pd
    frames = pd.read_csv(out / "predictions_frames.csv")
    assert {"video_id", "label", "fold", "frame", "timestamp", "p_fake", "face_found", "frame_label"} <= set(frames.columns)
    test = pd.read_csv(out / "predictions_test_frames.csv")
    assert len(test[test["fold"].astype(str) == "ensemble"]) == 120  # every frame of the long test clip
    # a changed configuration in the same folder is refused, not silently mixed
    with pytest.raises(RuntimeError, match="different configuration"):
        run_kfold(tiny_cfg(toy, out, "train.epochs=3", "split.kfold=2"), log=lines.append)


def test_folds_grouped_and_length(toy):
    rows = read_index(toy / "index.csv")
    rows = [r for r in rows if r.split == "train"]
    cfg = Config.load(None, ["split.kind=grouped", "split.kfold=4"])
    for tr, va in make_folds(rows, cfg):
        assert not {rows[i].group for i in tr} & {rows[i].group for i in va}
    for k, (tr, va) in enumerate(make_folds(rows, cfg)):  # the inner part is grouped too
        fit, inner = inner_split(rows, tr, cfg, k)
        assert not {rows[i].group for i in fit} & {rows[i].group for i in inner}
        assert set(fit) | set(inner) == set(tr) and min(np.bincount([rows[i].label for i in inner])) >= 2
    cfg = Config.load(None, ["split.kind=length", "split.kfold=3"])
    folds = make_folds(rows, cfg)
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(len(rows)))


def test_checkpoint_mismatch_fails_loudly_and_predict_writes_csv(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path, "train.epochs=1")
    rows = load_dataset(cfg).rows
    fit = Trainer(cfg, ClipDataset(rows, toy, cfg, train=True), None, tmp_path / "f").fit()
    other = tiny_cfg(toy, tmp_path, "model.gru_hidden=32")
    with pytest.raises(ValueError, match="different model config"):
        load_model(fit.last_path, other)
    summary = predict_files([fit.last_path, fit.last_path], [toy / "real_032_long.npz"], tmp_path / "pred",
                            chunk=32, device="cpu", progress=False)
    import pandas as pd
    df = pd.read_csv(tmp_path / "pred" / "real_032_long_pfake.csv")
    assert len(df) == 120 and {"timestamp", "p_fake", "face_found", "p_fake_std"} <= set(df.columns)
    assert df["timestamp"].is_monotonic_increasing and summary["n_frames"].iloc[0] == 120


def test_cli_kfold(toy, tmp_path):
    from workbench.cli import main
    rc = main(["kfold", "--data", str(toy), "--out", str(tmp_path / "cli"), "--kfold", "2", "--epochs", "1",
               "--use-weighted-sampler", "--use-weighted-loss", "--class-weights", "2.0", "1.0", "--no-progress",
               *[a for s in TINY for a in ("--set", s)]])
    assert rc == 0
    saved = Config.load(tmp_path / "cli" / "config.yaml")
    assert saved.train.weighted_sampler and saved.loss.weighted and saved.loss.class_weights == [2.0, 1.0]
