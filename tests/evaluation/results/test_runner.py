"""Runner: statistics from out-of-fold predictions, the run-folder contract, end to end on BUSI."""

import contextlib
import io
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import make_cache, separable

from featurekit.cli import main
from featurekit.errors import DataError, LayerError
from featurekit.evaluation.estimators.classifiers import make_classifier, make_pipeline_for
from featurekit.evaluation.estimators.features import CachedFeatures
from featurekit.evaluation.results.crossval import cross_validate
from featurekit.evaluation.results.runfolder import read_run, read_runs, write_run
from featurekit.evaluation.results.summary import (
    METRIC_NAMES,
    PREDICTION_COLUMNS,
    THRESHOLD_METRICS,
    summarise_predictions,
)
from featurekit.evaluation.stats.metrics import binary_report, roc_auc
from featurekit.orchestration import evaluate_features, run_demo_evaluation

# ---------------------------------------------------------------------------- statistics


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    n = 60
    y = np.arange(n) % 2
    path = tmp_path_factory.mktemp("syn") / "c.h5"
    cache = make_cache(path, {"gabor": separable(n, 6, 1.0, 0), "net/layer3": separable(n, 10, 0.6, 1),
                              "net/layer5": separable(n, 10, 1.4, 2)}, labels=y)
    return cache, y


def test_cross_validate_returns_results_and_predictions(synthetic):
    cache, y = synthetic
    ids = np.array(cache.ids, dtype=object)
    pipes = {k: make_pipeline_for(CachedFeatures(k, cache=cache.path), make_classifier("logreg"))
             for k in ("gabor", "net/layer5")}
    results, predictions = cross_validate(pipes, ids, np.where(y == 1, "malignant", "benign"),
                                              cv="5x2", positive="malignant", n_boot=300)
    assert list(results["feature_set"]) == ["gabor", "net/layer5", "selected"]  # two candidates: + the selected row
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert len(predictions) == 3 * 2 * 60  # every sample once per repeat and row
    assert set(predictions["y_true"]) == {0, 1} and predictions["y_true"].sum() == 3 * 2 * 30
    for m in METRIC_NAMES:
        for suffix in ("", "_sd", "_ci_lo", "_ci_hi", "_pooled"):
            assert f"{m}{suffix}" in results.columns
    for m in THRESHOLD_METRICS:
        assert f"{m}_youden_ci_hi" in results.columns
    assert "roc_auc_youden" not in results.columns
    row = results.iloc[1]
    assert row["n"] == 60 and row["n_pos"] == 30 and row["n_repeats"] == 2 and row["n_folds"] == 10
    assert row["protocol"] == "stratified 5-fold x2"
    assert row["roc_auc_ci_lo"] <= row["roc_auc_pooled"] <= row["roc_auc_ci_hi"]
    assert row["roc_auc"] > 0.8


def test_statistics_match_a_manual_computation(synthetic):
    cache, y = synthetic
    ids = np.array(cache.ids, dtype=object)
    pipe = make_pipeline_for(CachedFeatures("net/layer3", cache=cache.path), make_classifier("logreg"))
    ev = cross_validate({"p": pipe}, ids, y, cv="4x3", n_boot=200, seed=3)
    pred, row = ev.predictions, ev.results.iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_fold = [binary_report(g["y_true"], g["score"], 0.5) for _, g in pred.groupby(["repeat", "fold"])]
        per_fold_y = [binary_report(g["y_true"], g["score"] - g["threshold"], 0.0)
                      for _, g in pred.groupby(["repeat", "fold"])]
    aucs = [r["roc_auc"] for r in per_fold]
    assert row["roc_auc"] == pytest.approx(np.mean(aucs))
    assert row["roc_auc_sd"] == pytest.approx(np.std(aucs, ddof=1))
    pooled = [roc_auc(g["y_true"], g["score"]) for _, g in pred.groupby("repeat")]
    assert row["roc_auc_pooled"] == pytest.approx(np.mean(pooled))
    sens_y = [r["sensitivity"] for r in per_fold_y]
    assert row["sensitivity_youden"] == pytest.approx(np.mean(sens_y))
    # the Youden threshold really changes the operating point of at least one fold
    assert any(a["sensitivity"] != b["sensitivity"] for a, b in zip(per_fold, per_fold_y))
    # summarise_predictions alone reproduces the row from predictions.csv
    again = summarise_predictions(pred, n_boot=200, seed=3).iloc[0]
    for col in ("roc_auc", "roc_auc_ci_lo", "f1_youden_ci_hi", "mcc_sd"):
        assert again[col] == pytest.approx(row[col], nan_ok=True)
    # repeat-wise pooling: the interval is narrower than each repeat's own and contains the estimate
    assert row["roc_auc_ci_hi"] - row["roc_auc_ci_lo"] < 0.5


