"""Multi-class runs in the report and in ``featurekit evaluate``'s terminal table; binary runs unchanged."""

import re
import warnings

import numpy as np
import pytest
from _eval_helpers import make_cache, separable
from PIL import Image
from sklearn.metrics import confusion_matrix

from featurekit.cli import main
from featurekit.errors import DataError
from featurekit.evaluation.results.runfolder import read_run
from featurekit.evaluation.results.summary import class_probabilities_of
from featurekit.orchestration import evaluate_features
from featurekit.report import figures
from featurekit.report.build import build_report, text_table

CLASSES = ["benign", "malignant", "normal"]


def _evaluate(cache, out, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_features(cache.path, ["all"], ["logreg"], "3x2", n_boot=20, out=out, progress=False, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-class run (two handcrafted sets, two layers of a cached 'net', the selected row) and a binary one."""
    tmp = tmp_path_factory.mktemp("multiclass")
    n = 36
    codes = np.arange(n) % 3
    rng = np.random.default_rng(0)

    def features(shift, d):
        X = rng.normal(size=(n, d))
        X[:, 0] += shift * codes
        return X

    feats = {"glcm": features(1.5, 3), "gabor": features(0.4, 3), "net/block1": features(0.3, 4),
             "net/block2": features(1.0, 4)}
    mc = _evaluate(make_cache(tmp / "mc.h5", feats, labels=codes, class_names=CLASSES, positive=None), tmp / "mc")
    y = np.arange(n) % 2
    binary = {"gabor": separable(n, 4, 1.0, 0), "net/block1": separable(n, 4, 0.5, 1),
              "net/block2": separable(n, 4, 1.2, 2)}
    _evaluate(make_cache(tmp / "bin.h5", binary, labels=y), tmp / "binary", positive="malignant")
    return tmp, mc


def _md_table(md: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with ``first_header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header}"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_report_of_a_three_class_run_has_its_metrics_per_class_table_and_confusion_matrix(runs):
    tmp, mc = runs
    html = build_report(tmp / "mc", out=tmp / "mc_report" / "r.html")
    md = html.with_suffix(".md").read_text(encoding="utf-8")
    run = read_run(tmp / "mc")
    res = run.results.set_index("feature_set")
    sel = res.loc["selected"]
    # the wording: what the AUC is, what is predicted, which test compares rows; nothing binary left
    assert "3 classes (benign, malignant, normal): multi-class" in md
    assert "the macro one-vs-rest AUC" in md and "the predicted class is the most probable one" in md
    assert "## Statistical comparison (paired bootstrap of the macro-AUC difference)" in md
    assert "DeLong" not in md and "Youden" not in md and "| positive class |" not in md
    # the tables carry the multi-class metrics with their intervals, as results.csv has them
    summary = _md_table(md, "kind")
    assert summary[0][0] == "**selected**"
    assert f"{sel['kappa_pooled']:.3f} [{sel['kappa_ci_lo']:.3f}, {sel['kappa_ci_hi']:.3f}]" in summary[0][8]
    assert summary[0][-1] == "**36 (12 / 12 / 12)**"
    every = {r[0]: r for r in _md_table(md, "feature set")}
    assert set(every) == set(res.index)
    gabor = res.loc["gabor"]
    assert every["gabor"][5] == (f"{gabor['accuracy_pooled']:.3f} [{gabor['accuracy_ci_lo']:.3f}, "
                                 f"{gabor['accuracy_ci_hi']:.3f}]")
    # per class of the selected row: its AUC, sensitivity and specificity with their intervals
    per_class = _md_table(md, "class (selected")
    assert [r[0] for r in per_class] == CLASSES
    for r in per_class:
        for cell, metric in zip(r[2:], ("roc_auc", "sensitivity", "specificity")):
            m = f"{metric}[{r[0]}]"
            assert cell == f"{sel[m + '_pooled']:.3f} [{sel[m + '_ci_lo']:.3f}, {sel[m + '_ci_hi']:.3f}]"
    # the confusion matrix of the selected row: its first repeat, most probable class, as scikit-learn counts
    g = run.predictions[(run.predictions["feature_set"] == "selected") & (run.predictions["repeat"] == 0)]
    assert g["id"].nunique() == len(g) == 36  # every sample once
    expected = confusion_matrix(g["y_true"], np.argmax(class_probabilities_of(g, CLASSES), axis=1), labels=[0, 1, 2])
    table = _md_table(md, "true \\ predicted (selected")
    assert [r[0] for r in table] == CLASSES
    counts = np.array([[int(c.split(" ")[0]) for c in r[1:4]] for r in table])
    np.testing.assert_array_equal(counts, expected)
    assert [int(r[4]) for r in table] == [12, 12, 12]
    shares = np.array([[float(re.search(r"\((.*)\)", c).group(1)) for c in r[1:4]] for r in table])
    np.testing.assert_allclose(shares, expected / expected.sum(axis=1, keepdims=True), atol=0.005)
    assert "first repeat" in md
    # the figures of a multi-class run, no binary ROC / confusion panels
    files = {p.stem for p in (tmp / "mc_report" / "r_files").iterdir()}
    assert files == {"layerwise", "confusion_classes", "roc_classes", "pvalues_macro_auc"}


def test_layer_figure_of_a_three_class_run_plots_macro_auc(runs, monkeypatch):
    tmp, _ = runs
    labels = {}
    draw = figures._png

    def record(fig):
        labels.setdefault("axes", []).append([ax.get_ylabel() for ax in fig.axes])
        return draw(fig)

    monkeypatch.setattr(figures, "_png", record)
    build_report(tmp / "mc", out=tmp / "mc_layers" / "r.html")
    ylabels = {y for axes in labels["axes"] for y in axes}
    assert "macro AUC (one-vs-rest)" in ylabels and "macro F1 (predicted class = most probable)" in ylabels
    assert "ROC AUC" not in ylabels and "F1 (threshold 0.5)" not in ylabels
    labels.clear()
    build_report(tmp / "binary", out=tmp / "bin_layers" / "r.html")
    ylabels = {y for axes in labels["axes"] for y in axes}
    assert {"ROC AUC", "F1 (threshold 0.5)"} <= ylabels and not any("macro" in y for y in ylabels)


def test_binary_report_keeps_its_columns_and_wording(runs):
    tmp, _ = runs
    md = build_report(tmp / "binary", out=tmp / "bin_report" / "r.html").with_suffix(".md").read_text(encoding="utf-8")
    assert ("| kind | best feature set | classifier | AUC mean ± sd | pooled AUC [95% CI] | accuracy | F1 | "
            "sensitivity | specificity | sens@Youden | spec@Youden | n (pos) |") in md
    assert "accuracy, F1, sensitivity, specificity at threshold 0.5 unless marked @Youden / @Y" in md
    assert "## Statistical comparison (DeLong)" in md and "| p (DeLong) |" in md and "ΔAUC (best − other)" in md
    assert "## Best feature sets" in md and "| positive class | malignant |" in md
    assert "macro" not in md and "multi-class" not in md
    run = read_run(tmp / "binary")
    lines = text_table(run.results, provenance=run.provenance).splitlines()
    assert lines[0].split() == ["feature", "set", "classifier", "kind", "AUC", "mean±sd", "pooled", "AUC", "[95%",
                                "CI]", "acc", "F1", "sens", "spec", "bal.acc@Youden"]
    assert lines[-3].startswith("pooled AUC [95% CI]: ") and lines[-1].startswith("@Youden: threshold ")


def test_binary_and_multiclass_runs_do_not_share_a_report(runs):
    tmp, _ = runs
    with pytest.raises(DataError, match=r"do not share one task.*mc: 3 classes .*binary: positive: malignant"):
        build_report([tmp / "mc", tmp / "binary"], out=tmp / "mixed")


def _three_class_images(root, per_class=8, size=32):
    rng = np.random.default_rng(0)
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.normal(60 + 50 * k, 30, (size, size + 8)).clip(0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"img {i:02d}.png")
    return root


def test_terminal_table_of_a_three_class_run(tmp_path, capsys):
    data = _three_class_images(tmp_path / "data")
    common = ["evaluate", str(data), "--features", "glcm", "--classifier", "logreg", "--cv", "3", "--n-boot", "20",
              "--no-select", "--cache", str(tmp_path / "c.h5"), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "mc")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("; 3 classes (benign, malignant, normal): multi-class; protocol: stratified 3-fold")
    assert out[1].split() == ["feature", "set", "classifier", "kind", "macro", "AUC", "mean±sd", "pooled", "macro",
                              "AUC", "[95%", "CI]", "acc", "bal.acc", "macro", "F1", "kappa"]
    row = read_run(tmp_path / "mc").results.iloc[0]
    cells = out[3].split()
    assert cells[-4:] == [f"{row[m]:.3f}" for m in ("accuracy", "balanced_accuracy", "f1_macro", "kappa")]
    text = "\n".join(out)
    assert "macro AUC: the macro one-vs-rest AUC" in text and "the predicted class is the most probable one" in text
    assert "kappa: Cohen's kappa (unweighted)" in text and "Youden" not in text and "sens" not in text
    # ordered classes: the quadratic-weighted kappa, said in the header and the footnote
    assert main([*common, "--ordered", "--out", str(tmp_path / "ordered")]) == 0
    text = capsys.readouterr().out
    assert "multi-class, ordered" in text and "kappa (quadratic)" in text and "quadratic-weighted" in text
    # --positive with three classes: the one-vs-rest binary view, stated in the header and the report
    with pytest.warns(UserWarning, match="against all the others .one-vs-rest"):
        assert main([*common, "--positive", "malignant", "--out", str(tmp_path / "ovr")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("; malignant vs the rest (3 classes); protocol: stratified 3-fold")
    assert "bal.acc@Youden" in out[1] and "macro" not in out[1]
    md = build_report(tmp_path / "ovr").with_suffix(".md").read_text(encoding="utf-8")
    assert "Task: malignant vs the rest (3 classes)." in md
    assert "| positive class | malignant vs the rest (3 classes) |" in md


def test_beside_the_paper_gives_a_three_class_row_its_macro_metrics(runs, tmp_path):
    tmp, _ = runs
    refs = {"citation": "Someone (2024)", "paper_data": "MIAS, three classes",
            "reported": [{"label": "their VGG19", "ours": ["glcm"], "accuracy": 0.98, "f1": 0.97,
                          "precision": 0.96}]}
    build_report([tmp / "mc"], out=tmp_path / "r.html", references=refs)
    md = (tmp_path / "r.md").read_text()
    section = md.split("## Beside the paper")[1].split("\n## ")[0]
    header = next(ln for ln in section.splitlines() if ln.startswith("| source"))
    assert header.split(" | ")[2:] == ["accuracy", "precision", "F1", "ROC AUC |"]
    ours = next(ln for ln in section.splitlines() if ln.startswith("| ours")).rstrip(" |").split(" | ")
    row = read_run(tmp / "mc").results.set_index(["feature_set", "classifier"]).loc[("glcm", "logreg")]
    for cell, column in zip(ours[2:], ["accuracy", "precision_macro", "f1_macro", "roc_auc"]):
        assert cell == f"{row[f'{column}_pooled']:.3f} [{row[f'{column}_ci_lo']:.3f}, {row[f'{column}_ci_hi']:.3f}]"
    assert "macro one-vs-rest AUC" in section and "most probable" in section


def test_report_comparisons_use_the_runs_own_bootstrap_settings(runs, tmp_path):
    """The report recomputes its comparisons; with the run's n_boot, seed and confidence a pair gets the
    interval and p-value of the run's comparisons.csv (it used 2000 replicates, seed 0 and 95 %)."""
    from featurekit.evaluation.results.comparison import versus_best

    tmp, _ = runs
    run = tmp_path / "s3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_features(tmp / "mc.h5", ["all"], ["logreg"], "3x2", n_boot=60, seed=3, confidence=0.9,
                          out=run, progress=False, select=False)
    build_report([run], out=tmp_path / "r.html", top=10)
    md = (tmp_path / "r.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| compared with the best"))
    assert "| 90% CI |" in header
    best = header.split("(")[1].split(")")[0].split(" · ")
    vb = versus_best(read_run(run).comparisons, tuple(best)).set_index("other_feature_set")
    shown = {r[0].split(" · ")[0]: r for r in _md_table(md, "compared with the best")}
    assert set(shown) == set(vb.index)
    for name, r in shown.items():
        assert r[2] == f"[{vb.loc[name, 'ci_lo']:.3f}, {vb.loc[name, 'ci_hi']:.3f}]"
