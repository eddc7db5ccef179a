"""The fast path against the naive reference path: same predictions; `workbench bench` smoke test."""
from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.bench.common import make_long_record, write_original_npz
from workbench.bench.measure import make_checkpoint
from workbench.bench.naive import naive_forward, naive_predict
from workbench.cli import main as cli_main
from workbench.core.config import Config
from workbench.data.dataset import clip_from_record, collate, load_for_model
from workbench.data.records import load_record, save_record
from workbench.data.storage import StoredFrames
from workbench.model.losses import build_objective
from workbench.model.mmmsba import MMMSBA
from workbench.synthetic.toydata import toy_record
from workbench.training.predict import predict_files

TINY = ["data.face_size=32", "data.lip_size=16", "model.face_channels=[8,16,32]", "model.lip_channels=[8,16,16]",
        "model.gru_hidden=16", "model.dense=16", "data.max_frames=16"]


def _batch(lengths: list[int]) -> dict:
    rng = np.random.default_rng(0)
    items = []
    for i, n in enumerate(lengths):
        it = clip_from_record(toy_record(f"v{i}", i % 2, n, face=32, lip=16, rng=rng), np.arange(n))
        it["index"] = torch.tensor(i)
        items.append(it)
    return collate(items)


@pytest.mark.parametrize("lengths", [[16, 16, 16], [16, 9, 13]])  # no padding / padding (packed GRUs)
def test_fast_and_naive_training_step_agree(lengths):
    cfg = Config.load(None, TINY)
    torch.manual_seed(0)
    fast = MMMSBA(cfg.model).train().to(memory_format=torch.channels_last)
    naive = copy.deepcopy(fast).use_fast_kernels(False).to(memory_format=torch.contiguous_format)
    batch = _batch(lengths)
    float_batch = {**batch, "face": batch["face"].float() / 255.0, "lip": batch["lip"].float() / 255.0}
    objective = build_objective(cfg.loss, [1, 1])
    outs = []
    for model, fwd, b in ((fast, lambda m, x: m(x), batch), (naive, naive_forward, float_batch)):
        out = fwd(model, b)
        objective(out["frame_logits"], out["video_logits"], b["label"], b["mask"])["loss"].backward()
        outs.append(out)
    m = batch["mask"]
    torch.testing.assert_close(outs[0]["frame_logits"][m], outs[1]["frame_logits"][m], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(outs[0]["video_logits"], outs[1]["video_logits"], atol=1e-4, rtol=1e-4)
    for (name, p), q in zip(fast.named_parameters(), naive.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-3, msg=lambda s: f"{name}: {s}")
    for a, b in zip(fast.buffers(), naive.buffers()):  # BatchNorm running statistics
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_fast_and_naive_long_video_predictions_agree(tmp_path, monkeypatch):
    import workbench.model.mmmsba
    monkeypatch.setattr(workbench.model.mmmsba, "ATTENTION_BLOCK", 64)  # blocked attention on a short video
    cfg = Config.load(None, TINY + ["train.amp=false"])  # the kernels compared in fp32 (bf16 autocast differs ~1e-3)
    rec = make_long_record(300, 32, 16, seed=0)
    save_record(tmp_path / "long.npz", rec)
    write_original_npz(tmp_path / "long_float32.npz", rec)
    ckpt = make_checkpoint(tmp_path / "m.pth", cfg, seed=0)
    lazy = load_for_model(tmp_path / "long.npz", cfg, lazy=True)
    assert isinstance(lazy.frames, StoredFrames) and isinstance(lazy.lip, StoredFrames)
    predict_files([ckpt], [tmp_path / "long.npz"], tmp_path / "fast", chunk=48, device="cpu", progress=False)
    fast = pd.read_csv(tmp_path / "fast" / "long_pfake.csv")
    naive = naive_predict(ckpt, tmp_path / "long_float32.npz", tmp_path / "naive.csv", chunk=48)
    assert len(fast) == len(naive) == 300
    np.testing.assert_allclose(fast["p_fake"], naive["p_fake"], atol=1e-5)
    np.testing.assert_allclose(fast["timestamp"], naive["timestamp"])


@pytest.mark.parametrize("storage", ["raw", "lossless", "png", "jpeg"])
def test_stored_frames_read_like_arrays(tmp_path, storage):
    rec = toy_record("v", 1, 40, face=32, lip=16, rng=np.random.default_rng(0))
    save_record(tmp_path / "a.npz", rec, storage=storage)
    save_record(tmp_path / "c.npz", rec, storage="raw", compress=True)
    lazy, full = load_record(tmp_path / "a.npz", lazy=True), load_record(tmp_path / "a.npz")
    assert isinstance(lazy.frames, StoredFrames) and lazy.frames.shape == full.frames.shape
    if storage != "jpeg":  # lossless layouts give back the very crops
        np.testing.assert_array_equal(full.frames, rec.frames)
        np.testing.assert_array_equal(full.lip, rec.lip)
    for key in (3, -1, slice(2, 9), slice(1, 30, 3), np.array([0, 1, 2, 10, 11, 5, 39]), np.arange(40) > 30):
        np.testing.assert_array_equal(lazy.frames[key], full.frames[key])
        np.testing.assert_array_equal(lazy.lip[key], full.lip[key])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy.frames))[5:7], full.frames[5:7])
    for k in ("audio", "timestamps", "face_found", "label", "video_id", "group", "fps", "duration"):
        np.testing.assert_array_equal(getattr(lazy, k), getattr(full, k))
    assert isinstance(load_record(tmp_path / "c.npz", lazy=True).frames, np.ndarray)  # deflated: loaded fully