def test_evaluate_features_from_a_cache_with_fusions_and_kinds(synthetic, tmp_path):
    cache, y = synthetic
    with pytest.warns(UserWarning, match="nested"):
        ev = evaluate_features(cache.path, ["all"], ["logreg", "knn"], "3", fuse=["net/layer5+gabor"],
                               late_fusion="vote", positive="malignant", n_boot=200, out=tmp_path / "run")
    res = ev.results
    assert len(res) == 5 * 2 + 1
    kinds = dict(zip(res["feature_set"], res["kind"]))
    assert kinds == {"gabor": "handcrafted", "net/layer3": "deep", "net/layer5": "deep",
                     "net/layer5+gabor": "fused", "vote(net/layer5+gabor)": "fused", "selected": "selected"}
    assert ev.provenance["selection"]["n_candidates"] == 10
    fused = res[res["feature_set"] == "net/layer5+gabor"].iloc[0]
    assert fused["fusion"] == "early" and fused["model"] == "net" and fused["layer_index"] == 3
    assert res[res["feature_set"].str.startswith("vote")]["fusion"].eq("vote").all()
    run = read_run(tmp_path / "run")
    assert len(run.results) == 11 and run.comparisons is not None and run.comparisons["nested"].any()
    prov = run.provenance
    assert prov["positive"] == "malignant" and prov["dataset"]["counts"] == {"benign": 30, "malignant": 30}
    assert {e["key"] for e in prov["entries"]} == {"gabor", "net/layer3", "net/layer5"}
    with pytest.raises(DataError, match="positive"):
        evaluate_features(cache.path, ["gabor"], ["logreg"], "3", positive="normal")
    with pytest.raises(DataError, match="unknown classifier"):
        evaluate_features(cache.path, ["gabor"], ["deepforest"], "3")
    with pytest.raises(LayerError, match="two feature sets"):  # the fusion grammar, refused where it is parsed
        evaluate_features(cache.path, [], ["logreg"], "3", fuse=["gabor"])


# ---------------------------------------------------------------------------- run folder


def _rows(fs="a", kind="deep"):
    res = pd.DataFrame([{"feature_set": fs, "classifier": "svm", "kind": kind, "model": "m", "layer": "l",
                         "layer_index": 3, "n": 4, "n_pos": 2, "protocol": "p", "roc_auc": 0.75,
                         "roc_auc_sd": float("nan"), "roc_auc_ci_lo": 0.5, "roc_auc_ci_hi": 1.0}])
    pred = pd.DataFrame({"id": list("wxyz"), "y_true": [0, 1, 0, 1], "feature_set": fs, "classifier": "svm",
                         "repeat": 0, "fold": [0, 0, 1, 1], "score": [0.1, 0.8, 0.6, 0.4],
                         "threshold": [0.5, 0.5, 0.3, 0.3]})
    return res, pred


