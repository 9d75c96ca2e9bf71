"""scikit-learn's contract, for every public estimator of featurekit.

* every public estimator passes ``check_estimator``; the only checks declared as
  expected failures are the input-type checks of the two transformers whose ``X``
  is a column of sample ids (each with its reason), and a test keeps the list of
  estimators complete;
* ``CachedFeatures`` takes explicit parameters only (a typo is Python's TypeError),
  validates them at fit, and a fitted pipeline finds a relative cache path from
  any working directory;
* ``ImagesOf`` keeps the feature names and ``set_output`` of a union or a
  ColumnTransformer around an image transformer;
* the README's Dask snippet is a script (``if __name__ == "__main__":``).
"""

import ast
import builtins
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import make_cache
from conftest import REPO_ROOT, random_dataset
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import SkipTestWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import check_estimator

from featurekit.data.images_of import ImagesOf
from featurekit.errors import CacheError, DataError
from featurekit.evaluation.estimators.classifiers import BalancedSampleWeight, GroupedGridSearchCV
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.estimators.fusion import EqualBlockWeight, LateFusionClassifier
from featurekit.evaluation.estimators.resampling import OversampledClassifier
from featurekit.evaluation.results.selection import SelectBestCandidate
from featurekit.handcrafted import (
    FirstOrderFeatures,
    GaborFeatures,
    GLCMFeatures,
    GLDMFeatures,
    GLRLMFeatures,
    GLSZMFeatures,
    HaarFeatures,
    LBPFeatures,
    NGTDMFeatures,
    Shape2DFeatures,
)

N = 12  # samples of the tiny dataset and cache below (ids img000 .. img011)

# ---------------------------------------------------------------------------------------- check_estimator
_NOT_IDS = ("X is a column of sample ids (of a feature cache or a dataset): the check's numeric matrix "
            "has several columns")
_NOT_KNOWN = "X is a column of sample ids: the check's numbers are no ids of the cache or dataset"
_NAN_ID = ("X is a column of sample ids: NaN is an unknown id (an error naming it), not a number "
           "to refuse as scikit-learn words it")
# scikit-learn's checks that feed a numeric matrix as X, and why they cannot apply to ids
_MATRIX_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d", "check_fit2d_1sample"]
_CACHED_FEATURES_CHECKS = {
    **dict.fromkeys(_MATRIX_CHECKS, _NOT_IDS),
    # unknown ids are a CacheError (a RuntimeError: the cache lacks them), where these checks want ValueError
    **dict.fromkeys(["check_fit1d", "check_fit2d_1feature", "check_positive_only_tag_during_fit"], _NOT_KNOWN),
    "check_estimators_nan_inf": _NAN_ID,
}
_IMAGES_OF_CHECKS = {
    **dict.fromkeys(_MATRIX_CHECKS + ["check_transformers_unfitted_stateless"], _NOT_IDS),
    **dict.fromkeys(["check_fit2d_1feature", "check_positive_only_tag_during_fit"], _NOT_KNOWN),
    "check_estimators_nan_inf": _NAN_ID,
}

#: estimator classes of the working tree not (yet) in ESTIMATORS, and why
PENDING: dict[str, str] = {}


def _id_transformers(tmp_path):
    ds = random_dataset(N)
    cache = make_cache(tmp_path / "c.h5", {"gabor": np.random.default_rng(0).normal(size=(N, 4))}, ids=ds.ids)
    return ds, cache


