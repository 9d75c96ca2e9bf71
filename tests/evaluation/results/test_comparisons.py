"""results.csv intervals by design; multiplicity-adjusted comparisons; the corrected resampled t-test."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from featurekit.errors import DataError
from featurekit.evaluation.results.comparison import (
    COMPARISON_COLUMNS,
    compare_aucs,
    fold_aucs,
    pvalue_matrix,
    versus_best,
)
from featurekit.evaluation.results.runfolder import read_run, write_run
from featurekit.evaluation.results.summary import summarise_predictions
from featurekit.evaluation.stats.intervals import corrected_resampled_ttest, wilson_interval
from featurekit.evaluation.stats.multiplicity import adjust_pvalues
from featurekit.evaluation.stats.unit_bootstrap import unit_bootstrap_paired


def _predictions(n=120, repeats=1, rows=(("a", 1.4), ("b", 0.9), ("c", 0.2)), seed=0, folds=5):
    """Out-of-fold predictions of a few rows on the same samples and folds."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 5 < 2).astype(int)
    frames = []
    for r in range(repeats):
        fold = rng.permutation(np.arange(n) % folds)
        base = rng.normal(size=n)
        for name, d in rows:
            s = 1 / (1 + np.exp(-(d * y + 0.7 * base + 0.7 * rng.normal(size=n) - 0.5)))
            frames.append(pd.DataFrame({"id": [f"s{i:03d}" for i in range(n)], "y_true": y, "feature_set": name,
                                        "classifier": "lr", "repeat": r, "fold": fold, "score": s,
                                        "threshold": 0.45}))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- results.csv


def test_proportions_of_a_single_split_get_wilson_intervals():
    pred = _predictions(rows=(("a", 1.0),))
    row = summarise_predictions(pred, n_boot=200).iloc[0]
    y, s = pred["y_true"].to_numpy(), pred["score"].to_numpy()
    p = s >= 0.5
    cases = {"accuracy": ((y == p).sum(), y.size), "sensitivity": ((p & (y == 1)).sum(), (y == 1).sum()),
             "specificity": ((~p & (y == 0)).sum(), (y == 0).sum()), "precision": ((p & (y == 1)).sum(), p.sum())}
    for m, (k, n) in cases.items():
        lo, hi = wilson_interval(k, n)
        assert (row[f"{m}_ci_lo"], row[f"{m}_ci_hi"]) == pytest.approx((float(lo), float(hi))), m
        assert row[f"{m}_ci_method"] == "wilson"
    for m in ("roc_auc", "f1", "mcc", "balanced_accuracy"):
        assert row[f"{m}_ci_method"] == "bca bootstrap over samples"
        assert row[f"{m}_ci_lo"] < row[f"{m}_pooled"] < row[f"{m}_ci_hi"]
    # Wilson needs no resampling: with n_boot=0 the proportions keep their interval
    row0 = summarise_predictions(pred, n_boot=0).iloc[0]
    assert row0["accuracy_ci_lo"] == row["accuracy_ci_lo"] and np.isnan(row0["roc_auc_ci_lo"])


def test_repeated_designs_resample_samples_with_all_their_repeats():
    pred = _predictions(rows=(("a", 1.0),), repeats=3)
    row = summarise_predictions(pred, n_boot=200).iloc[0]
    for m in ("accuracy", "sensitivity", "roc_auc", "f1_youden"):
        assert row[f"{m}_ci_method"] == "bca bootstrap over samples", m
        assert row[f"{m}_ci_lo"] <= row[f"{m}_pooled"] <= row[f"{m}_ci_hi"]


def test_duplicates_in_one_group_do_not_narrow_the_interval():
    """Every image twice, the copies in one group: the intervals of the deduplicated data.

    Taken as independent, the copies would narrow every interval by about 1/sqrt(2)."""
    pred = _predictions(rows=(("a", 1.0),), repeats=2)
    once = pred.assign(group=pred["id"])
    twice = pd.concat([once, once.assign(id=once["id"] + "_copy")], ignore_index=True)
    r1 = summarise_predictions(once, n_boot=300).iloc[0]
    r2 = summarise_predictions(twice, n_boot=300).iloc[0]
    naive = summarise_predictions(twice.drop(columns="group"), n_boot=300).iloc[0]
    for m in ("roc_auc", "f1", "accuracy", "specificity_youden"):
        assert r2[f"{m}_ci_method"] == "bca bootstrap over groups"
        assert (r2[f"{m}_ci_lo"], r2[f"{m}_ci_hi"]) == pytest.approx((r1[f"{m}_ci_lo"], r1[f"{m}_ci_hi"])), m
        assert naive[f"{m}_ci_hi"] - naive[f"{m}_ci_lo"] < 0.85 * (r2[f"{m}_ci_hi"] - r2[f"{m}_ci_lo"]), m


