"""The report beside a paper: reference rows, fine-tuned nets in the layer-wise figure, readable tick labels."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import make_cache, separable

from featurekit.evaluation.results.runfolder import write_run
from featurekit.evaluation.results.summary import summarise_predictions
from featurekit.orchestration import evaluate_features
from featurekit.report import figures as report_module
from featurekit.report.build import build_report

N = 60


def _finetune_run(folder, ids, y, model="resnet18", seed=1):
    """A fine-tuning run folder on the same samples, written the way ``featurekit finetune`` does."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in range(5):
        idx = np.arange(N)[f::5]
        parts.append(pd.DataFrame({"id": np.asarray(ids)[idx], "y_true": y[idx], "feature_set": f"finetune:{model}",
                                   "classifier": "finetuned", "repeat": 0, "fold": f,
                                   "score": np.clip(0.5 + 0.3 * (y[idx] - 0.5) + rng.normal(0, 0.2, idx.size), 0, 1),
                                   "threshold": 0.5}))
    pred = pd.concat(parts, ignore_index=True)
    rows = summarise_predictions(pred, {(f"finetune:{model}", "finetuned"): {"kind": "finetuned", "model": model}},
                                 protocol="stratified 5-fold", n_boot=100)
    return write_run(folder, rows, pred, {"positive": "malignant", "seed": 0, "cv": "5"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Feature rows of 8 MobileNet-like layers with long names, and a fine-tuned ResNet-18 (another model)."""
    tmp = tmp_path_factory.mktemp("refs")
    y = np.arange(N) % 2
    feats = {"gabor": separable(N, 5, 0.9, 0)}
    for i in range(8):
        name = f"features.{i + 11}_expanded_projection"
        feats[f"mobilenet_v2/{name}"] = (separable(N, 6, 0.3 + 0.1 * i, 10 + i),
                                         {"family": "cnn", "model": "mobilenet_v2", "layer": name,
                                          "layer_index": i + 11, "weights": "imagenet:IMAGENET1K_V1",
                                          "weights_sha256": "ab" * 32, "pool": "gap", "input_size": 96})
    cache = make_cache(tmp / "c.h5", feats, labels=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_features(cache.path, ["all"], ["logreg"], "5", positive="malignant", n_boot=100,
                          out=tmp / "features")
    _finetune_run(tmp / "r18", cache.ids, y)
    return tmp


@pytest.fixture
def captured(monkeypatch):
    """The layer-wise matplotlib figure as drawn (before it becomes a PNG)."""
    figures = []
    real = report_module._png

    def keep(fig):
        figures.append(fig)
        return real(fig)

    monkeypatch.setattr(report_module, "_png", keep)
    return figures


def test_finetuned_run_of_another_model_is_drawn_in_black(runs, captured, tmp_path):
    build_report([runs / "features", runs / "r18"], out=tmp_path / "r.html")
    fig = captured[0]  # the layer-wise figure comes first
    for ax in fig.axes[:2]:
        black = [ln for ln in ax.get_lines() if ln.get_color() in ("black", "k", (0, 0, 0, 1))]
        assert len(black) == 1, "the fine-tuned ResNet-18 must be in every layer-wise panel"
        assert np.ptp(black[0].get_ydata()) == 0  # a horizontal reference line
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "finetune:resnet18 (fine-tuned)" in legend


def _overlap(fig, ax) -> bool:
    """Independent check: neighbouring visible labels overlap as drawn (boxes; rotated: slanted strips)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # (the report closed the figure)
    shown = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    rot = shown[0].get_rotation() % 180
    if rot == 0:
        boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
        return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:]))
    xs = np.sort([ax.transData.transform((t.get_position()[0], 0))[0] for t in shown])
    line = shown[0].get_fontsize() * fig.dpi / 72  # slanted parallel lines of text: their distance vs the glyphs
    return bool(np.min(np.diff(xs)) * math.sin(math.radians(rot)) < line)


def test_neighbouring_layer_labels_do_not_overlap(runs, captured, tmp_path):
    build_report([runs / "features"], out=tmp_path / "r.html")
    fig = captured[0]
    for ax in fig.axes[:2]:
        labels = [t for t in ax.get_xticklabels() if t.get_visible()]
        assert labels and not _overlap(fig, ax)
        assert any("features.11" in t.get_text() for t in labels)  # the first layer stays named


REFERENCES = {"title": "a study", "citation": "Someone et al. (2020)", "paper_data": "131 ultrasound images",
              "reported": [{"label": "their ResNet-18", "ours": ["r18"], "accuracy": 0.939, "roc_auc": 0.944},
                           {"label": "their ResNet-50", "ours": ["r50"], "f1": 0.9}],
              "substitutions": ["network: MobileNet-V2 for ResNet-18 (no ImageNet weights here)"],
              "profile": "quick"}


def test_reference_rows_are_labelled_and_sit_beside_ours_with_intervals(runs, tmp_path):
    html = build_report([runs / "features", runs / "r18"], out=tmp_path / "r.html", references=REFERENCES)
    md = (tmp_path / "r.md").read_text()
    section = md.split("## Beside the paper")[1].split("\n## ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| *paper") or ln.startswith("| ours")]
    assert rows[0].startswith(
        "| *paper: reported on other data (131 ultrasound images)* | *their ResNet-18* | *0.939* |")
    ours = rows[1].split(" | ")
    assert ours[0] == "| ours: r18 (stratified 5-fold)" and ours[1] == "finetune:resnet18 · finetuned"
    acc, auc = ours[2], ours[-1].rstrip(" |")
    results = pd.read_csv(runs / "r18" / "results.csv").iloc[0]
    assert acc == f"{results['accuracy_pooled']:.3f} [{results['accuracy_ci_lo']:.3f}, {results['accuracy_ci_hi']:.3f}]"
    assert auc.startswith(f"{results['roc_auc_pooled']:.3f} [")
    assert "their ResNet-50" in rows[2] and "no row matches r50" in rows[3]
    assert "network: MobileNet-V2 for ResNet-18" in section and "(quick profile)" in section
    assert "reported on other data" in html.read_text()
    assert md.index("## Beside the paper") < md.index("## Best of each kind")
