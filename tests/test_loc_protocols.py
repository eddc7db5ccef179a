"""The localization protocols of workbench.evaluation.protocols: `av1m` against the official AV-Deepfake1M evaluator
on random cases, both protocols on small cases computed by hand (in the comments), and the CLI command."""
from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from workbench import cli
from workbench.evaluation import localization as loc
from workbench.evaluation.protocols import PROTOCOLS, _iou_f32, evaluate

WHEEL = "avdeepfake1m==0.0.4"  # the authors' package; its compiled evaluator is the reference of `av1m`
AP_KEYS, AR_KEYS = ("0.5", "0.75", "0.9", "0.95"), ("50", "30", "20", "10", "5")
N_RANDOM = 400


# ------------------------------------------------------------------ the official evaluator
@pytest.fixture(scope="session")
def official(tmp_path_factory):
    """The wheel's compiled `_evaluation` module, loaded on its own (the package imports lightning etc.)."""
    d = tmp_path_factory.mktemp("avdeepfake1m")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "1",
           "--timeout", "20", "--disable-pip-version-check", WHEEL, "-d", str(d)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download {WHEEL} timed out")
    wheels = sorted(d.glob("*.whl"))
    if r.returncode or not wheels:
        reason = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
        pytest.skip(f"cannot download a wheel of {WHEEL} for this Python: {reason}")
    with zipfile.ZipFile(wheels[0]) as z:
        names = [n for n in z.namelist() if n.startswith("avdeepfake1m/_evaluation") and n.endswith((".so", ".pyd"))]
        if not names:
            pytest.skip(f"{wheels[0].name} has no compiled _evaluation module")
        path = z.extract(names[0], d / "unzipped")
    spec = importlib.util.spec_from_file_location("_evaluation", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        pytest.skip(f"{wheels[0].name} does not load here: {e}")
    return module


def _official(module, tmp_path, proposals: dict, metadata: list) -> dict:
    """The evaluator's AP and AR of the case, keyed like evaluate() (seconds in: fps 1)."""
    p, m = tmp_path / "proposals.json", tmp_path / "metadata.json"
    p.write_text(json.dumps(proposals))
    m.write_text(json.dumps(metadata))
    res = module.ap_ar_1d(str(p), str(m), "file", "fake_segments", 1.0, [0.5, 0.75, 0.9, 0.95],
                          [50, 30, 20, 10, 5], list(loc.AR_IOUS))
    ap = {k: res["ap"][float(np.float32(float(k)))] for k in AP_KEYS}  # its keys: the thresholds as float32
    return {"ap": ap, "ar": {k: res["ar"][int(k)] for k in AR_KEYS}}


# ------------------------------------------------------------------ random cases
def _near(rng, seg: list, exact: bool) -> list:
    """A proposal near a true segment: the segment itself, one at IoU exactly 0.5/0.75/0.9/0.95, or jittered."""
    s, e = seg
    kind = rng.integers(4) if exact else 3
    if kind == 0:
        return [s, e]
    if kind in (1, 2):  # segments on a grid of 1/4 s: these IoUs are exact in binary
        frac = rng.choice([0.5, 0.75, 0.9, 0.95]) if kind == 1 else rng.choice([0.5, 0.75])
        return [s, s + (e - s) * frac] if rng.random() < 0.5 else [e - (e - s) * frac, e]
    j = rng.normal(0, 0.15 * (e - s), 2)
    return [s + j[0], max(e + j[1], s + j[0] + 0.05)]


def _case(rng) -> tuple[dict, list, dict]:
    """(proposals for evaluate, metadata, proposals for the evaluator: a file without any gets a far-off one)."""
    grid = rng.random() < 0.5
    props, meta, theirs = {}, [], {}
    for f in range(int(rng.integers(1, 9))):
        name = f"f{f:02d}.mp4"
        n_seg = int(rng.choice([0, 0, 1, 1, 2, 3, 5]))
        starts = np.sort(rng.choice(np.arange(0, 60, 0.25), n_seg, replace=False)) if grid else np.sort(rng.uniform(0, 60, n_seg))
        lens = rng.choice([1, 2, 4, 10, 20], n_seg) * 0.25 if grid else rng.uniform(0.2, 5, n_seg)
        segs = [[float(a), float(a + b)] for a, b in zip(starts, lens)]
        rows = []
        for _ in range(int(rng.choice([0, 1, 2, 5, 10, 30, 60]))):
            if segs and rng.random() < 0.6:
                s, e = _near(rng, segs[int(rng.integers(len(segs)))], grid)
            else:
                s = float(rng.uniform(0, 60))
                e = s + float(rng.uniform(0.1, 5))
            score = float(rng.integers(0, 5) / 4) if rng.random() < 0.5 else float(rng.random())  # ties
            rows.append([score, float(s), float(e)])
        if rng.random() < 0.7:  # mostly most confident first, as a detector writes them; else any order
            rows.sort(key=lambda r: -r[0])
        meta.append({"file": name, "fake_segments": segs, "video_frames": 100})
        if rows:
            props[name] = theirs[name] = rows
        else:  # it cannot read an empty list: a proposal that overlaps nothing and ranks last counts the same
            theirs[name] = [[-1.0, 1000.0, 1001.0]]
    return props, meta, theirs


def _max_diff(a: dict, b: dict) -> float:
    """Largest |a - b| over every AP and AR key; inf where only one of them is NaN."""
    out = 0.0
    for part in ("ap", "ar"):
        for k in a[part]:
            x, y = a[part][k], b[part][k]
            out = max(out, 0.0 if (math.isnan(x) and math.isnan(y)) else abs(x - y) if not math.isnan(x - y) else math.inf)
    return out


def _coverage(props: dict, meta: list) -> dict[str, bool]:
    """Which of the tricky situations a random case holds."""
    ious, scores = [], []
    for m in meta:
        rows = np.asarray(props.get(m["file"], []), dtype=np.float64).reshape(-1, 3)
        scores += rows[:, 0].tolist()
        if len(rows) and m["fake_segments"]:
            ious += _iou_f32(rows[:, 1:], np.asarray(m["fake_segments"])).ravel().tolist()
    at = {float(np.float32(t)) for t in (0.5, 0.75, 0.9, 0.95)}
    return {"ties": len(scores) > len(set(scores)), "no proposals": len(props) < len(meta),
            "IoU = threshold": bool(at & set(ious)), "perfect": 1.0 in ious,
            "proposals, no segments": any(not m["fake_segments"] and m["file"] in props for m in meta),
            "no segment at all": not any(m["fake_segments"] for m in meta)}


def test_av1m_agrees_with_the_official_evaluator(official, tmp_path):
    rng = np.random.default_rng(20240516)
    worst, seen = 0.0, {}
    for i in range(N_RANDOM):
        props, meta, theirs = _case(rng)
        ours, ref = evaluate(props, meta, "av1m"), _official(official, tmp_path, theirs, meta)
        diff = _max_diff(ours, ref)
        assert diff <= 1e-6, f"case {i}: {diff}\nours {ours}\nofficial {ref}\n{props}\n{meta}"
        worst = max(worst, diff)
        for k, v in _coverage(props, meta).items():
            seen[k] = seen.get(k, 0) + v
    print(f"{N_RANDOM} random cases, max |av1m - official| = {worst:.3g}; cases with {seen}")
    assert min(seen.values()) >= 10, seen  # every tricky situation is covered


# ------------------------------------------------------------------ by hand
def _meta(**files) -> list:
    return [{"file": f, "fake_segments": segs} for f, segs in files.items()]


def test_one_perfect_proposal():
    props, meta = {"a": [[0.9, 0.0, 1.0]]}, _meta(a=[[0.0, 1.0]])
    # av1m leaves out the first recall step (0 -> 1 at rank 1): AP 0; the standard curve: AP 1
    assert evaluate(props, meta, "av1m")["ap"] == dict.fromkeys(AP_KEYS, 0.0)
    assert evaluate(props, meta, "standard")["ap"] == dict.fromkeys(AP_KEYS, 1.0)
    for p in PROTOCOLS:
        assert evaluate(props, meta, p)["ar"] == dict.fromkeys(AR_KEYS, 1.0)


def test_iou_exactly_at_the_threshold():
    props = {"a": [[0.9, 0.0, 1.0], [0.8, 2.0, 3.0], [0.7, 10.0, 12.0]]}
    meta = _meta(a=[[0.0, 1.0], [2.0, 3.0], [10.0, 14.0]])  # the third proposal: IoU 2/4 = 0.5 exactly
    av1m, std = evaluate(props, meta, "av1m"), evaluate(props, meta, "standard")
    # av1m, IoU > 0.5: TP TP FP, recall 1/3 2/3 2/3: the step 1/3 -> 2/3 at precision 1 (first step left out)
    assert av1m["ap"]["0.5"] == pytest.approx(1 / 3) and av1m["ap"]["0.75"] == pytest.approx(1 / 3)
    # standard, IoU >= 0.5: TP TP TP -> AP 1; at 0.75 TP TP FP -> 2/3
    assert std["ap"]["0.5"] == pytest.approx(1.0) and std["ap"]["0.75"] == pytest.approx(2 / 3)
    # AR: av1m recalls 2 of 3 at every threshold; standard 3 of 3 at 0.5 and 2 of 3 at the 9 others
    assert av1m["ar"]["5"] == pytest.approx(2 / 3) and std["ar"]["5"] == pytest.approx((1 + 9 * 2 / 3) / 10)


def test_matching_order():
    # g0 [20, 30] found exactly by p0; p1 [3, 13]: IoU 7/13 = 0.54 with g1 [0, 10] and 1 with g2 [3, 13]
    meta = _meta(a=[[0.0, 10.0], [3.0, 13.0], [20.0, 30.0]])
    p0, p1, p2 = [0.95, 20.0, 30.0], [0.9, 3.0, 13.0], [0.8, 0.0, 9.0]  # p2: IoU 0.9 with g1, 6/13 with g2
    # av1m: g1 takes the first proposal of the list above 0.5, p1; then g2 finds none left (p2: 0.46):
    # TP TP FP -> AP 1/3. Standard: p1 takes its best, g2, and p2 takes g1: TP TP TP -> AP 1
    assert evaluate({"a": [p0, p1, p2]}, meta, "av1m")["ap"]["0.5"] == pytest.approx(1 / 3)
    assert evaluate({"a": [p0, p1, p2]}, meta, "standard")["ap"]["0.5"] == pytest.approx(1.0)
    # the list order, not the score, decides av1m's matching: p2 listed first takes g1, p1 then g2 -> 2/3
    assert evaluate({"a": [p0, p2, p1]}, meta, "av1m")["ap"]["0.5"] == pytest.approx(2 / 3)
    assert evaluate({"a": [p0, p2, p1]}, meta, "standard")["ap"]["0.5"] == pytest.approx(1.0)


def test_ties_keep_the_metadata_order_in_av1m():
    props = {"a": [[0.5, 0.0, 1.0]], "b": [[0.5, 5.0, 6.0]]}  # a's is perfect, b's misses: equal scores
    ab, ba = _meta(a=[[0.0, 1.0]], b=[[0.0, 1.0]]), _meta(b=[[0.0, 1.0]], a=[[0.0, 1.0]])
    assert evaluate(props, ab, "av1m")["ap"]["0.5"] == 0.0  # TP FP: the only recall step is the first
    assert evaluate(props, ba, "av1m")["ap"]["0.5"] == pytest.approx(0.25)  # FP TP: step 1/2 at precision 1/2
    assert evaluate(props, ab, "standard")["ap"]["0.5"] == evaluate(props, ba, "standard")["ap"]["0.5"] == 0.5


def test_av1m_recall_takes_the_first_n_of_the_list():
    rows = [[0.1, 10.0 + k, 10.5 + k] for k in range(5)] + [[0.9, 0.0, 1.0]]  # the perfect one is 6th in the list
    meta = _meta(a=[[0.0, 1.0]])
    assert evaluate({"a": rows}, meta, "av1m")["ar"]["5"] == 0.0
    assert evaluate({"a": rows}, meta, "standard")["ar"]["5"] == 1.0  # the 5 most confident
    assert evaluate({"a": rows}, meta, "av1m")["ar"]["10"] == 1.0


def test_files_without_segments_or_proposals():
    meta = _meta(a=[[0.0, 1.0]], b=[[0.0, 1.0]], real=[])
    props = {"a": [[0.9, 0.0, 1.0]], "real": [[0.95, 0.0, 1.0]]}  # b: no proposal; real: a false positive
    for p in PROTOCOLS:
        res = evaluate(props, meta, p)
        assert res["ar"] == dict.fromkeys(AR_KEYS, 0.5)  # b's segment is missed
    # ranked FP (real) then TP: the step 0 -> 1/2 at precision 1/2
    assert evaluate(props, meta, "av1m")["ap"]["0.5"] == pytest.approx(0.25)
    assert evaluate(props, meta, "standard")["ap"]["0.5"] == pytest.approx(0.25)
    assert all(math.isnan(v) for v in evaluate({"real": [[0.9, 0.0, 1.0]]}, _meta(real=[]), "av1m")["ap"].values())


def test_bad_input_is_named():
    meta = _meta(a=[[0.0, 1.0]])
    for props, metadata, reason in (({"z": [[0.9, 0.0, 1.0]]}, meta, "not in the metadata"),
                                    ({"a": [[0.9, 1.0, 1.0]]}, meta, "start is not before end"),
                                    ({"a": [[0.9, 0.0]]}, meta, r"\[score, start, end\]"),
                                    ({"a": [["x", 0.0, 1.0]]}, meta, "numbers"),
                                    ({}, _meta(a=[[2.0, 1.0]]), "fake_segments of 'a'"),
                                    ({}, [{"file": "a"}], "'file' and 'fake_segments'"),
                                    ({}, meta + meta, "listed twice"),
                                    ([], meta, "mapping")):
        with pytest.raises(ValueError, match=reason):
            evaluate(props, metadata, "av1m")
    with pytest.raises(ValueError, match="protocol"):
        evaluate({}, meta, "voc")


# ------------------------------------------------------------------ standard = workbench.evaluation.localization
def test_standard_is_the_workbench_ap_and_ar():
    rng = np.random.default_rng(7)
    for _ in range(30):
        props, meta, _ = _case(rng)
        tables = {f: pd.DataFrame([r[1:] + r[:1] for r in rows], columns=["start", "end", "score"])
                  .sort_values("score", ascending=False, kind="mergesort") for f, rows in props.items()}
        truth = {m["file"]: m["fake_segments"] for m in meta}
        res = evaluate(props, meta, "standard")
        for k in AP_KEYS:
            want = loc.average_precision(tables, truth, float(k))
            assert res["ap"][k] == pytest.approx(want, nan_ok=True)
        for k in AR_KEYS:
            assert res["ar"][k] == pytest.approx(loc.average_recall(tables, truth, int(k)), nan_ok=True)


def test_localization_metrics_follow_the_configured_protocol():
    from workbench.core.config import Config, LocalizationConfig

    t = np.arange(10) / 10
    fake = (t > 0.15) & (t < 0.55)  # frames 2-5: the segment [0.2, 0.6), and one proposal exactly on it
    frames = pd.DataFrame({"video_id": "v", "label": 1, "frame": np.arange(10), "timestamp": t,
                           "p_fake": np.where(fake, 0.9, 0.1), "frame_label": fake.astype(int)})
    assert loc.localization_metrics(frames, LocalizationConfig(protocol="standard"))["loc_ap_iou50"] == 1.0
    assert loc.localization_metrics(frames, LocalizationConfig())["loc_ap_iou50"] == 0.0  # av1m by default
    assert Config().localization.protocol == "av1m"
    with pytest.raises(ValueError, match="protocol"):
        Config().merged({"localization": {"protocol": "voc"}})


# ------------------------------------------------------------------ the command
def _write(tmp_path, proposals, metadata):
    p, m = tmp_path / "p.json", tmp_path / "m.json"
    p.write_text(proposals if isinstance(proposals, str) else json.dumps(proposals))
    m.write_text(metadata if isinstance(metadata, str) else json.dumps(metadata))
    return str(p), str(m)


def test_cli_prints_and_writes_the_table(tmp_path, capsys):
    p, m = _write(tmp_path, {"a": [[0.9, 0.0, 1.0], [0.8, 2.0, 3.0]]}, _meta(a=[[0.0, 1.0], [2.0, 3.0]], b=[]))
    out = tmp_path / "out.json"
    assert cli.main(["evaluate-localization", p, m, "--protocol", "av1m", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res) == ["ap", "ar"] and list(res["ap"]) == list(AP_KEYS) and list(res["ar"]) == list(AR_KEYS)
    assert res["ap"]["0.5"] == pytest.approx(0.5) and res["ar"]["5"] == 1.0
    text = capsys.readouterr().out
    assert "av1m" in text and "AP@0.95" in text and "AR@50" in text
    assert cli.main(["evaluate-localization", p, m, "--protocol", "standard"]) == 0
    assert "1.0000" in capsys.readouterr().out


@pytest.mark.parametrize("proposals, metadata, message", [
    (None, "[]", "cannot read proposals"),
    ("{not json", "[]", "proposals .* is not JSON"),
    ("[]", "[]", "proposals must be a mapping"),
    ('{"a": [[0.9, 2.0, 1.0]]}', '[{"file": "a", "fake_segments": []}]', "start is not before end"),
    ('{"a": [[0.9, 0.0, 1.0]]}', '[{"file": "a", "fake_segments": [[1, 1]]}]', "start is not before end"),
    ('{"a": [[0.9, 0.0, 1.0]]}', '{"file": "a"}', "metadata must be a list"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, proposals, metadata, message):
    p, m = _write(tmp_path, proposals or "", metadata)
    if proposals is None:
        p = str(tmp_path / "missing.json")
    assert cli.main(["evaluate-localization", p, m]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("workbench evaluate-localization: error: ")
    assert re.search(message, err), err