def test_bench_command_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--parts", "train,infer", "--batch", "2", "--frames", "8", "--face-size", "32", "--lip-size", "16",
            "--video-frames", "12", "--repeats", "2", "--warmup", "1", "--long-frames", "120", "--chunk", "32",
            "--in-process", "--quiet", "--json", str(out), "--profile-repeats", "1", "--clip-seconds", "2"] \
        + sum((["--set", s] for s in TINY[2:6]), [])
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "training" in printed and "naive" in printed and "targets" in printed
    res = json.loads(out.read_text())
    assert res["device"]["type"] in ("cpu", "cuda") and res["settings"]["batch"] == 2
    tr = res["train"]
    for path in ("fast", "naive"):
        r = tr[path]
        assert r["step_s"]["n"] == 2 and r["step_s"]["median"] > 0 and r["step_s"]["min"] <= r["step_s"]["max"]
        for k in ("clips_per_s", "frames_per_s", "gflops", "eval_clips_per_s", "protocol_hours"):
            assert r[k] > 0, (path, k)
        assert r["gemm_peak"]["gflops"] > 0
    assert tr["flops_per_step"] > tr["flops_per_eval_step"] > 0 and tr["ratio"]["clips_per_s"] > 0
    if res["device"]["type"] == "cpu":  # the step taken apart, both paths, and the instruction sets it ran on
        assert "taken apart" in printed and "instruction sets" in printed
        for path in ("fast", "naive"):
            prof = tr[path]["profile"]
            assert prof["audio_steps"] == 1 + 2 * 16000 // 512 and len(prof["pieces"]) == 7 and prof["step"][0] > 0
        assert min(v[0] for v in tr["fast"]["data_s"].values()) > 0
    inf = res["infer"]
    for path in ("fast", "naive"):
        assert inf[path]["seconds"]["median"] > 0 and inf[path]["peak_mb"]["median"] >= 0
    tol = 1e-4 if res["device"]["amp_dtype"] is None else 5e-3  # the fast path runs in bf16 where the CPU has it
    assert inf["ratio"]["speed"] > 0 and inf["max_abs_diff_p_fake"] < tol
    assert res["gemm_peak"]["gflops"] > 0 and res["wall_s"] > 0 and isinstance(res["targets"], list)


@pytest.mark.slow
def test_bench_ingest_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--parts", "ingest", "--ingest-size", "320x240", "--ingest-seconds", "1", "--ingest-clips", "2",
            "--ingest-workers", "2", "--face-size", "32", "--lip-size", "16", "--quiet", "--json", str(out)]
    assert cli_main(argv) == 0
    assert "steady state" in capsys.readouterr().out
    ing = json.loads(out.read_text())["ingest"]
    assert ing["failures"] == [] and ing["all_workers"]["workers"] == 2
    for k in ("one_worker", "all_workers"):
        assert ing[k]["video_s_per_s"]["median"] > 0 and ing[k]["steady_video_s_per_s"]["n"] == 1
    assert {t["name"].split(",")[0] for t in json.loads(out.read_text())["targets"]} == {"ingest"}