def test_run_folder_round_trip_and_validation(tmp_path):
    res, pred = _rows()
    folder = write_run(tmp_path / "r", res, pred, {"seed": 1})
    raw = json.loads((folder / "results.json").read_text())
    assert isinstance(raw, list) and raw[0]["roc_auc_sd"] is None  # NaN -> null
    run = read_run(folder)
    assert run.results.loc[0, "roc_auc"] == 0.75 and list(run.predictions["id"]) == list("wxyz")
    assert run.provenance["seed"] == 1 and "versions" in run.provenance and "created" in run.provenance
    with pytest.raises(DataError, match="kind"):
        write_run(tmp_path / "bad", res.assign(kind="cnn"), pred, {})
    with pytest.raises(DataError, match="lack"):
        write_run(tmp_path / "bad", res.drop(columns="roc_auc_ci_lo"), pred, {})
    with pytest.raises(DataError, match="repeat"):
        write_run(tmp_path / "bad", pd.concat([res, res]), pred, {})
    with pytest.raises(DataError, match="not a run folder"):
        read_run(tmp_path)
    # merging two runs with the same row names keeps them apart
    write_run(tmp_path / "r2", res, pred, {})
    runs, merged, mpred = read_runs([tmp_path / "r", tmp_path / "r2"])
    assert list(merged["feature_set"]) == ["a", "a@r2"] and set(mpred["feature_set"]) == {"a", "a@r2"}


def test_summary_from_finetune_style_predictions(tmp_path):
    res, pred = _rows("finetune:resnet18", "finetuned")
    rows = summarise_predictions(pred, {("finetune:resnet18", "svm"): {"kind": "finetuned"}}, protocol="p",
                                 n_boot=100)
    assert rows.loc[0, "kind"] == "finetuned" and rows.loc[0, "n"] == 4
    # fold 0: scores (0.1 | 0.8) vs labels (0 | 1) -> AUC 1; fold 1: (0.6 | 0.4) -> AUC 0
    assert rows.loc[0, "roc_auc"] == pytest.approx(0.5)
    assert rows.loc[0, "accuracy_youden"] == pytest.approx(np.mean([1.0, 0.5]))


# ---------------------------------------------------------------------------- demo and CLI


def test_demo_evaluation_writes_a_report(tmp_path, torch_home, monkeypatch):
    from featurekit.data.phantom import make_phantom
    from featurekit.extraction.pipeline import extract
    from featurekit.handcrafted import GaborFeatures

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    ds = make_phantom(n_per_class=12, size=64)
    gabor = GaborFeatures(frequencies=(0.25, 0.1), empty_mask="whole")
    result = extract(ds, ["mobilenet_v2:features.4,features.14"], [gabor],
                     cache=tmp_path / "ph.h5", weights="imagenet", size=64, progress=False)
    report = run_demo_evaluation(ds, result, tmp_path / "demo", progress=False, cv="3")
    assert report == tmp_path / "demo" / "report.html" and report.is_file()
    res = read_run(tmp_path / "demo").results
    assert set(res["kind"]) == {"handcrafted", "deep", "fused", "selected"}
    # layers by depth, not alphabetically ("features.14" < "features.4" as text)
    assert list(res[res["kind"] == "deep"]["feature_set"]) == ["mobilenet_v2/features.4", "mobilenet_v2/features.14"]
    fused = res[res["kind"] == "fused"]["feature_set"].iloc[0]
    best = res[res["kind"] == "deep"].sort_values("roc_auc_pooled").iloc[-1]["feature_set"]
    assert fused == f"{best}+gabor"


def test_cli_evaluate_needs_feature_sets(capsys):
    assert main(["evaluate", "phantom", "--positive", "malignant"]) == 2
    assert "--features" in capsys.readouterr().err


# ---------------------------------------------------------------------------- BUSI end to end


LAYERS = "mobilenet_v2:features.7,features.14,features.18"


