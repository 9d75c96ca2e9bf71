"""Multi-class fine-tuning: three BUSI classes, no positive class.

A 12-image BUSI copy (4 benign, 4 malignant, 4 normal), a random-init small-input
ResNet-18 at 32 px and one epoch: seconds per run on two CPU cores.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import copy_busi
from sklearn.metrics import roc_auc_score

from featurekit.cli import main
from featurekit.data import load_dataset
from featurekit.evaluation.results.summary import PREDICTION_COLUMNS, proba_column, summarise_predictions
from featurekit.finetune import FinetuneConfig, Predictor, cross_validate, finetune
from featurekit.finetune.augment import BaseImages, View
from featurekit.finetune.modeling import starting_point
from featurekit.finetune.training import predict_view, train

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

CLASSES = ["benign", "malignant", "normal"]
SMALL = dict(model="resnet18", weights="none", small_input=True, size=32, epochs=1, batch_size=8,
             optimizer="adam", lr=1e-3, scheduler="none", augment="none", val_fraction=0.5, patience=0,
             device="cpu")
SMALL_FLAGS = ["--model", "resnet18", "--weights", "none", "--small-input", "--size", "32", "--epochs", "1",
               "--batch-size", "8", "--optimizer", "adam", "--scheduler", "none", "--augment", "none",
               "--val-fraction", "0.5", "--device", "cpu"]


@pytest.fixture(scope="module")
def busi3_dir(busi_dir, tmp_path_factory):
    return copy_busi(busi_dir, tmp_path_factory.mktemp("busi3"), {c: range(1, 5) for c in CLASSES})


@pytest.fixture(scope="module")
def busi3(busi3_dir):
    ds = load_dataset(busi3_dir)
    assert ds.class_names == CLASSES and ds.positive is None and np.bincount(ds.labels).tolist() == [4, 4, 4]
    return ds


@pytest.fixture(scope="module")
def cv3(busi3, tmp_path_factory):
    run = tmp_path_factory.mktemp("cv3") / "run"
    res = cross_validate(busi3, FinetuneConfig(**SMALL, monitor="val_auc"), "2", out=run, n_boot=50,
                         progress=False, command="test")
    return res, run


def test_three_classes_without_positive_write_multiclass_predictions(cv3, busi3):
    res, run = cv3
    pred = pd.read_csv(run / "predictions.csv")
    probas = [proba_column(c) for c in CLASSES]
    assert list(pred.columns) == PREDICTION_COLUMNS + probas
    assert sorted(pred["id"]) == sorted(busi3.ids)  # every image tested once
    truth = dict(zip(busi3.ids, busi3.labels))
    assert pred["y_true"].tolist() == [truth[i] for i in pred["id"]]  # the class codes
    assert pred["score"].isna().all() and pred["threshold"].isna().all()
    p = pred[probas].to_numpy()
    assert (p >= 0).all() and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    for _, fold in pred.groupby("fold"):  # stratified on the three classes: 2 of each per test fold
        assert np.bincount(fold["y_true"], minlength=3).tolist() == [2, 2, 2]


def test_three_class_rows_are_the_evaluation_packages(cv3):
    res, run = cv3
    rows = pd.read_csv(run / "results.csv")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["n"], row["n[benign]"], row["n[malignant]"], row["n[normal]"]) == (12, 4, 4, 4)
    assert "n_pos" not in rows.columns and "accuracy_youden" not in rows.columns
    for col in ("roc_auc", "f1_macro", "precision_macro", "recall_macro", "kappa", "sensitivity[normal]",
                "roc_auc[malignant]"):
        assert f"{col}_ci_lo" in rows.columns and np.isfinite(row[f"{col}_pooled"]), col
    pred = pd.read_csv(run / "predictions.csv")
    again = summarise_predictions(pred, protocol=row["protocol"], n_boot=50).iloc[0]
    for col in ("roc_auc_pooled", "roc_auc_ci_lo", "accuracy_pooled", "f1_macro_pooled", "sensitivity[benign]"):
        assert again[col] == pytest.approx(row[col]), col
    y, probs = pred["y_true"].to_numpy(), pred[[proba_column(c) for c in CLASSES]].to_numpy()
    assert row["roc_auc_pooled"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def test_three_class_provenance_names_task_and_monitor(cv3):
    _, run = cv3
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["task"] == "multiclass" and prov["classes"] == CLASSES and prov["positive"] is None
    assert "one_vs_rest" not in prov and prov["samples"] == {"n": 12, "n[benign]": 4, "n[malignant]": 4,
                                                             "n[normal]": 4}
    assert prov["monitor"]["criterion"] == "val_auc" and "macro one-vs-rest ROC AUC" in prov["monitor"]["meaning"]
    assert all(f["threshold"] is None and f["threshold_on"] is None for f in prov["folds"])


def test_the_monitored_auc_is_the_macro_one_vs_rest_auc(busi3):
    """What early stopping and the kept epoch read (val_auc) equals scikit-learn's macro one-vs-rest AUC of
    the validation predictions, not one class's AUC."""
    cfg = FinetuneConfig(**{**SMALL, "monitor": "val_auc", "epochs": 1})
    start = starting_point(cfg, CLASSES)
    base = BaseImages(busi3, start.preprocessing, cache=True, progress=False)
    labels = np.asarray(busi3.labels)
    val = np.array([0, 1, 4, 5, 8, 9])  # two of each class
    fit = np.setdiff1d(np.arange(12), val)
    tr = train(start.model, base, fit, val, labels, cfg, progress=False)
    probs, y, _ = predict_view(tr.model, View(base, val, labels), 8, torch.device("cpu"), False)
    macro = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert tr.history[0]["val_auc"] == pytest.approx(macro)
    one_class = [roc_auc_score(y == k, probs[:, k]) for k in range(3)]
    assert tr.history[0]["val_auc"] == pytest.approx(np.mean(one_class))


