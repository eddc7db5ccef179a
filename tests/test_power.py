"""`workbench power`: the power of the corrected resampled t-test, checked by simulating correlated fold differences
through `metrics.corrected_ttest`, and the command on a tiny data folder and on hand-written pilot runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from workbench.analysis import power as pw
from workbench.cli import main as cli
from workbench.evaluation.metrics import corrected_ttest
from workbench.synthetic.toydata import make_toy_dataset

N_SIM = 4000
R5, R10 = 1 / (4 * 0.85), 1 / (9 * 0.85)  # n_test/n_train at K = 5 and 10 with a 15% inner part, by hand


def simulated_power(delta: float, sigma: float, k: int, ratio: float, seed: int) -> float:
    """Share of p < 0.05 over N_SIM runs of K equicorrelated differences (corr r/(1+r), E[s^2] = sigma^2)."""
    rho = ratio / (1 + ratio)
    tau2 = sigma ** 2 / (1 - rho)
    cov = tau2 * ((1 - rho) * np.eye(k) + rho * np.ones((k, k)))
    d = np.random.default_rng(seed).multivariate_normal(np.full(k, delta), cov, size=N_SIM)
    return float(np.mean([corrected_ttest(row, ratio)["p"] < 0.05 for row in d]))


@pytest.mark.parametrize("k, ratio, sigma, delta", [(5, R5, 0.05, 0.08), (5, R5, 0.05, 0.15), (5, R5, 0.02, 0.03),
                                                    (10, R10, 0.05, 0.05), (10, R10, 0.02, 0.03)])
def test_power_matches_simulation(k, ratio, sigma, delta):
    sim = simulated_power(delta, sigma, k, ratio, seed=k * 1000 + int(delta * 1e4))
    assert abs(pw.power_of(delta, sigma, k, ratio) - sim) < 0.05, (pw.power_of(delta, sigma, k, ratio), sim)


@pytest.mark.parametrize("k, ratio", [(5, R5), (10, R10)])
def test_no_difference_rejects_at_alpha(k, ratio):
    assert abs(simulated_power(0.0, 0.05, k, ratio, seed=k) - 0.05) < 0.02
    assert pw.power_of(0.0, 0.05, k, ratio) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("k, ratio, sigma", [(5, R5, 0.04), (10, R10, 0.03)])
def test_min_detectable_has_eighty_percent_power(k, ratio, sigma):
    delta = pw.min_detectable(sigma, k, ratio)
    assert abs(simulated_power(delta, sigma, k, ratio, seed=7 + k) - 0.8) < 0.05


def test_power_against_independent_values():
    # ratio 0, K = 10, delta = sigma: the one-sample t-test of n = 10 at d = 1 (R power.t.test: 0.8030962)
    assert pw.power_of(1.0, 1.0, 10, 0.0) == pytest.approx(0.80310, abs=2e-5)
    # the same by integrating the normal over the chi distribution of s (no noncentral t)
    from scipy import integrate, stats
    k, ratio, sigma, delta = 5, R5, 0.05, 0.12
    se, df, crit = sigma * math.sqrt(1 / k + ratio), k - 1, stats.t.ppf(0.975, k - 1)
    f = lambda v: stats.chi2.pdf(v, df) * (stats.norm.sf(crit * math.sqrt(v / df) - delta / se)  # noqa: E731
                                          + stats.norm.cdf(-crit * math.sqrt(v / df) - delta / se))
    assert pw.power_of(delta, sigma, k, ratio) == pytest.approx(integrate.quad(f, 0, np.inf)[0], abs=1e-6)


def test_design_and_default_assumptions_by_hand():
    assert pw.fold_ratio(5, 0.15) == pytest.approx(1 / 3.4)
    assert pw.fold_sizes(32, 5, 0.15) == pytest.approx((6.4, 21.76))
    d = pw.design((12, 20), 5)
    assert d["rho0"] == pytest.approx(0.2272727, abs=1e-6) and d["df"] == 4
    # accuracy 0.85 on 6.4 clips: sqrt(0.85 * 0.15 / 6.4); Hanley & McNeil at AUC 0.85, 2.4 REAL / 4 FAKE
    assert pw.default_sigma("outer_acc", (12, 20), 5).value == pytest.approx(math.sqrt(0.85 * 0.15 / 6.4))
    assert pw.default_sigma("outer_roc_auc", (12, 20), 5).value == pytest.approx(0.164382, abs=1e-5)
    assert pw.default_sigma("outer_acc", (12, 20), 5, pair_corr=0.75).value == pytest.approx(
        math.sqrt(0.85 * 0.15 / 6.4) * math.sqrt(0.5))
    assert pw.expected_half_width(0.05, 5, R5) == pytest.approx(2.776445 * math.sqrt(0.2 + R5) * 0.05, abs=1e-6)


def test_clips_for_and_the_floor_the_correction_leaves():
    def sig(n):
        return 0.4 / math.sqrt(n)
    n = pw.clips_for(0.05, sig, 5, R5)
    assert pw.power_of(0.05, sig(n), 5, R5) == pytest.approx(0.8, abs=1e-4)
    assert pw.power_of(0.05, sig(0.9 * n), 5, R5) < 0.79
    assert pw.clips_for(0.05, lambda n: 0.05, 5, R5) is None  # sigma does not shrink: no pool size helps


# ------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_real=12, n_fake=20, frames=(4, 6), face=16, lip=8,
                            n_test_short=(1, 2))


def test_cli_prints_the_table_and_writes_json(toy, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli(["power", "--data", str(toy), "--target", "0.05", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "REAL 12 / FAKE 20 (3 split=test clips not counted)" in text
    for name in ("video ROC-AUC", "accuracy", "REAL-frame P(Fake)", "Hanley & McNeil", "binomial SD"):
        assert name in text
    assert "unreachable at any pool size" in text  # the stated REAL-frame SD does not shrink with clips
    res = json.loads(out.read_text())
    assert res["design"]["n_test"] == pytest.approx(6.4) and res["design"]["ratio"] == pytest.approx(1 / 3.4)
    rows = {r["metric"]: r for r in res["metrics"]}
    assert rows["outer_acc"]["sigma"] == pytest.approx(math.sqrt(0.85 * 0.15 / 6.4))
    assert rows["outer_acc"]["pool_needed"] > 32 and rows["outer_real_frame_pfake_mean"]["pool_needed"] is None


def _write_run(folder: Path, values: dict[str, list[float]], n_test: int = 8, k: int = 4) -> None:
    """A kfold_results.json by hand: K folds of 4 x n_test clips, each with outer_ids, train_ids and metrics."""
    ids = [f"v{i:02d}" for i in range(k * n_test)]
    folds = [{"fold": j, "best_epoch": 1, "outer_ids": ids[j * n_test:(j + 1) * n_test],
              "train_ids": [v for v in ids if v not in ids[j * n_test:(j + 1) * n_test]],
              "metrics": {m: v[j] for m, v in values.items()}} for j in range(k)]
    folder.mkdir(parents=True)
    (folder / "kfold_results.json").write_text(json.dumps({"condition": folder.name, "folds": folds}))


def test_pilot_with_two_conditions_uses_the_sd_of_fold_differences(toy, tmp_path, capsys):
    _write_run(tmp_path / "study" / "a", {"outer_acc": [0.80, 0.70, 0.75, 0.90]})
    _write_run(tmp_path / "study" / "b", {"outer_acc": [0.82, 0.69, 0.78, 0.90]})
    out = tmp_path / "p.json"
    args = ["power", "--data", str(toy), "--kfold", "4", "--pilot", str(tmp_path / "study"), "--json", str(out)]
    assert cli(args) == 0
    assert "per-fold differences b - a" in capsys.readouterr().out
    rows = {r["metric"]: r for r in json.loads(out.read_text())["metrics"]}
    # differences 0.02, -0.01, 0.03, 0.00: mean 0.01, SS 0.0001 + 0.0004 + 0.0004 + 0.0001 = 0.001, var 0.001/3
    assert rows["outer_acc"]["sigma"] == pytest.approx(math.sqrt(0.001 / 3), abs=1e-6)


def test_pilot_with_one_condition_uses_its_fold_sd_and_a_stated_correlation(toy, tmp_path, capsys):
    _write_run(tmp_path / "one", {"outer_roc_auc": [0.80, 0.90, 0.85, 0.85]})  # SD sqrt(0.005/3)
    assert cli(["power", "--data", str(toy), "--kfold", "4", "--pilot", str(tmp_path / "one"),
                "--pair-corr", "0.75", "--json", str(tmp_path / "p.json")]) == 0
    assert "assumed correlated 0.75" in capsys.readouterr().out
    rows = {r["metric"]: r for r in json.loads((tmp_path / "p.json").read_text())["metrics"]}
    assert rows["outer_roc_auc"]["sigma"] == pytest.approx(math.sqrt(0.005 / 3) * math.sqrt(0.5), abs=1e-6)


def test_clear_errors(toy, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    one_real = tmp_path / "one_real"
    one_real.mkdir()
    (one_real / "index.csv").write_text("path,label\n" + "r.npz,0\n" + "".join(f"f{i}.npz,1\n" for i in range(9)))
    three_real = tmp_path / "three_real"
    three_real.mkdir()
    (three_real / "index.csv").write_text("path,label\n" + "".join(f"{i}.npz,{int(i > 2)}\n" for i in range(12)))
    (tmp_path / "no_run").mkdir()
    cases = [(["--data", str(tmp_path / "empty")], "no index.csv and no .npz files"),
             (["--data", str(one_real)], "at least 2 clips of each class, have REAL 1, FAKE 9"),
             (["--data", str(three_real)], "K = 5 folds is larger than the smaller class (REAL 3, FAKE 9)"),
             (["--data", str(toy), "--pilot", str(tmp_path / "no_run")], "no_run has no kfold_results.json")]
    for args, message in cases:
        assert cli(["power", *args]) == 1
        assert message in capsys.readouterr().err
