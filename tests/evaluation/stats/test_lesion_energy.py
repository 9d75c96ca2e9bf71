"""The lesion-energy score (share of a map's positive energy inside the lesion) and its bootstrap over units."""

import numpy as np
import pytest

from featurekit.errors import DataError
from featurekit.evaluation.stats.lesion_energy import energy_summary, lesion_energy


def _masks(n=4, side=8, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, side, side))
    for k in range(n):
        r, c = rng.integers(0, side - 3, size=2)
        masks[k, r:r + 3, c:c + 2 + k % 3] = 1.0
    return masks


def test_a_map_equal_to_the_mask_scores_one_and_a_uniform_map_the_area_fraction():
    masks = _masks()
    np.testing.assert_allclose(lesion_energy(masks, masks), 1.0)
    np.testing.assert_allclose(lesion_energy(np.full_like(masks, 0.3), masks), masks.mean(axis=(1, 2)))
    # only the positive part counts: negative values outside the lesion change nothing
    signed = masks - 5.0 * (1 - masks)
    np.testing.assert_allclose(lesion_energy(signed, masks), 1.0)
    # fractional cells weigh the energy they hold
    half = np.full((1, 2, 2), 0.5)
    np.testing.assert_allclose(lesion_energy(np.ones((1, 2, 2)), half), [0.5])


def test_no_positive_energy_or_no_lesion_is_undefined_not_zero():
    masks = _masks(n=2)
    scores = lesion_energy(np.stack([-np.ones((8, 8)), np.ones((8, 8))]), np.stack([masks[0], np.full((8, 8), np.nan)]))
    assert np.isnan(scores).all()
    with pytest.raises(DataError, match="share"):
        lesion_energy(masks, masks * 2)
    with pytest.raises(DataError, match="equal"):
        lesion_energy(masks, masks[:, :4])


def test_summary_resamples_groups_with_all_their_images():
    rng = np.random.default_rng(1)
    scores = rng.random(12)
    labels = ["benign", "malignant"] * 6
    area = np.full(12, 0.2)
    single = energy_summary(scores, labels, area, n_boot=300, seed=3)
    # every image ten times, each copy in its image's group: the same units, so the same draws and interval
    rep = np.repeat(np.arange(12), 10)
    grouped = energy_summary(scores[rep], np.asarray(labels)[rep], area[rep], groups=rep.astype(str),
                             n_boot=300, seed=3)
    assert list(grouped["class"]) == ["benign", "malignant", "all"]
    np.testing.assert_allclose(grouped["lesion_energy"], single["lesion_energy"])
    # (equal up to rounding: a replicate that ties the estimate may fall on either side of it in BCa's count)
    np.testing.assert_allclose(grouped[["ci_lo", "ci_hi"]], single[["ci_lo", "ci_hi"]], atol=0.02)
    assert set(grouped["units"]) == {"groups"} and set(single["units"]) == {"images"}
    # resampled as images, the ten copies would pass for 120 independent images: a narrower interval
    as_images = energy_summary(scores[rep], np.asarray(labels)[rep], area[rep], n_boot=300, seed=3)
    width = lambda t: float((t["ci_hi"] - t["ci_lo"]).iloc[-1])  # noqa: E731
    assert width(as_images) < 0.6 * width(grouped)
    row = grouped.iloc[-1]
    assert row["ci_lo"] <= row["lesion_energy"] <= row["ci_hi"] and row["n"] == 120
    np.testing.assert_allclose(grouped["area_fraction"], 0.2)


def test_summary_leaves_undefined_scores_out():
    out = energy_summary([0.5, np.nan, 0.7, 0.9], ["a", "a", "b", "b"], [0.1, 0.1, 0.2, 0.2], n_boot=50,
                         model="m", layer="l", layer_index=3, kind="mean")
    a = out.set_index("class")
    assert a.loc["a", "n"] == 1 and a.loc["a", "lesion_energy"] == 0.5 and np.isnan(a.loc["a", "ci_lo"])
    assert a.loc["all", "n"] == 3 and a.loc["all", "lesion_energy"] == pytest.approx(0.7)
    assert set(out["layer"]) == {"l"} and set(out["layer_index"]) == {3}


def test_examples_are_the_most_confident_correct_and_wrong_calls_of_each_class():
    import pandas as pd

    from featurekit.report.maps import oriented, pick_examples

    scores = {"b1": 0.1, "b2": 0.45, "b3": 0.9, "m1": 0.95, "m2": 0.6, "m3": 0.2, "m4": 0.3}
    labels = {k: "benign" if k[0] == "b" else "malignant" for k in scores}
    rows = [{"id": k, "y_true": int(labels[k] == "malignant"), "feature_set": "f", "classifier": "c", "repeat": r,
             "fold": 0, "score": v, "threshold": 0.5} for k, v in scores.items() for r in (0, 1)]
    rows.append({**rows[0], "feature_set": "other", "score": 0.99})  # another row's calls are not used
    picks = pick_examples(pd.DataFrame(rows), "f", "c", labels)
    assert picks == [("b1", True), ("b3", False), ("m1", True), ("m3", False)]
    assert pick_examples(pd.DataFrame(rows), "f", "c", labels, per_group=2)[:2] == [("b1", True), ("b2", True)]
    maps = np.ones((2, 2, 2))
    np.testing.assert_array_equal(oriented(maps, "probe", np.array([True, False]))[:, 0, 0], [1, -1])
    np.testing.assert_array_equal(oriented(maps, "mean", np.array([True, False])), maps)