@pytest.fixture(scope="module")
def busi_run(busi_dir, torch_home, tmp_path_factory):
    """`featurekit evaluate` then `featurekit report` on 24 benign + 24 malignant BUSI images."""
    tmp = tmp_path_factory.mktemp("busi")
    rows = ["path,label,mask"]
    for label in ("benign", "malignant"):
        for k in range(1, 25):
            img = busi_dir / label / f"{label} ({k}).png"
            masks = sorted(busi_dir.joinpath(label).glob(f"{label} ({k})_mask*.png"))
            rows.append(f'"{img}",{label},"{";".join(str(m) for m in masks)}"')
    manifest = tmp / "busi48.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp / "runs" / "busi48"
    argv = ["evaluate", str(manifest), "--positive", "malignant", "--roi", "mask",
            "--features", "gabor,glcm", "--features", LAYERS, "--fuse", "mobilenet_v2:features.14+gabor",
            "--late-fusion", "vote", "--classifier", "logreg,knn", "--cv", "5", "--size", "96",
            "--cache", str(tmp / "busi48.h5"), "--out", str(out), "--n-boot", "300", "--quiet"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(torch_home))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main(argv)
        rc_report = main(["report", str(out), "--out", str(tmp / "report" / "busi.html")])
    return {"rc": rc, "rc_report": rc_report, "stdout": buf.getvalue(), "out": out, "tmp": tmp,
            "manifest": manifest}


def test_busi_evaluate_writes_every_row(busi_run):
    assert busi_run["rc"] == 0, busi_run["stdout"]
    out = busi_run["out"]
    for name in ("results.csv", "results.json", "predictions.csv", "provenance.json", "comparisons.csv"):
        assert (out / name).is_file(), name
    run = read_run(out)
    res = run.results
    sets = ["gabor", "glcm", "mobilenet_v2/features.7", "mobilenet_v2/features.14", "mobilenet_v2/features.18",
            "mobilenet_v2/features.14+gabor", "vote(mobilenet_v2/features.14+gabor)"]
    assert sorted(zip(res["feature_set"], res["classifier"])) == sorted(
        [(s, c) for s in sets for c in ("logreg", "knn")] + [("selected", "best of 14 by ROC AUC")])
    kinds = dict(zip(res["feature_set"], res["kind"]))
    assert [kinds[s] for s in sets] == ["handcrafted"] * 2 + ["deep"] * 3 + ["fused"] * 2
    deep = res[res["kind"] == "deep"].set_index("feature_set")
    from featurekit.models import resolve_spec

    _, layers, _ = resolve_spec(LAYERS)
    for layer in layers:
        r = deep.loc[f"mobilenet_v2/{layer.name}"]
        r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
        assert r["model"] == "mobilenet_v2" and r["layer"] == layer.name and r["layer_index"] == layer.index
    assert (res["n"] == 48).all() and (res["n_pos"] == 24).all()
    assert res["protocol"].eq("stratified 5-fold").all()
    assert res["roc_auc_pooled"].max() > 0.75  # real signal in the ImageNet features
    for c in ("roc_auc", "roc_auc_sd", "roc_auc_ci_lo", "roc_auc_ci_hi", "f1_youden", "mcc_youden_ci_lo"):
        assert res[c].notna().all(), c
    # predictions: every image once per row, threshold constant within a fold
    pred = run.predictions
    assert pred.groupby(["feature_set", "classifier"])["id"].nunique().eq(48).all()
    assert pred.groupby(["feature_set", "classifier", "fold"])["threshold"].nunique().eq(1).all()
    # the printed table names every feature set
    for s in sets:
        assert s in busi_run["stdout"]


def test_busi_provenance(busi_run):
    from featurekit.data import load_dataset

    prov = read_run(busi_run["out"]).provenance
    ds = load_dataset(busi_run["manifest"], positive="malignant", roi="mask")
    assert prov["dataset"]["fingerprint"] == ds.fingerprint()
    assert prov["dataset"]["counts"] == {"benign": 24, "malignant": 24}
    assert prov["positive"] == "malignant" and prov["seed"] == 0 and prov["cv"] == "5"
    cnn = [e for e in prov["entries"] if e["family"] == "cnn"]
    assert len(cnn) == 3 and all(e["weights_sha256"].startswith("b0353104") for e in cnn)
    assert all(e["weights"].startswith("imagenet") and e["input_size"] == 96 for e in cnn)
    assert {e["key"] for e in prov["entries"] if e["family"] != "cnn"} == {"gabor", "glcm"}
    assert "evaluate" in prov["command"] and "--fuse" in prov["command"]
    for lib in ("featurekit", "scikit-learn", "torch", "numpy"):
        assert lib in prov["versions"]
    assert not math.isnan(pd.Timestamp(prov["created"]).timestamp())


