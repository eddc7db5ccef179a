"""Modality attribution: the attention hook, the local-attention share, replacements, and naming the faked modality."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.analysis import attribution as at
from workbench.core.config import Config
from workbench.data.dataset import ClipDataset, collate
from workbench.data.records import load_record
from workbench.model.mmmsba import MMMSBA
from workbench.synthetic.toydata import make_toy_dataset, toy_record
from workbench.training.kfold import load_dataset
from workbench.training.trainer import Trainer

TINY = ["data.face_size=32", "data.lip_size=16", "model.face_channels=[8,16,32]", "model.lip_channels=[8,16,16]",
        "model.gru_hidden=16", "model.dense=16", "data.max_frames=16", "train.progress=false", "train.lr=0.003",
        "train.amp=false", "train.patience=0"]


def _model(seed: int = 0) -> MMMSBA:
    torch.manual_seed(seed)
    return MMMSBA(Config.load(None, TINY).model).eval()


def test_attention_hook_sees_every_map_and_changes_nothing():
    rng = np.random.default_rng(0)
    rec = toy_record("v", 1, 20, rng=rng)
    ds_item = {"face": torch.from_numpy(rec.frames), "lip": torch.from_numpy(rec.lip),
               "audio": torch.from_numpy(rec.audio), "audio_idx": torch.from_numpy(np.arange(20) * 0),
               "timestamps": torch.zeros(20), "frame_idx": torch.arange(20), "face_found": torch.ones(20, dtype=torch.bool),
               "frame_label": torch.zeros(20, dtype=torch.long), "label": torch.tensor(1), "index": torch.tensor(0)}
    batch = collate([ds_item])
    model = _model()
    model.attention_block = 8  # blocks of 8 query rows: 8 + 8 + 4
    plain = model(batch)["frame_logits"]
    seen: dict[str, list] = {}
    model.attention_hook = lambda name, first, w: seen.setdefault(name, []).append((first, w.clone()))
    hooked = model(batch)["frame_logits"]
    torch.testing.assert_close(hooked, plain)
    assert set(seen) == set(at.DIRECTIONS) and len(at.DIRECTIONS) == 6
    for name, blocks in seen.items():
        assert [f for f, _ in blocks] == [0, 8, 16]
        w = torch.cat([b for _, b in blocks], dim=1)  # (1, 20, 20)
        assert w.shape == (1, 20, 20)
        torch.testing.assert_close(w.sum(-1), torch.ones(1, 20))  # softmax rows


def test_local_share_by_hand():
    t = np.arange(10) / 10  # 10 fps
    share = at._LocalShare(t, window=0.15, device=torch.device("cpu"))
    share("face->lip", 0, torch.full((1, 10, 10), 0.1))  # uniform attention over 10 frames
    # within +-0.15 s: 3 frames for the 8 inner queries, 2 at both ends -> (8 * 0.3 + 2 * 0.2) / 10
    assert share.total["face->lip"] / 10 == pytest.approx(0.28)
    local = at._LocalShare(t, window=0.15, device=torch.device("cpu"))
    local("face->lip", 0, torch.eye(10)[None])  # every frame attends to itself only
    assert local.total["face->lip"] / 10 == pytest.approx(1.0)


def test_training_means_and_donor_choice():
    rng = np.random.default_rng(1)
    recs = [toy_record(f"r{i}", 0, 10 + i, face=32, lip=16, rng=rng) for i in range(3)]
    m = at.training_means([at.record_sums(r) for r in recs], face_size=16, lip_size=16)
    frames = np.concatenate([r.frames for r in recs]).astype(np.float64)
    expected = np.clip(np.rint(frames.mean(0)), 0, 255).astype(np.uint8)
    assert m["face"].shape == (16, 16, 3) and m["lip"].shape == (16, 16, 3)
    np.testing.assert_allclose(m["face"].astype(float), expected.reshape(16, 2, 16, 2, 3).mean((1, 3)), atol=1)
    np.testing.assert_allclose(m["audio"], np.concatenate([r.audio for r in recs]).mean(0), rtol=1e-5)
    table = pd.DataFrame({"video_id": ["a", "b", "c", "d", "e"], "label": [1, 0, 0, 0, 1],
                          "group": ["g1", "g1", "g2", "g3", "g2"], "split": ["train", "train", "train", "test", "test"]})
    for vid in ("a", "e"):
        donor = at.pick_donor(table, vid)
        assert donor in {"b", "c"} - {"c" if vid == "e" else ""} and donor == at.pick_donor(table, vid)
    assert at.pick_donor(table, "a") == "c"  # REAL, another identity, in the pool
    assert at.pick_donor(table.assign(label=1), "a") is None


def test_ablation_replaces_each_modality():
    rng = np.random.default_rng(2)
    rec, donor = toy_record("v", 1, 25, rng=rng), toy_record("d", 0, 12, rng=rng)
    m = at.training_means([at.record_sums(rec)], 32, 16)
    p, local = at.ablate(_model(), rec, means=m, donor=donor)
    assert set(p) == {"full"} | {f"{mod}_{rep}" for mod in at.MODALITIES for rep in at.REPLACEMENTS}
    assert all(v.shape == (25,) for v in p.values())
    assert len({round(float(v.sum()), 6) for v in p.values()}) == len(p)  # each replacement changes the output
    assert set(local) == {f"attn_local_{d.replace('->', '_')}" for d in at.DIRECTIONS}
    frames, row = at.attribute_video([_model(), _model(1)], rec, means=m, donor=donor)
    assert row["drive_audio_donor"] == pytest.approx(float((frames["p_fake"] - frames["p_fake_without_audio_donor"]).mean()))
    assert row["blames_donor"] == max(at.MODALITIES, key=lambda mod: row[f"drive_{mod}_donor"])
    with pytest.raises(ValueError, match="training means"):
        at.attribute_video([_model()], rec, means=[m, m], donor=None)


@pytest.mark.slow
def test_attribution_names_the_manipulated_modality(tmp_path):
    """A tiny model trained on fakes that carry one cue only (audio tilt or face seam): on unseen fakes, the
    modality whose removal lowers P(Fake) most is the manipulated one far above chance (1/3)."""
    toy = make_toy_dataset(tmp_path / "toy", n_real=12, n_fake=16, n_groups=6, fake_types=("audio", "face"), seed=2)
    cfg = Config.load(None, TINY + [f"data.root={toy}", f"out={tmp_path}", "train.epochs=8"])
    rows = load_dataset(cfg).rows
    trainer = Trainer(cfg, ClipDataset(rows, toy, cfg, train=True), None, tmp_path / "fit")
    trainer.fit()
    model = trainer.model.eval()
    means = at.training_means([at.record_sums(load_record(toy / r.path)) for r in rows], 32, 16)
    rng = np.random.default_rng(99)  # unseen videos: another seed, another identity
    donor = toy_record("donor", 0, 40, group="idX", rng=rng)
    hits = {"mean": 0, "donor": 0}
    for i in range(10):
        kind = ("audio", "face")[i % 2]
        _, row = at.attribute_video([model], toy_record(f"h{i}", 1, 36, group="idY", rng=rng, fake_type=kind),
                                    means=means, donor=donor)
        for rep in hits:
            hits[rep] += row[f"blames_{rep}"] == kind
    print("attribution hits of 10:", hits)
    assert hits["donor"] >= 8, hits  # chance: about 3 of 10
    assert hits["mean"] >= 7, hits


def test_study_attribution_merges_conditions_and_counts_blame(tmp_path, monkeypatch):
    """The loop over a study's conditions (notebook 06), with attribute_condition stood in for."""
    for cond in ("baseline", "balanced"):
        (tmp_path / cond).mkdir()
        (tmp_path / cond / "kfold_results.json").write_text("{}")
    table = pd.DataFrame({"video_id": ["r", "p", "x"], "label": [0, 1, 0], "split": ["test", "test", "train"],
                          "fake_type": ["real", "partial_audio", "real"]})
    calls = []

    def fake_condition(cond_dir, data_dir, videos, table, *, replacements, device, window, cache):
        calls.append((cond_dir.name, list(videos), cache))
        blamed = "audio" if cond_dir.name == "baseline" else "face"
        rows = pd.DataFrame({"video_id": videos, "label": [0, 1], "p_fake": [0.2, 0.7],
                             "blames_mean": [blamed, "lip"], "blames_donor": ["lip", "lip"]})
        frames = {v: pd.DataFrame({"label": lab, "frame_label": fl}) for v, lab, fl in
                  (("r", 0, [0, 0]), ("p", 1, [0, 1]))}
        return rows, frames

    monkeypatch.setattr(at, "attribute_condition", fake_condition)
    res = at.study_attribution(tmp_path, tmp_path, table, ["baseline", "nope", "balanced"], replacements=["mean"])
    assert res.conditions == ["baseline", "balanced"]  # the finished ones, in the order asked
    assert [c[:2] for c in calls] == [("baseline", ["r", "p"]), ("balanced", ["r", "p"])]  # default: the test videos
    assert calls[0][2] is calls[1][2]  # one cache of record sums for every condition
    assert list(res.table.columns[:2]) == ["condition", "video_id"] and res.table["fake_type"].tolist() == [
        "real", "partial_audio"] * 2
    assert res.real()["video_id"].tolist() == ["r", "r"]
    blame = res.blame()["mean"]
    assert list(res.blame()) == ["mean"] and blame.loc["baseline", "audio"] == 1 and blame.loc["baseline", "face"] == 0
    assert res.example() == ("baseline", "p")  # the partial fake
    assert at.study_attribution(tmp_path, tmp_path, table, ["nope"]).example() is None
