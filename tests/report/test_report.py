"""The report: merged run folders -> report.md + standalone report.html with embedded plots."""

import base64
import io
import warnings
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import make_cache, separable
from PIL import Image

from featurekit.cli import main
from featurekit.evaluation.results.runfolder import read_run, write_run
from featurekit.evaluation.results.summary import summarise_predictions
from featurekit.orchestration import evaluate_features
from featurekit.report.build import build_report, report_paths, text_table


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.h2, self.tables, self._in_h2 = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "h2":
            self._in_h2 = True
        elif tag == "table":
            self.tables += 1

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    n = 60
    y = np.arange(n) % 2
    feats = {"gabor": separable(n, 5, 0.9, 0)}
    for i, shift in enumerate((0.3, 0.8, 1.2, 1.0)):
        feats[f"net/block{i + 1}"] = (separable(n, 8, shift, 10 + i),
                                      {"family": "cnn", "model": "net", "layer": f"block{i + 1}",
                                       "layer_index": 3 * (i + 1), "weights": "none:seed=0",
                                       "weights_sha256": "ab" * 32, "pool": "gap", "input_size": 32})
    cache = make_cache(tmp / "c.h5", feats, labels=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate_features(cache.path, ["all"], ["logreg", "knn"], "5x2", fuse=["net/block3+gabor"],
                               positive="malignant", n_boot=200, out=tmp / "features")
    # a fine-tuning run on the same samples, written the way `featurekit finetune` does
    rng = np.random.default_rng(1)
    pred = []
    for r in range(2):
        for f in range(5):
            idx = np.arange(n)[f::5]
            pred.append(pd.DataFrame({"id": np.array(cache.ids)[idx], "y_true": y[idx],
                                      "feature_set": "finetune:net", "classifier": "finetuned", "repeat": r,
                                      "fold": f, "score": np.clip(0.5 + 0.3 * (y[idx] - 0.5)
                                                                  + rng.normal(0, 0.2, idx.size), 0, 1),
                                      "threshold": 0.5}))
    pred = pd.concat(pred, ignore_index=True)
    meta = {("finetune:net", "finetuned"): {"kind": "finetuned", "model": "net"}}
    rows = summarise_predictions(pred, meta, protocol="stratified 5-fold x2", n_boot=200)
    curves = pd.DataFrame([{"fold": f, "repeat": 0, "epoch": e, "split": s, "loss": 1 / (e + 1) + (s == "val") * 0.1,
                            "metric": 0.6 + 0.03 * e} for f in range(2) for e in range(8) for s in ("train", "val")])
    write_run(tmp / "finetune", rows, pred, {"positive": "malignant", "seed": 0, "arch": "net", "cv": "5x2"},
              training_curves=curves)
    return tmp, ev


def _parse(path):
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    c.close()
    return c


def test_report_renders_with_decodable_embedded_plots(runs):
    tmp, ev = runs
    html_path = build_report([tmp / "features", tmp / "finetune"], out=tmp / "out" / "both.html")
    assert html_path == tmp / "out" / "both.html"
    c = _parse(html_path)
    assert len(c.images) >= 5  # layer-wise, ROC, confusion, DeLong, training curves
    for src in c.images:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        assert img.format == "PNG" and img.width > 200 and img.height > 150
        lo, hi = img.convert("L").getextrema()
        assert hi - lo > 50  # not a blank canvas
    for section in ("Best of each kind", "Layer-wise performance", "All results", "Best feature sets",
                    "Statistical comparison (DeLong)", "Training curves", "Provenance"):
        assert section in c.h2, section
    assert c.tables >= 5
    text = html_path.read_text()
    for needle in ("finetune:net", "finetuned", "net/block3+gabor", "stratified 5-fold x2", "abababababababab",
                   "† Nested"):
        assert needle in text, needle


def test_markdown_links_figure_files(runs):
    tmp, _ = runs
    build_report([tmp / "features", tmp / "finetune"], out=tmp / "out" / "both.md")
    md = (tmp / "out" / "both.md").read_text()
    assert "| handcrafted | gabor |" in md.replace("  ", " ") or "| handcrafted |" in md
    for kind in ("handcrafted", "deep", "fused", "finetuned"):
        assert f"| {kind} |" in md, kind
    links = [line.rsplit("](", 1)[1][:-1] for line in md.splitlines() if line.startswith("![")]
    assert {"both_files/layerwise.png", "both_files/roc.png", "both_files/delong.png"} <= set(links)
    for link in links:
        assert Image.open(tmp / "out" / link).size[0] > 200


def test_layer_table_lists_every_layer_in_order(runs):
    tmp, ev = runs
    build_report([tmp / "features"])
    md = (tmp / "features" / "report.md").read_text()
    section = md.split("## Layer-wise performance")[1].split("## All results")[0]
    rows = [r for r in section.splitlines() if r.startswith("| net |")]
    assert len(rows) == 4 * 2  # 4 layers x 2 classifiers
    idx = [int(r.split("|")[2]) for r in rows]
    assert idx == [3, 6, 9, 12, 3, 6, 9, 12]
    best = ev.results.sort_values("roc_auc_pooled").iloc[-1]
    assert f"{best['roc_auc_pooled']:.3f}" in md


def test_report_paths_and_cli(runs, capsys):
    tmp, _ = runs
    assert report_paths([tmp / "a"], None) == (tmp / "a" / "report.md", tmp / "a" / "report.html")
    assert report_paths([tmp / "a"], tmp / "x.md") == (tmp / "x.md", tmp / "x.html")
    assert report_paths([tmp / "a"], tmp / "dir") == (tmp / "dir" / "report.md", tmp / "dir" / "report.html")
    assert main(["report", str(tmp / "finetune"), "--out", str(tmp / "cli")]) == 0
    out = capsys.readouterr().out
    assert str(tmp / "cli" / "report.html") in out and (tmp / "cli" / "report.md").is_file()
    assert main(["report", str(tmp / "nothing")]) == 2


def test_results_only_folder_still_renders(runs):
    tmp, _ = runs
    run = read_run(tmp / "features")
    only = tmp / "results_only"
    only.mkdir()
    (only / "results.json").write_text((tmp / "features" / "results.json").read_text())
    html_path = build_report([only])
    c = _parse(html_path)
    assert "Best feature sets" not in c.h2 and "Layer-wise performance" in c.h2
    assert len(c.images) == 1
    table = text_table(run.results)
    assert table.splitlines()[0].startswith("feature set") and "net/block3+gabor" in table


def test_random_weights_are_flagged_never_passed_off_as_pretrained(runs):
    tmp, _ = runs
    build_report([tmp / "features"], out=tmp / "flag" / "r.md")
    md = (tmp / "flag" / "r.md").read_text()
    assert "net (none:seed=0) come from RANDOM weights" in md
    build_report([tmp / "finetune"], out=tmp / "flag" / "ft.md")  # no CNN feature entries: no such note
    assert "RANDOM weights" not in (tmp / "flag" / "ft.md").read_text()


def _thin_predictions():
    """5 test folds of 4 images; only folds 0 and 1 hold malignant (positive) images."""
    rng = np.random.default_rng(3)
    y = np.zeros(20, dtype=int)
    y[[0, 1, 4, 5]] = 1
    fold = np.arange(20) // 4
    score = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, 20), 0, 1)
    return pd.DataFrame({"id": [f"s{i}" for i in range(20)], "y_true": y, "feature_set": "gabor",
                         "classifier": "logreg", "repeat": 0, "fold": fold, "score": score, "threshold": 0.5})