def test_a_run_folder_round_trips_groups_and_the_new_columns(tmp_path):
    pred = _predictions(repeats=2)
    pred["group"] = "p" + pred["id"].str[1:]
    res = summarise_predictions(pred, n_boot=50)
    comp = compare_aucs(pred)
    write_run(tmp_path / "run", res, pred, {}, comparisons=comp)
    back = read_run(tmp_path / "run")
    assert "group" in back.predictions.columns and back.results["roc_auc_ci_method"].iloc[0].endswith("groups")
    assert list(back.comparisons.columns) == COMPARISON_COLUMNS
    # an older folder: no group column, comparisons without the adjusted columns
    write_run(tmp_path / "old", res, pred.drop(columns="group"), {},
              comparisons=comp[COMPARISON_COLUMNS[:14] + ["nested"]])
    old = read_run(tmp_path / "old")
    vb = versus_best(old.comparisons, ("a", "lr"))
    assert vb["family_size"].tolist() == [2, 2] and vb["nb_p_value"].isna().all()


# ---------------------------------------------------------------- multiplicity


def test_holm_and_bh_by_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    holm, m = adjust_pvalues(p, "holm")
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running maximum
    assert m == 4
    np.testing.assert_allclose(holm[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm[4])
    bh, _ = adjust_pvalues(p, "bh")
    # sorted p·m/rank = 0.02, 0.02, 0.04, 0.04, running minimum from the top
    np.testing.assert_allclose(bh[:4], [0.02, 0.04, 0.04, 0.02])
    none, _ = adjust_pvalues(p, None)
    np.testing.assert_array_equal(none[:4], p[:4])
    with pytest.raises(DataError, match="adjust"):
        adjust_pvalues(p, "bonferroni-ish")


def test_compare_aucs_states_the_family_and_adjusts_it():
    pred = _predictions(rows=(("a", 1.4), ("b", 0.9), ("c", 0.2), ("d", 0.0)))
    comp = compare_aucs(pred)
    assert list(comp.columns) == COMPARISON_COLUMNS and len(comp) == 6
    assert (comp["family_size"] == 6).all() and (comp["adjust"] == "holm").all()
    np.testing.assert_allclose(comp["p_adjusted"], adjust_pvalues(comp["p_value"], "holm")[0])
    assert (comp["p_adjusted"] >= comp["p_value"]).all()
    bh = compare_aucs(pred, adjust="bh")
    np.testing.assert_allclose(bh["p_adjusted"], adjust_pvalues(comp["p_value"], "bh")[0])
    raw = compare_aucs(pred, adjust=None)
    np.testing.assert_array_equal(raw["p_adjusted"], raw["p_value"])
    # the matrix of the report, adjusted
    keys = [(k, "lr") for k in "abcd"]
    p_adj, _ = pvalue_matrix(comp, keys, column="p_adjusted")
    ab = comp[(comp["a_feature_set"] == "a") & (comp["b_feature_set"] == "c")].iloc[0]
    assert p_adj[0, 2] == p_adj[2, 0] == ab["p_adjusted"] and p_adj[1, 1] == 1.0
    assert pvalue_matrix(comp, keys)[0][0, 2] == ab["p_value"]
    with pytest.raises(DataError, match="no column"):
        pvalue_matrix(comp, keys, column="q")
    # one repeat: no corrected resampled t-test
    assert comp["nb_p_value"].isna().all() and (comp["nb_family_size"] == 0).all()
    with pytest.raises(DataError, match="adjust"):
        compare_aucs(pred, adjust="sidak")


def test_versus_best_is_oriented_and_its_own_family():
    pred = _predictions(rows=(("a", 1.4), ("b", 0.9), ("c", 0.2), ("d", 0.0)))
    comp = compare_aucs(pred)
    vb = versus_best(comp, ("c", "lr"))
    assert len(vb) == 3 and (vb["family_size"] == 3).all()
    assert set(vb["other_feature_set"]) == {"a", "b", "d"}
    for rec in vb.itertuples():
        orig = comp[((comp["a_feature_set"] == "c") & (comp["b_feature_set"] == rec.other_feature_set))
                    | ((comp["b_feature_set"] == "c") & (comp["a_feature_set"] == rec.other_feature_set))].iloc[0]
        sign = 1.0 if orig["a_feature_set"] == "c" else -1.0
        assert rec.delta_auc == pytest.approx(sign * orig["delta_auc"])
        assert rec.ci_lo < rec.delta_auc < rec.ci_hi and rec.p_value == orig["p_value"]
    np.testing.assert_allclose(vb["p_adjusted"], adjust_pvalues(vb["p_value"], "holm")[0])
    with pytest.raises(DataError, match="no comparison"):
        versus_best(comp, ("zzz", "lr"))


# ---------------------------------------------------------------- Nadeau & Bengio


def test_corrected_resampled_ttest_by_hand():
    d = np.array([0.02, 0.05, -0.01, 0.03, 0.04, 0.00])
    r = corrected_resampled_ttest(d, n_train=80, n_test=20)
    mean = d.mean()
    var = ((d - mean) ** 2).sum() / 5
    se = np.sqrt((1 / 6 + 20 / 80) * var)
    assert r.mean == pytest.approx(mean) and r.se == pytest.approx(se) and r.df == 5
    assert r.statistic == pytest.approx(mean / se)
    assert r.p_value == pytest.approx(2 * student_t.sf(mean / se, 5))
    assert (r.ci_low, r.ci_high) == pytest.approx((mean - student_t.ppf(0.975, 5) * se,
                                                   mean + student_t.ppf(0.975, 5) * se))
    # the uncorrected paired t-test would be far more confident
    assert r.p_value > 2 * student_t.sf(mean / np.sqrt(var / 6), 5)
    # undefined folds are left out; no spread with no difference is p = 1
    assert corrected_resampled_ttest(np.r_[d, np.nan], 80, 20).n_folds == 6
    assert corrected_resampled_ttest(np.zeros(4), 80, 20).p_value == 1.0
    assert np.isnan(corrected_resampled_ttest([0.1], 80, 20).p_value)
    with pytest.raises(DataError):
        corrected_resampled_ttest(d, n_train=[80, 80], n_test=20)


def test_repeated_designs_get_the_corrected_test_in_the_comparisons():
    pred = _predictions(repeats=3, rows=(("a", 1.4), ("b", 0.9), ("c", 0.2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        comp = compare_aucs(pred)
    fa = fold_aucs(pred[pred["feature_set"] == "a"])
    fb = fold_aucs(pred[pred["feature_set"] == "b"])
    assert len(fa) == 15 and (fa["n_test"] == 24).all() and (fa["n_train"] == 96).all()
    hand = corrected_resampled_ttest(fa["auc"] - fb["auc"], 96, 24)
    rec = comp[(comp["a_feature_set"] == "a") & (comp["b_feature_set"] == "b")].iloc[0]
    assert rec["nb_delta_auc"] == pytest.approx(hand.mean) and rec["nb_p_value"] == pytest.approx(hand.p_value)
    assert rec["nb_df"] == 14 and (comp["nb_family_size"] == 3).all()
    np.testing.assert_allclose(comp["nb_p_adjusted"], adjust_pvalues(comp["nb_p_value"], "holm")[0])
    # rows not evaluated on the same folds get no corrected test
    other = pred[pred["feature_set"] == "c"].assign(feature_set="c2", fold=lambda f: (f["fold"] + 1) % 5)
    other.loc[other.index[:10], "fold"] = 4
    comp2 = compare_aucs(pd.concat([pred, other], ignore_index=True))
    assert comp2.loc[comp2["b_feature_set"] == "c2", "nb_p_value"].isna().all()


# ---------------------------------------------------------------- the paired bootstrap over units


def test_comparisons_bootstrap_the_difference_over_the_independent_unit():
    pred = _predictions(repeats=2, rows=(("a", 1.4), ("b", 0.9), ("c", 0.2)))
    pred["group"] = "p" + (pred["id"].str[1:].astype(int) // 2).astype(str)  # patients of two images
    comp = compare_aucs(pred, n_boot=300, seed=4)
    assert compare_aucs(pred)["boot_p_value"].isna().all()  # n_boot=0: DeLong only
    a = pred[pred["feature_set"] == "a"].sort_values(["repeat", "id"])
    b = pred[pred["feature_set"] == "b"].sort_values(["repeat", "id"])
    ref = unit_bootstrap_paired(a["y_true"], a["score"].to_numpy(), b["score"].to_numpy(), groups=a["group"],
                                repeats=a["repeat"], n_boot=300, random_state=4)
    rec = comp[(comp["a_feature_set"] == "a") & (comp["b_feature_set"] == "b")].iloc[0]
    assert rec["boot_method"] == "bca bootstrap over groups"
    assert (rec["boot_delta_auc"], rec["boot_ci_lo"], rec["boot_ci_hi"], rec["boot_p_value"]) == pytest.approx(
        (ref.delta, ref.lo, ref.hi, ref.p_value))
    assert (comp["boot_family_size"] == 3).all()
    np.testing.assert_allclose(comp["boot_p_adjusted"], adjust_pvalues(comp["boot_p_value"], "holm")[0])
    # oriented with the best
    vb = versus_best(comp, ("b", "lr")).set_index("other_feature_set")
    assert vb.loc["a", "boot_delta_auc"] == pytest.approx(-ref.delta)
    assert vb.loc["a", "boot_ci_lo"] == pytest.approx(-ref.hi)
