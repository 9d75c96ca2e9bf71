"""The front door: the script a researcher writes with ``import featurekit as fk``."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import StandardScaler

import featurekit as fk

HAAR = dict(window=(12, 12), feature_types=["type-2-x", "type-2-y"], n_features=64, empty_mask="whole")


@pytest.fixture(scope="module")
def busi_extracted(busi_copy20, tmp_path_factory):
    ds = fk.load_dataset(busi_copy20, classes=["benign", "malignant"], positive="malignant", roi="mask")
    cache = tmp_path_factory.mktemp("api") / "busi.h5"
    result = fk.extract(ds, layers=["mobilenet_v2:features.14,features.18"],
                        handcrafted=[fk.GaborFeatures(frequencies=(0.25,), empty_mask="whole"), "glcm"],
                        weights=fk.Weights.random(seed=0), size=64, cache=cache, progress=False)
    return ds, result


def test_front_door_script_fuses_cached_cnn_and_a_handcrafted_transformer(busi_extracted, tmp_path):
    ds, result = busi_extracted
    union = make_union(fk.CachedFeatures("mobilenet_v2/features.18", result.cache.path),
                       make_pipeline(fk.ImagesOf(ds), fk.HaarFeatures(**HAAR)))
    pipe = make_pipeline(union, StandardScaler(), LogisticRegression(max_iter=2000))
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2)
    ev = fk.cross_validate({"v+haar": search}, ds, cv=StratifiedKFold(4, shuffle=True, random_state=0))
    row = ev.results.iloc[0]
    assert row["n"] == len(ds) == 20 and row["n_pos"] == 10
    # every image scored exactly once, by a model that never saw it
    assert sorted(ev.predictions["id"]) == sorted(ds.ids)
    for fold in ev.folds:
        assert not set(fold.train_idx) & set(fold.test_idx)
    assert np.isfinite(ev.predictions["score"]).all()
    # the union really holds both blocks: CNN dims + Haar dims
    fitted = union.fit(np.asarray(ds.ids[:6]))
    assert fitted.transform(np.asarray(ds.ids[:6])).shape == (6, 1280 + 64)
    out = ev.save(tmp_path / "run")
    html = fk.build_report(out)
    assert html.is_file() and "v+haar" in html.read_text()


def test_images_of_follows_the_ids_order(busi_extracted):
    ds, _ = busi_extracted
    ids = np.asarray(ds.ids)[[5, 0, 3]]
    sub = fk.ImagesOf(ds).fit(ids).transform(ids)
    assert sub.ids == list(ids)
    assert np.array_equal(sub.image(0), ds.image(5))
    with pytest.raises(fk.DataError, match="not in this dataset"):
        fk.ImagesOf(ds).fit(np.array(["nope"]))


def test_any_sklearn_splitter_gives_the_same_rows_as_its_folds(busi_extracted):
    ds, result = busi_extracted
    pipe = make_pipeline(fk.CachedFeatures("gabor", result.cache.path), StandardScaler(), LogisticRegression())
    ev = fk.cross_validate({"gabor": pipe}, ds, cv=RepeatedStratifiedKFold(n_splits=4, n_repeats=2, random_state=1))
    # repeats are numbered as featurekit's own "4x2" numbers them: 2 repeats of 4 folds
    assert ev.results.iloc[0]["n_repeats"] == 2 and ev.results.iloc[0]["n_folds"] == 8
    assert sorted((f.repeat, f.fold) for f in ev.folds) == [(r, k) for r in range(2) for k in range(4)]
    # within a repeat every image is scored once
    for r in range(2):
        ids = ev.predictions.loc[ev.predictions["repeat"] == r, "id"]
        assert sorted(ids) == sorted(ds.ids)
    # the folds are the splitter's own
    y = (np.asarray(ds.labels) == 1).astype(int)
    expected = list(RepeatedStratifiedKFold(n_splits=4, n_repeats=2, random_state=1).split(np.zeros((20, 1)), y))
    assert all(np.array_equal(f.test_idx, te) for f, (_, te) in zip(ev.folds, expected))


def test_cache_get_accepts_the_weights_choice_as_given(busi_extracted):
    ds, result = busi_extracted
    X = result.cache.get("mobilenet_v2/features.14", ids=ds.ids, weights="none")
    assert X.shape == (20, 160)
    assert np.array_equal(X, result.cache.get("mobilenet_v2/features.14", ids=ds.ids, weights=fk.Weights.random(0)))
    with pytest.raises(fk.CacheError):
        result.cache.get("mobilenet_v2/features.14", weights="none:seed=7")
    with pytest.raises(fk.CacheError):
        result.cache.get("mobilenet_v2/features.14", weights="imagenet")


def test_handcrafted_parameters_from_text_make_their_own_entry(busi_extracted):
    ds, result = busi_extracted
    again = fk.extract(ds, handcrafted="glcm:bin_count=16;symmetric=true", cache=result.cache, progress=False)
    (spec,) = again.specs
    assert spec.key == "glcm" and spec.params["bin_count"] == 16 and spec.params["symmetric"] is True
    default = next(s for s in result.specs if s.key == "glcm")
    assert spec.entry_id != default.entry_id
    with pytest.raises(fk.LayerError, match="valid:.*bin_count"):
        fk.extract(ds, handcrafted="glcm:bins=16", cache=result.cache, progress=False)


def test_weights_specs_parse_once():
    assert fk.Weights.parse("none:seed=3") == fk.Weights.random(3)
    assert fk.Weights.parse("none", seed=5) == fk.Weights.random(5)
    assert fk.Weights.parse("imagenet:IMAGENET1K_V1").variant == "IMAGENET1K_V1"
    assert not fk.Weights.random().pretrained and fk.Weights.imagenet().pretrained
    assert fk.Weights.parse("runs/x/model.pt") == fk.Weights.file("runs/x/model.pt")
    with pytest.raises(fk.WeightsError):
        fk.Weights.parse("none:seed=abc")


def test_evaluate_seed_splits_do_not_reseed_random_weights(busi_extracted, tmp_path):
    ds, result = busi_extracted
    a = fk.evaluate_features(ds, ["mobilenet_v2:features.18"], ["logreg"], cv="4", cache=result.cache,
                             weights="none", size=64, seed=0, n_boot=50)
    b = fk.evaluate_features(ds, ["mobilenet_v2:features.18"], ["logreg"], cv="4", cache=result.cache,
                             weights="none", size=64, seed=1, n_boot=50)
    ea = {e["key"]: e["entry_id"] for e in a.provenance["entries"]}
    eb = {e["key"]: e["entry_id"] for e in b.provenance["entries"]}
    assert ea == eb  # same random-init features; only the splits changed
    assert not a.predictions.sort_values("id")["fold"].equals(b.predictions.sort_values("id")["fold"])


def test_handcrafted_families_are_named_in_one_place():
    from featurekit.handcrafted import FAMILIES
    from featurekit.specs import HANDCRAFTED

    assert tuple(FAMILIES) == HANDCRAFTED