ESTIMATORS = {  # name -> (factory of a small instance, expected failed checks)
    "CachedFeatures": (lambda tmp: CachedFeatures("gabor", cache=_id_transformers(tmp)[1].path),
                       _CACHED_FEATURES_CHECKS),
    "ImagesOf": (lambda tmp: ImagesOf(random_dataset(N)), _IMAGES_OF_CHECKS),
    "EqualBlockWeight": (lambda tmp: EqualBlockWeight(), {}),
    "LateFusionClassifier": (lambda tmp: LateFusionClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))]), {}),
    "LateFusionClassifier-stack": (lambda tmp: LateFusionClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))],
        method="stack", cv=2), {}),
    "BalancedSampleWeight": (lambda tmp: BalancedSampleWeight(LogisticRegression()), {}),
    "SelectBestCandidate": (lambda tmp: SelectBestCandidate(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))], cv=2), {}),
    "OversampledClassifier": (lambda tmp: OversampledClassifier(LogisticRegression(), random_state=0), {}),
    "GroupedGridSearchCV": (lambda tmp: GroupedGridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2), {}),
    "GaborFeatures": (lambda tmp: GaborFeatures(), {}),
    "GLCMFeatures": (lambda tmp: GLCMFeatures(), {}),
    "HaarFeatures": (lambda tmp: HaarFeatures(), {}),
    "GLRLMFeatures": (lambda tmp: GLRLMFeatures(), {}),
    "GLSZMFeatures": (lambda tmp: GLSZMFeatures(), {}),
    "GLDMFeatures": (lambda tmp: GLDMFeatures(), {}),
    "NGTDMFeatures": (lambda tmp: NGTDMFeatures(), {}),
    "FirstOrderFeatures": (lambda tmp: FirstOrderFeatures(), {}),
    "Shape2DFeatures": (lambda tmp: Shape2DFeatures(), {}),
    "LBPFeatures": (lambda tmp: LBPFeatures(), {}),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_public_estimator_passes_check_estimator(name, tmp_path):
    """All of scikit-learn's checks pass; the declared expected failures are input-type checks that do fail.

    The handcrafted transformers take 2-D tabular X by their documented rule (each row a 1-pixel-high
    image). The only checks scikit-learn itself skips are the array-API ones (they need SCIPY_ARRAY_API=1).
    """
    factory, expected = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkipTestWarning)  # a tag that skips every check is no pass
        results = check_estimator(factory(tmp_path), expected_failed_checks=expected, on_skip=None,
                                  on_fail=None)
    failed = {r["check_name"]: str(r["exception"])[:300] for r in results if r["status"] == "failed"}
    assert failed == {}
    assert all(r["check_name"].startswith("check_array_api") for r in results if r["status"] == "skipped")
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(expected)  # none passes now
    assert sum(r["status"] == "passed" for r in results) >= 15


def _estimator_classes() -> set[str]:
    """Public classes of featurekit that derive from a scikit-learn estimator, found in the source."""
    bases, sklearn_names = {}, set()
    for path in (REPO_ROOT / "featurekit").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                sklearn_names.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
    import sklearn.base
    import sklearn.model_selection

    def sklearn_estimator(name):
        cls = getattr(sklearn.base, name, None) or getattr(sklearn.model_selection, name, None)
        return isinstance(cls, type) and issubclass(cls, BaseEstimator)

    roots = {n for n in sklearn_names if sklearn_estimator(n)}
    found, grew = set(roots), True
    while grew:
        new = {c for c, bs in bases.items() if bs & found} - found
        found |= new
        grew = bool(new)
    return {c for c in found - roots if not c.startswith("_")}


def test_the_checked_estimators_are_all_of_them():
    """A new estimator class in featurekit must join ESTIMATORS (the abstract handcrafted bases excepted)."""
    checked = {name.split("-")[0] for name in ESTIMATORS}
    assert _estimator_classes() - {"HandcraftedTransformer", "FamilyTransformer"} - set(PENDING) == checked


