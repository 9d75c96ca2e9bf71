"""The report says what was done: protocol wording, accuracy, the DeLong colour scale, training curves,
reference rows on the same or other data."""

import math

import numpy as np
import pandas as pd
import pytest

from featurekit.evaluation.results.runfolder import read_run, write_run
from featurekit.evaluation.results.summary import summarise_predictions
from featurekit.report import figures as report_figures
from featurekit.report.build import build_report
from featurekit.report.tables import results_table, summary_table, text_table, vs_best_table
from featurekit.report.wording import describe_run

N = 40


def _predictions(name, y, folds, repeats=1, seed=0, classifier="logreg", test=None):
    """Out-of-fold style predictions: each repeat scores ``test`` (default: every sample, in ``folds`` folds)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(y)) if test is None else np.asarray(test)
    parts = []
    for r in range(repeats):
        for f in range(folds):
            rows = idx[f::folds]
            parts.append(pd.DataFrame({"id": [f"s{i}" for i in rows], "y_true": y[rows], "feature_set": name,
                                       "classifier": classifier, "repeat": r, "fold": f,
                                       "score": np.clip(0.5 + 0.35 * (y[rows] - 0.5) + rng.normal(0, 0.2, rows.size),
                                                        0, 1), "threshold": 0.45}))
    return pd.concat(parts, ignore_index=True)


def _run(folder, provenance, sets=("a", "b"), folds=5, repeats=1, test=None, kind="deep", comparisons=None):
    y = np.arange(N) % 2
    pred = pd.concat([_predictions(s, y, folds, repeats, seed=i, test=test) for i, s in enumerate(sets)],
                     ignore_index=True)
    rows = summarise_predictions(pred, {(s, "logreg"): {"kind": kind} for s in sets}, n_boot=50,
                                 protocol=str(provenance.get("protocol", "")))
    return write_run(folder, rows, pred, {"positive": "malignant", "seed": 0, **provenance}, comparisons=comparisons)


def test_a_merged_report_marks_nested_pairs_within_the_fusions_own_run(tmp_path):
    """Two runs with rows of the same names: the later run's rows become name@run, and so do the parts
    of its fusions, so a fusion is nested in its own run's part, not in the other run's namesake."""
    from featurekit.evaluation.results.comparison import is_nested
    from featurekit.evaluation.results.runfolder import read_runs

    prov = {"cv": "5", "protocol": "stratified 5-fold"}
    _run(tmp_path / "A", prov, sets=("a", "b"))
    y = np.arange(N) % 2
    pred = pd.concat([_predictions(s, y, 5, seed=i) for i, s in enumerate(("a", "b", "a+b"))], ignore_index=True)
    meta = {("a", "logreg"): {"kind": "deep"}, ("b", "logreg"): {"kind": "deep"},
            ("a+b", "logreg"): {"kind": "fused", "parts": "a+b"}}
    write_run(tmp_path / "B", summarise_predictions(pred, meta, n_boot=0, protocol="stratified 5-fold"), pred,
              {"positive": "malignant", "seed": 0, **prov})
    _, results, _ = read_runs([tmp_path / "A", tmp_path / "B"])
    parts = {(r["feature_set"], r["classifier"]): r.get("parts", "") for _, r in results.iterrows()}
    assert parts[("a+b", "logreg")] == "a@B+b@B"
    assert is_nested(("a+b", "logreg"), ("a@B", "logreg"), parts)
    assert not is_nested(("a+b", "logreg"), ("a", "logreg"), parts)  # run A's row: not a part of B's fusion


# ------------------------------------------------------------------ one function: provenance -> phrases
PROTOCOLS = {
    "k-fold": ({"cv": "5", "protocol": "stratified 5-fold", "options": {"youden": "inner", "youden_cv": 3}}, 40,
               ["pooled out-of-fold predictions of stratified 5-fold CV (each sample predicted once)",
                "over the 5 test folds", "chosen by an inner 3-fold CV of the training folds"]),
    "repeated": ({"cv": "5x3", "protocol": "stratified 5-fold x3", "options": {"youden": "train"}}, 40,
                 ["stratified 5-fold CV repeated 3 times (each sample predicted 3 times",
                  "over the 15 test folds (5 folds × 3 repeats)",
                  "chosen on the training folds' own scores"]),
    "holdout": ({"cv": "holdout:0.3x30", "protocol": "stratified holdout 0.3 x30", "options": {"youden": "inner"}},
                40, ["over 30 random stratified holdout splits (test fraction 0.3)", "over the 30 holdout test sets",
                     "inner 3-fold CV of the splits' training parts"]),
    "predefined, val split": ({"cv": "predefined", "protocol": "predefined split", "kind": "finetuned",
                               "validation": "predefined val", "options": {"youden": "val"}}, 156,
                              ["on the test split (n = 156)", "Mean ± sd: on the one test split (no sd)",
                               "chosen on the validation split"]),
    "predefined, no val split": ({"cv": "predefined", "protocol": "predefined split",
                                  "samples": {"train": 546, "val": 0, "test": 156},
                                  "options": {"youden": "inner", "youden_cv": 3}}, 156,
                                 ["on the test split (n = 156)", "chosen by an inner 3-fold CV of the training split"]),
    "predefined, val merged": ({"cv": "predefined", "protocol": "predefined split (val merged)",
                                "options": {"youden": "train"}}, 156,
                               ["on the test split (n = 156)", "chosen on the training split's own scores"]),
}


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_wording_follows_the_protocol(name):
    provenance, n, expected = PROTOCOLS[name]
    w = describe_run(provenance, pd.DataFrame({"n": [n, n]}))
    text = " ".join([w.sentence(), w.scores, w.first_repeat])
    for phrase in expected:
        assert phrase in text, (phrase, text)
    single = provenance["cv"] in ("predefined",) or provenance["cv"].startswith("holdout")
    if single:  # a test split or holdout sets: nothing is "out-of-fold" or "every sample once"
        assert "out-of-fold" not in text and "every sample" not in text
    if provenance["cv"] == "predefined" and "val merged" not in provenance["protocol"] \
            and provenance.get("validation") != "predefined val":
        assert "validation split" not in w.threshold  # no val split: the threshold cannot come from one


def test_wording_read_from_the_results_protocol_when_provenance_lacks_cv():
    w = describe_run({}, pd.DataFrame({"n": [60], "protocol": ["stratified 5-fold x2"]}))
    assert "repeated 2 times" in w.estimate and "each sample predicted twice" in w.estimate


def test_grouped_wording_says_what_a_group_is_only_when_the_data_say_it(tmp_path, mias_dir):
    from featurekit.data import group_near_duplicates, load_mias
    from featurekit.orchestration import evaluate_features

    base = {"cv": "5", "protocol": "stratified 5-fold (grouped)", "grouped": True}
    said = {kind: describe_run({**base, "dataset": {"group_kind": kind}} if kind else base).estimate
            for kind in ("patient", "near-duplicate images", None)}
    assert "stratified 5-fold CV, grouped by patient (each sample" in said["patient"]
    assert "grouped by near-duplicate images" in said["near-duplicate images"]
    assert "stratified 5-fold CV, grouped (each sample" in said[None] and "patient" not in said[None]
    # what the loaders and the duplicate grouping record, carried into the provenance
    from conftest import random_dataset

    ds = random_dataset(n=12, size=16)
    assert ds.group_kind is None
    dup = group_near_duplicates(ds)
    assert dup.group_kind == "near-duplicate images" and dup.subset(np.arange(6)).group_kind == dup.group_kind
    patients = ds.with_groups([str(i // 2) for i in range(12)], "patient")
    assert group_near_duplicates(patients).group_kind == "patient, merged with near-duplicate images"
    ev = evaluate_features(dup, ["glcm"], cv="3", n_boot=0, cache=tmp_path / "c.h5", progress=False)
    assert ev.provenance["dataset"]["group_kind"] == "near-duplicate images"
    again = evaluate_features(tmp_path / "c.h5", ["glcm"], cv="3", n_boot=0, progress=False)
    assert again.provenance["dataset"]["group_kind"] == "near-duplicate images"
    assert describe_run(ev.provenance).estimate == describe_run(again.provenance).estimate
    assert "grouped by near-duplicate images" in describe_run(ev.provenance).estimate
    assert load_mias(mias_dir).group_kind == "patient"  # the two films of a patient


# ------------------------------------------------------------------ the report and the terminal table
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wording")
    test = np.arange(N)[N // 2:]  # a predefined split: the second half is the test split
    split = _run(tmp / "split", {"cv": "predefined", "protocol": "predefined split", "kind": "finetuned",
                                 "validation": "predefined val", "options": {"youden": "val"},
                                 "dataset": {"name": "breastmnist"}}, folds=1, test=test, kind="finetuned",
                 sets=("r18",))
    kfold = _run(tmp / "kfold", {"cv": "5x3", "protocol": "stratified 5-fold x3",
                                 "options": {"youden": "inner", "youden_cv": 3}, "dataset": {"name": "busi"}},
                 repeats=3, sets=("a", "b", "c"))
    return split, kfold


def test_a_test_split_report_says_test_split_never_out_of_fold(runs, tmp_path):
    split, _ = runs
    build_report([split], out=tmp_path / "r.html")
    md = (tmp_path / "r.md").read_text()
    assert f"on the test split (n = {N // 2})" in md
    assert "chosen on the validation split" in md
    for wrong in ("out-of-fold", "every sample once", "k-fold", "training folds"):
        assert wrong not in md, wrong


def test_a_merged_report_words_each_run_by_its_own_protocol(runs, tmp_path):
    split, kfold = runs
    build_report([split, kfold], out=tmp_path / "r.html")
    md = (tmp_path / "r.md").read_text()
    assert f"Run split: Pooled estimates and their 95% intervals: on the test split (n = {N // 2})" in md
    assert "Run kfold: Pooled estimates and their 95% intervals: pooled out-of-fold predictions of stratified " \
           "5-fold CV repeated 3 times" in md


def test_accuracy_in_the_terminal_table_and_the_report_tables(runs):
    _, kfold = runs
    run = read_run(kfold)
    res = run.results
    table = text_table(res, provenance=run.provenance)
    header = table.splitlines()[0].split()
    assert "acc" in header
    for _, r in res.iterrows():
        line = next(ln for ln in table.splitlines() if ln.startswith(r["feature_set"] + " "))
        assert f"{r['accuracy']:.3f}" in line
    assert "pooled out-of-fold predictions of stratified 5-fold CV repeated 3 times" in table
    assert "@Youden: threshold chosen by an inner 3-fold CV of the training folds" in table
    for t in (results_table(res), summary_table(res.assign(kind="deep"), "roc_auc_pooled")):
        col = t.header.index("accuracy")
        assert {row[col] for row in t.rows} <= {f"{a:.3f}" for a in res["accuracy"]}


# ------------------------------------------------------------------ DeLong: a colour scale over the range present
def test_pvalue_colour_scale_spans_the_p_values_present(monkeypatch):
    drawn = []
    real = report_figures._png
    monkeypatch.setattr(report_figures, "_png", lambda fig: drawn.append(fig) or real(fig))
    p = np.array([[1.0, 0.19, 0.6], [0.19, 1.0, 0.93], [0.6, 0.93, 1.0]])
    report_figures.pvalue_figure(["x", "y", "z"], p, np.zeros((3, 3), bool))
    image = drawn[0].axes[0].get_images()[0]
    lo, hi = image.get_clim()
    assert lo == pytest.approx(-math.log10(0.93)) and hi == pytest.approx(-math.log10(0.19))
    assert report_figures.pvalue_scale(p) == (lo, hi)
    strong = p.copy()
    strong[0, 1] = strong[1, 0] = 1e-4
    assert report_figures.pvalue_scale(strong)[1] == pytest.approx(4.0)  # the scale follows the data up


def test_comparison_table_shows_adjusted_p_and_old_comparisons_still_render():
    from featurekit.evaluation.stats.multiplicity import adjust_pvalues

    old = pd.DataFrame([{"a_feature_set": "a", "a_classifier": "logreg", "b_feature_set": o, "b_classifier": "logreg",
                         "auc_a": 0.8, "auc_b": 0.7, "delta_auc": d, "ci_lo": d - 0.1, "ci_hi": d + 0.1, "se": 0.05,
                         "z": 2.0, "p_value": p, "nested": False}
                        for o, d, p in (("b", 0.1, 0.04), ("c", 0.05, 0.3))])  # comparisons.csv before adjustment
    table = vs_best_table(old, ("a", "logreg"))
    i = next(k for k, h in enumerate(table.header) if h.startswith("p adjusted"))
    assert table.header[i] == "p adjusted (holm, family of 2 comparisons)"
    want, _ = adjust_pvalues(np.array([0.04, 0.3]), "holm")
    shown = {row[0]: row[i] for row in table.rows}
    assert shown == {"b · logreg": f"{want[0]:.3f}", "c · logreg": f"{want[1]:.3f}"}


def test_the_delong_heatmap_shows_adjusted_p_values(runs, tmp_path, monkeypatch):
    from featurekit.evaluation.results.comparison import compare_aucs, pvalue_matrix
    from featurekit.report import build as report_module

    seen = {}
    real = report_module.pvalue_figure

    def keep(labels, p, nested, scores, adjusted, *task):
        seen.update(p=p, adjusted=adjusted)
        return real(labels, p, nested, scores, adjusted, *task)

    monkeypatch.setattr(report_module, "pvalue_figure", keep)
    _, kfold = runs
    build_report([kfold], out=tmp_path / "r.html", top=3)
    run = read_run(kfold)
    keys = [("a", "logreg"), ("b", "logreg"), ("c", "logreg")]
    comps = compare_aucs(run.predictions, keys, warn=False)
    order = [tuple(k) for k in run.results.sort_values("roc_auc_pooled", ascending=False)[["feature_set", "classifier"]]
             .itertuples(index=False)]
    want, _ = pvalue_matrix(comps, order, column="p_adjusted")
    assert seen["adjusted"].startswith("holm") and np.allclose(seen["p"], want, equal_nan=True)
    assert "multiplicity" in (tmp_path / "r.md").read_text()


# ------------------------------------------------------------------ training curves
def test_training_curves_name_their_axes_and_mark_the_selected_epoch(tmp_path, monkeypatch):
    y = np.arange(N) % 2
    pred = _predictions("finetune:net", y, 2)
    rows = summarise_predictions(pred, {("finetune:net", "logreg"): {"kind": "finetuned"}}, n_boot=0)
    curves = pd.DataFrame([{"fold": f, "repeat": 0, "epoch": e, "split": s, "loss": 1 / (e + 1) + (s == "val") * 0.1,
                            "metric": 0.6 + 0.03 * e} for f in range(2) for e in range(1, 9) for s in ("train", "val")])
    best = {0: 3, 1: 6}
    folds = [{"repeat": 0, "fold": f, "best_epoch": e} for f, e in best.items()]
    write_run(tmp_path / "ft", rows, pred, {"cv": "2", "kind": "finetuned", "folds": folds},
              training_curves=curves)
    drawn = []
    real = report_figures._png
    monkeypatch.setattr(report_figures, "_png", lambda fig: drawn.append(fig) or real(fig))
    fig = report_figures.training_curves_figure(read_run(tmp_path / "ft"))
    loss, metric = drawn[-1].axes[:2]
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("epoch", "loss")
    assert (metric.get_xlabel(), metric.get_ylabel()) == ("epoch", "ROC AUC")
    for ax, col in ((loss, "loss"), (metric, "metric")):
        dots = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None" and ln.get_color() == "black"]
        marked = sorted((int(x), float(v)) for ln in dots for x, v in zip(ln.get_xdata(), ln.get_ydata()))
        want = sorted((e, float(v)) for f, e in best.items()
                      for v in curves[(curves["fold"] == f) & (curves["epoch"] == e)][col])
        assert marked == want  # every fold's lines, at the epoch whose weights it kept
    assert "selected epoch (weights kept)" in [t.get_text() for t in loss.get_legend().get_texts()]
    assert "black dots" in fig.caption


# ------------------------------------------------------------------ reference rows
def _refs(dataset):
    return {"citation": "Someone A, Other B. A title. Journal (2020)", "paper_data": "BreastMNIST (780 images)",
            "paper_dataset": dataset,
            "reported": [{"label": "their ResNet-18", "ours": ["r18"], "accuracy": 0.923, "roc_auc": 0.957}]}


@pytest.mark.parametrize("dataset, same", [("breastmnist", True), ("medmnist_other", False), ("", False)])
def test_reference_rows_say_same_or_other_data_and_look_different(runs, tmp_path, dataset, same):
    split, _ = runs
    html = build_report([split], out=tmp_path / "r.html", references=_refs(dataset)).read_text()
    md = (tmp_path / "r.md").read_text()
    section = md.split("## Beside the paper")[1].split("\n## ")[0]
    ref = next(ln for ln in section.splitlines() if "their ResNet-18" in ln)
    want = "same data" if same else "other data"
    assert ref.startswith(f"| *paper: reported on the {want}" if same else f"| *paper: reported on {want}")
    assert ("other data" in ref) != same
    assert "| *their ResNet-18* | *0.923* |" in ref  # italic: not one of our rows
    ours = next(ln for ln in section.splitlines() if ln.startswith("| ours: split"))
    assert "*" not in ours
    assert html.count("<tr class='reference'>") == 1 and "tr.reference td{" in html