def test_busi_report(busi_run):
    from html.parser import HTMLParser

    assert busi_run["rc_report"] == 0
    html_path = busi_run["tmp"] / "report" / "busi.html"
    md_path = busi_run["tmp"] / "report" / "busi.md"
    assert html_path.is_file() and md_path.is_file()
    text = html_path.read_text()
    HTMLParser().feed(text)
    for needle in ("Layer-wise performance", "mobilenet_v2/features.14+gabor", "DeLong", "Provenance", "b0353104"):
        assert needle in text, needle
    assert text.count("data:image/png;base64,") >= 4


def test_holdout_protocol_pools_each_repeat_test_set(synthetic):
    cache, y = synthetic
    ev = evaluate_features(cache.path, ["gabor"], ["logreg"], "holdout:0.25x6", positive="malignant", n_boot=200)
    row = ev.results.iloc[0]
    assert row["protocol"] == "stratified holdout 0.25 x6" and row["n_folds"] == 6 and row["n_repeats"] == 6
    sizes = ev.predictions.groupby("repeat").size()
    assert (sizes == 15).all()  # ceil(0.25 * 60) test images per repeat
    assert row["n"] == ev.predictions["id"].nunique() < 60 + 1
    assert row["roc_auc_ci_lo"] < row["roc_auc_pooled"] < row["roc_auc_ci_hi"]
    assert np.isfinite(row["roc_auc_sd"])


def test_paired_delong_comparison_of_rows():
    from featurekit.evaluation.results.comparison import compare_aucs, is_nested, parts_of
    from featurekit.evaluation.stats.delong import NestedModelWarning, delong_roc_test

    rng = np.random.default_rng(4)
    n = 50
    y = np.arange(n) % 2
    ids = [f"s{i}" for i in range(n)]
    frames = []
    for fs, noise in (("a", 0.5), ("b", 1.5), ("a+b", 0.4)):
        for r in range(2):  # two repeats: the comparison uses the mean score per sample
            frames.append(pd.DataFrame({"id": ids, "y_true": y, "feature_set": fs, "classifier": "svm",
                                        "repeat": r, "fold": np.arange(n) % 5,
                                        "score": y + rng.normal(0, noise, n), "threshold": 0.5}))
    pred = pd.concat(frames, ignore_index=True)
    with pytest.warns(NestedModelWarning, match="2 of the AUC comparisons"):
        comp = compare_aucs(pred, parts={("a+b", "svm"): "a+b"})  # a row's parts come from its record
    assert len(comp) == 3
    ab = comp[(comp["a_feature_set"] == "a") & (comp["b_feature_set"] == "b")].iloc[0]
    mean = {fs: g.groupby("id")["score"].mean().loc[ids].to_numpy() for fs, g in pred.groupby("feature_set")}
    ref = delong_roc_test(y, mean["a"], mean["b"])
    assert ab["delta_auc"] == pytest.approx(ref.delta) and ab["p_value"] == pytest.approx(ref.p_value)
    assert ab["ci_lo"] == pytest.approx(ref.ci_low) and not ab["nested"]
    assert ab["delta_auc"] > 0 and ab["p_value"] < 0.05
    assert comp["nested"].sum() == 2
    assert parts_of("vote(x+y)", "x+y") == {"x", "y"} and parts_of("vote(x+y)") == {"vote(x+y)"}  # never the name
    assert is_nested(("x", "svm"), ("x+y", "svm"), {("x+y", "svm"): "x+y"})
    assert not is_nested(("x", "svm"), ("x+y", "svm"))  # without its record a row is only itself
    assert not is_nested(("x", "svm"), ("x+y", "knn"))