# ---------------------------------------------------------------------------------------- CachedFeatures
def test_cached_features_parameters_are_explicit_and_checked_at_fit(tmp_path):
    ds, cache = _id_transformers(tmp_path)
    ids = np.asarray(ds.ids, dtype=object)
    with pytest.raises(TypeError, match="cach"):  # a typo is Python's error, never a match filter
        CachedFeatures("gabor", cach=cache.path)
    with pytest.raises(TypeError):
        CachedFeatures("gabor", cache=cache.path, pool="gap")  # entry parameters go in match=
    match = {"family": "gabor"}
    cf = CachedFeatures("gabor", cache=cache.path, match=match)
    assert cf.match is match and cf.get_params()["match"] is match  # stored as given
    # anything is stored by __init__ and set_params; fit says what is wrong, naming the parameter
    for params, problem in [({"match": [1]}, "match must be a dict"), ({"dtype": "helloworld"}, "dtype"),
                            ({"dtype": "int64"}, "floating-point"), ({"entry_id": 3}, "entry_id"),
                            ({"key": -1}, "key"), ({"cache": 3.0}, "cache must be a path")]:
        bad = clone(cf).set_params(**params)
        with pytest.raises(DataError, match=problem):
            bad.fit(ids)
    with pytest.raises(CacheError, match="needs cache=PATH"):
        CachedFeatures("gabor").fit(ids)
    np.testing.assert_array_equal(cf.fit(ids).transform(ids[:3]), cache.get("gabor", ids=list(ids[:3])))


def test_fitted_pipeline_finds_a_relative_cache_from_another_folder(tmp_path, monkeypatch):
    ds, cache = _id_transformers(tmp_path)
    ids = np.asarray(ds.ids, dtype=object)
    y = np.arange(N) % 2
    monkeypatch.chdir(tmp_path)
    pipe = make_pipeline(CachedFeatures("gabor", cache="c.h5"), StandardScaler(), LogisticRegression()).fit(ids, y)
    assert pipe[0].cache == "c.h5" and pipe[0].cache_path_ == str(tmp_path / "c.h5")
    expected = pipe.predict_proba(ids)
    blob = pickle.dumps(pipe)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no c.h5 here
    loaded = pickle.loads(blob)
    np.testing.assert_array_equal(loaded.predict_proba(ids), expected)
    np.testing.assert_array_equal(loaded[0].transform(ids[:2]), cache.get("gabor", ids=list(ids[:2])))


def test_id_transformers_follow_the_ids_in_any_order_and_subset(tmp_path):
    """What check_methods_sample_order_invariance / subset_invariance check, with ids as X."""
    ds, cache = _id_transformers(tmp_path)
    ids = np.asarray(ds.ids, dtype=object)
    order = np.random.default_rng(1).permutation(N)
    cf = CachedFeatures("gabor", cache=cache.path).fit(ids)
    whole = cf.transform(ids)
    np.testing.assert_array_equal(cf.transform(ids[order]), whole[order])
    np.testing.assert_array_equal(cf.transform(ids[order[:5]].reshape(-1, 1)), whole[order[:5]])
    haar = make_pipeline(ImagesOf(ds), HaarFeatures(window=12, n_features=20)).fit(ids)
    every = haar.transform(ids)
    np.testing.assert_array_equal(haar.transform(ids[order[:5]]), every[order[:5]])
    with pytest.raises(DataError, match="0 sample"):
        cf.transform(np.array([], dtype=object))
    with pytest.raises(DataError, match="sample ids of shape"):
        ImagesOf(ds).fit(np.array([ids, ids]).T)


# ---------------------------------------------------------------------------------------- ImagesOf in unions
def test_union_and_column_transformer_with_images_of_keep_feature_names_and_set_output(tmp_path):
    ds, cache = _id_transformers(tmp_path)
    ids = np.asarray(ds.ids, dtype=object)
    haar = HaarFeatures(window=12, n_features=20)
    haar_names = list(clone(haar).get_feature_names_out())
    union = make_union(CachedFeatures("gabor", cache=cache.path), make_pipeline(ImagesOf(ds), clone(haar)))
    out = union.fit_transform(ids)
    names = list(union.get_feature_names_out())
    assert out.shape == (N, 4 + 20) and len(names) == out.shape[1]
    assert names[:4] == [f"cachedfeatures__gabor_{i}" for i in range(4)]
    assert names[4:] == [f"pipeline__{n}" for n in haar_names]
    df = clone(union).set_output(transform="pandas").fit_transform(ids)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == names
    np.testing.assert_allclose(df.to_numpy(), out)

    table = pd.DataFrame({"id": ids, "site": np.arange(N) % 3})
    ct = ColumnTransformer([("cnn", CachedFeatures("gabor", cache=cache.path), ["id"]),
                            ("haar", make_pipeline(ImagesOf(ds), clone(haar)), ["id"])])
    ct.set_output(transform="pandas")
    got = ct.fit_transform(table)
    assert list(got.columns) == [f"cnn__gabor_{i}" for i in range(4)] + [f"haar__{n}" for n in haar_names]
    np.testing.assert_allclose(got.to_numpy(), out)
    # ImagesOf itself records the setting and still hands images on (a table of images is not a thing)
    images = ImagesOf(ds).set_output(transform="pandas").fit_transform(ids[:3])
    assert images.ids == list(ids[:3])