def test_positive_with_three_classes_keeps_the_binary_view(busi3):
    ds = busi3.with_positive("malignant")
    with pytest.warns(UserWarning, match="one-vs-rest"):
        res = cross_validate(ds, FinetuneConfig(**SMALL), "2", n_boot=20, progress=False)
    pred = res.predictions
    assert list(pred.columns) == PREDICTION_COLUMNS
    truth = dict(zip(busi3.ids, busi3.labels))
    assert pred["y_true"].tolist() == [int(truth[i] == 1) for i in pred["id"]]
    assert pred["score"].between(0, 1).all() and pred["threshold"].notna().all()
    prov = res.provenance
    assert prov["task"] == "binary" and prov["positive"] == "malignant" and prov["one_vs_rest"] == CLASSES
    assert "ROC AUC of 'malignant' against the rest" in prov["monitor"]["meaning"] or \
        prov["monitor"]["criterion"] == "val_loss"
    assert res.rows.iloc[0]["n_pos"] == 4 and "f1_macro" not in res.rows.columns


def test_single_run_and_predict_give_every_class(busi3, busi3_dir, tmp_path, capsys):
    ckpt = tmp_path / "mc.pt"
    res = finetune(busi3, FinetuneConfig(**SMALL, monitor="val_auc"), out=ckpt, progress=False)
    metrics = res.meta["metrics"]
    assert metrics["task"] == "multiclass" and "macro one-vs-rest" in metrics["monitor_meaning"]
    table = Predictor.load(ckpt).predict(busi3)
    cols = [f"p_{c}" for c in CLASSES]
    assert list(table.columns) == ["id", "true_label", *cols, "predicted"]  # no positive: no y_true column
    p = table[cols].to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert table["predicted"].tolist() == [CLASSES[k] for k in p.argmax(axis=1)]
    out = tmp_path / "pred.csv"
    assert main(["predict", str(ckpt), str(busi3_dir), "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    from_cli = pd.read_csv(out, keep_default_na=False)
    assert list(from_cli.columns) == list(table.columns)
    assert np.allclose(from_cli[cols].to_numpy(), p, atol=1e-6)
    # a plain folder of new images (no class subfolders): unlabelled, predicted all the same
    import shutil

    new = tmp_path / "new_images"
    new.mkdir()
    for c in CLASSES:
        shutil.copy(busi3_dir / c / f"{c} (1).png", new / f"{c} (1).png")
    flat = tmp_path / "flat.csv"
    assert main(["predict", str(ckpt), str(new), "--device", "cpu", "--out", str(flat), "--quiet"]) == 0
    unlabelled = pd.read_csv(flat, keep_default_na=False).set_index("id")
    assert sorted(unlabelled.index) == sorted(f"{c} (1)" for c in CLASSES)
    assert (unlabelled["true_label"] == "").all()
    labelled = from_cli.set_index("id")
    for c in CLASSES:
        np.testing.assert_allclose(unlabelled.loc[f"{c} (1)", cols].to_numpy(dtype=float),
                                   labelled.loc[f"{c}/{c} (1)", cols].to_numpy(dtype=float), atol=1e-6)


def test_finetune_command_three_classes_cv(busi3_dir, tmp_path, capsys):
    rc = main(["finetune", str(busi3_dir), *SMALL_FLAGS, "--monitor", "val_loss", "--cv", "2", "--n-boot", "20",
               "--runs-dir", str(tmp_path), "--name", "mc"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 classes (benign, malignant, normal): multi-class" in out and "macro AUC (one-vs-rest)" in out
    prov = json.loads((tmp_path / "mc" / "provenance.json").read_text())
    assert prov["task"] == "multiclass" and prov["monitor"]["criterion"] == "val_loss"
    assert "cross-entropy over the 3 classes" in prov["monitor"]["meaning"]


def test_report_of_a_three_class_finetuning_names_the_monitored_curve(cv3, tmp_path):
    from featurekit.report.build import build_report

    build_report([cv3[1]], out=tmp_path / "r.html")
    md = (tmp_path / "r.md").read_text()
    caption = next(line for line in md.splitlines() if line.startswith("*Loss and"))
    assert caption.startswith("*Loss and macro ROC AUC (one-vs-rest) per epoch")