def test_thin_folds_are_counted_and_flagged(tmp_path):
    pred = _thin_predictions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = summarise_predictions(pred, {("gabor", "logreg"): {"kind": "handcrafted"}}, n_boot=50)
    r = rows.iloc[0]
    assert r["n_folds"] == 5
    assert r["roc_auc_n_folds"] == 2 and r["sensitivity_n_folds"] == 2 and r["specificity_n_folds"] == 5
    assert r["sensitivity_youden_n_folds"] == 2 and "roc_auc_youden_n_folds" not in rows
    table = text_table(rows)
    head, _, foot = table.partition("\n\n")
    auc_cell = f"{r['roc_auc']:.3f} ± {r['roc_auc_sd']:.3f}‡"
    assert auc_cell in head and f"{r['specificity']:.3f}‡" not in head
    assert "roc_auc on 2 of 5 folds" in foot and "sensitivity on 2 of 5 folds" in foot
    assert "specificity on" not in foot
    write_run(tmp_path / "thin", rows, pred, {"positive": "malignant", "seed": 0, "cv": "custom"})
    build_report([tmp_path / "thin"])
    md = (tmp_path / "thin" / "report.md").read_text()
    assert auc_cell in md and "‡ mean over only the test folds" in md and "roc_auc on 2 of 5 folds" in md
    html_text = (tmp_path / "thin" / "report.html").read_text()
    assert auc_cell in html_text and "roc_auc on 2 of 5 folds" in html_text


def test_complete_folds_carry_no_flag(runs):
    tmp, ev = runs
    assert (ev.results["roc_auc_n_folds"] == ev.results["n_folds"]).all()
    assert "‡" not in text_table(ev.results)
    build_report([tmp / "features"], out=tmp / "noflag" / "r.md")
    assert "‡" not in (tmp / "noflag" / "r.md").read_text()