# ---------------------------------------------------------------------------------------- fusion estimators
def test_late_fusion_checks_its_parameters_and_target_at_fit():
    X = np.random.default_rng(0).normal(size=(24, 3))
    y = np.arange(24) % 2
    bases = [("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))]
    fused = LateFusionClassifier(bases).fit(X, y)
    assert fused.n_features_in_ == 3
    with pytest.raises(ValueError, match="X has 2 features"):
        fused.predict(X[:, :2])
    three = LateFusionClassifier(bases).fit(X, np.arange(24) % 3)  # any number of classes
    assert three.predict_proba(X).shape == (24, 3) and set(three.predict(X)) <= {0, 1, 2}
    with pytest.raises(DataError, match="at least two classes"):
        LateFusionClassifier(bases).fit(X, np.zeros(24, dtype=int))
    for params, problem in [({"weights": [1.0]}, "weights must be 2"), ({"weights": [1, -1]}, "non-negative"),
                            ({"method": "average"}, "'vote' or 'stack'"), ({"estimators": []}, "at least one"),
                            ({"estimators": [LogisticRegression()]}, "pairs"),
                            ({"method": "stack", "cv": 1}, "cv must be an integer")]:
        with pytest.raises(DataError, match=problem):
            clone(fused).set_params(**params).fit(X, y)


def test_balanced_sample_weight_counts_given_weights_as_copies():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = (rng.random(30) < 0.3).astype(int)
    copies = rng.integers(1, 4, size=30)
    weighted = BalancedSampleWeight(LogisticRegression(tol=1e-10)).fit(X, y, sample_weight=copies)
    repeated = BalancedSampleWeight(LogisticRegression(tol=1e-10)).fit(np.repeat(X, copies, 0), np.repeat(y, copies))
    # the same weighted loss, solved to tol=1e-10: the coefficients agree far beyond 1e-6
    np.testing.assert_allclose(weighted.estimator_.coef_, repeated.estimator_.coef_, rtol=1e-6, atol=1e-8)
    assert weighted.n_features_in_ == 2


# ---------------------------------------------------------------------------------------- README
def _readme_dask_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if "local_cluster(" in b and "Client(" in b]
    assert len(found) == 1, "the README has one Python snippet that starts a LocalCluster"
    return found[0]


def test_readme_dask_snippet_is_a_script(tmp_path):
    """Dask's worker processes import the main script: all work must sit under the ``__main__`` guard."""
    snippet = _readme_dask_snippet()
    tree = ast.parse(snippet)
    top = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    assert len(top) == 1 and isinstance(top[0], ast.If)
    assert ast.unparse(top[0].test) == "__name__ == '__main__'"
    # every name the script reads is imported, assigned or a builtin
    defined = {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in n.names}
    defined |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used - defined - set(dir(builtins)) == set()
    # the names it takes from featurekit exist
    import featurekit as fk

    fk_names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "fk"}
    assert fk_names and fk_names <= set(fk.__all__)
    # imported as a spawned worker imports it (``__mp_main__``): imports only, no cluster, no work
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    done = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; g = runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
                               "assert 'client' not in g and 'ds' not in g; print('imported')", str(script)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
