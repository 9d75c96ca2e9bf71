"""The plots of a report (matplotlib, Agg backend): layer-wise curves, ROC curves,
confusion matrices, DeLong p-values, training curves; for a multi-class run the
layer-wise curves of macro AUC and macro F1, one row's one-vs-rest ROC curves
per class and its confusion matrix over the classes, and the p-values of the
paired bootstrap of the macro-AUC difference.

Each function takes the run folders' tables (results, predictions) and returns a
:class:`Figure` (PNG bytes and a caption) or None when it has nothing to draw;
:mod:`featurekit.report.build` places them in the Markdown and HTML reports.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.results.summary import class_probabilities_of, mean_scores, prediction_classes, proba_column
from featurekit.evaluation.stats.metrics import roc_auc, roc_curve
from featurekit.evaluation.stats.multiclass import confusion_matrix
from featurekit.report.wording import RunTask, RunWording, describe_run

__all__ = ["Figure", "layer_curves_figure", "roc_figure", "confusion_figure", "pvalue_figure",
           "class_confusion", "class_confusion_figure", "class_roc_figure", "BINARY_PANELS", "MULTICLASS_PANELS",
           "training_curves_figure", "relative_depth", "ticks_overlap", "as_float", "format_p", "row_label",
           "pvalue_scale", "per_run", "selected_epochs", "draw_training_curves"]


def as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def format_p(p: Any) -> str:
    f = as_float(p)
    if not math.isfinite(f):
        return "–"
    return "<0.001" if f < 0.001 else f"{f:.3f}"


def row_label(row) -> str:
    return f"{row['feature_set']} · {row['classifier']}"


def per_run(phrases: Mapping[str, str]) -> str:
    """One phrase when every run has the same, else ``run: phrase`` for each run."""
    distinct = list(dict.fromkeys(phrases.values()))
    if len(distinct) <= 1:
        return distinct[0] if distinct else ""
    return "; ".join(f"{run}: {text}" for run, text in phrases.items())


@dataclass
class Figure:
    """A rendered plot."""

    name: str
    title: str
    png: bytes
    caption: str = ""


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def relative_depth(results: pd.DataFrame, runs) -> pd.Series:
    """Each row's layer index over the last index of its model's layer table (0 = input, 1 = last layer).

    The last index comes from the ``last_layer_index`` of the run's
    provenance entries (recorded at extraction); NaN where it is unknown
    (handcrafted and fine-tuned rows, features cached before it was recorded).
    """
    last: dict[tuple[str, str], float] = {}
    for run in runs:
        for entry in run.provenance.get("entries") or []:
            value = as_float(entry.get("last_layer_index"))
            if math.isfinite(value) and value > 0:
                last[(run.name, str(entry.get("model", "")))] = value
    run_names = results["run"] if "run" in results.columns else pd.Series([""] * len(results), index=results.index)
    return pd.Series([as_float(index) / last.get((str(run), str(model)), float("nan"))
                      for index, model, run in zip(results["layer_index"], results["model"], run_names)],
                     index=results.index, dtype=float)


#: the two metrics of the layer-wise figure: (results column, axis label, name in the titles)
BINARY_PANELS = (("roc_auc", "ROC AUC", "ROC AUC"), ("f1", "F1 (threshold 0.5)", "F1"))
MULTICLASS_PANELS = (("roc_auc", "macro AUC (one-vs-rest)", "macro AUC"),
                     ("f1_macro", "macro F1 (predicted class = most probable)", "macro F1"))


def _depth_row(axes, deep: pd.DataFrame, panels=BINARY_PANELS) -> None:
    """All models on one relative-depth axis: one line per (model, classifier)."""
    for j, (metric, label, _) in enumerate(panels):
        ax = axes[j]
        col = f"{metric}_pooled" if deep[f"{metric}_pooled"].notna().any() else metric
        for k, ((model, clf), g) in enumerate(deep.groupby(["model", "classifier"], sort=False)):
            g = g.sort_values("relative_depth")
            x = g["relative_depth"].to_numpy(dtype=float)
            ax.plot(x, g[col].astype(float), "o-", color=f"C{k % 10}", markersize=4, label=f"{model} · {clf}")
            lo, hi = g[f"{metric}_ci_lo"].astype(float), g[f"{metric}_ci_hi"].astype(float)
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=f"C{k % 10}", alpha=0.1, linewidth=0)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_xticklabels(["0\ninput", "0.25", "0.5", "0.75", "1\nlast layer"], fontsize=8)
        ax.set_xlabel("relative depth (layer index / last index of the model's table)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"All models: {panels[0][2]} against relative depth", fontsize=10)
    axes[1].set_title(f"All models: {panels[1][2]} against relative depth", fontsize=10)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def layer_curves_figure(results: pd.DataFrame, estimate: str = "pooled out-of-fold predictions",
                        panels=BINARY_PANELS) -> Figure | None:
    """Metric against layer per model; ``estimate`` says where the pooled numbers come from;
    ``panels``: the two metrics (:data:`BINARY_PANELS`, :data:`MULTICLASS_PANELS`)."""
    deep = results[(results["kind"] == "deep") & results["layer_index"].notna()]
    if deep.empty:
        return None
    plt = _plt()
    models = list(dict.fromkeys(deep["model"]))
    depth = deep[np.isfinite(deep["relative_depth"].astype(float))] if "relative_depth" in deep.columns \
        else deep.iloc[:0]
    shared = depth["model"].nunique() >= 2
    fig, all_axes = plt.subplots(len(models) + shared, 2, figsize=(13, 4.2 * (len(models) + shared)),
                                 squeeze=False)
    if shared:
        _depth_row(all_axes[0], depth, panels)
    axes = all_axes[1:] if shared else all_axes
    hand = results[results["kind"] == "handcrafted"]
    fused = results[(results["kind"] == "fused") & results["layer_index"].notna()]
    markers = ["*", "P", "X", "D", "^", "v", "s", "h"]
    marker_of = {fs: markers[i % len(markers)] for i, fs in enumerate(dict.fromkeys(fused["feature_set"]))}
    for i, model in enumerate(models):
        d = deep[deep["model"] == model]
        handles: dict[str, Any] = {}
        for j, (metric, label, _) in enumerate(panels):
            ax = axes[i][j]
            col = f"{metric}_pooled" if d[f"{metric}_pooled"].notna().any() else metric

            def add(h, name, handles=handles):
                handles.setdefault(name, h)

            for k, (clf, g) in enumerate(d.groupby("classifier", sort=False)):
                g = g.sort_values("layer_index")
                x = g["layer_index"].astype(float).to_numpy()
                color = f"C{k}"
                (h,) = ax.plot(x, g[col].astype(float), "o-", color=color, markersize=4)
                add(h, f"{model} layers · {clf}")
                lo, hi = g[f"{metric}_ci_lo"].astype(float), g[f"{metric}_ci_hi"].astype(float)
                if np.isfinite(lo).any():
                    ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
                for h_i, (_, hr) in enumerate(hand[hand["classifier"] == clf].iterrows()):
                    v = as_float(hr.get(col))
                    if math.isfinite(v):
                        h = ax.axhline(v, color=color, linestyle=[":", "--", "-.", (0, (1, 3))][h_i % 4],
                                       linewidth=1)
                        add(h, f"{hr['feature_set']} · {clf}")
                fm = fused[(fused["model"] == model) & (fused["classifier"] == clf)]
                for fs, fg in fm.groupby("feature_set", sort=False):
                    (h,) = ax.plot(fg["layer_index"].astype(float), fg[col].astype(float),
                                   marker_of[fs], color=color, markersize=10,
                                   markeredgecolor="black", markeredgewidth=0.5)
                    add(h, f"{fs} · {clf}")
            ft = results[results["kind"] == "finetuned"]  # every fine-tuned net, whatever its model
            for h_i, (_, fr) in enumerate(ft.iterrows()):
                v = as_float(fr.get(col))
                if math.isfinite(v):
                    h = ax.axhline(v, color="black", linestyle=["--", "-.", ":"][h_i % 3], linewidth=1.2)
                    add(h, f"{fr['feature_set']} (fine-tuned)")
            ticks = d.drop_duplicates("layer_index").sort_values("layer_index")
            ax.set_xticks(ticks["layer_index"].astype(float))
            many = len(ticks) > 8
            ax.set_xticklabels([f"{n} ({int(i)})" if many else f"{int(i)}\n{n}"
                                for i, n in zip(ticks["layer_index"], ticks["layer"])],
                               fontsize=7, rotation=60 if many else 0, ha="right" if many else "center")
            ax.set_xlabel(f"{model} layer" + ("" if many else " (index, name)"))
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[i][0].set_title(f"{model}: {panels[0][2]} per layer (pooled estimate, 95% bootstrap band)", fontsize=10)
        axes[i][1].set_title(f"{model}: {panels[1][2]} per layer", fontsize=10)
        axes[i][1].legend(list(handles.values()), list(handles.keys()), fontsize=7, loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    for ax in all_axes.flat:
        _declutter_ticks(fig, ax)
    fig.tight_layout()
    for ax in all_axes.flat:
        _declutter_ticks(fig, ax)
    lead = (f"First row: {', '.join(dict.fromkeys(depth['model']))} on one relative-depth axis "
            "(0 = input, 1 = each model's last layer); then each model on its own layer index. ") if shared else ""
    return Figure("layerwise", "Layer-wise performance", _png(fig),
                  lead + f"Pooled estimate per layer ({estimate}) with its 95% stratified-bootstrap band; "
                  "coloured horizontal lines: handcrafted feature sets with the same classifier; "
                  "black: fine-tuned networks; large markers: fusions placed at their CNN layer.")


def ticks_overlap(fig, ax) -> bool:
    """Whether two neighbouring visible x tick labels of ``ax`` overlap as drawn.

    Horizontal labels: their boxes. Rotated ones (parallel slanted lines of
    text): the gap between neighbouring anchors times sin(angle) must exceed a line height.
    """
    renderer = fig.canvas.get_renderer()
    shown = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    if len(shown) < 2:
        return False
    angle = math.radians(shown[0].get_rotation() % 180)
    if abs(math.sin(angle)) < 1e-6:
        boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
        return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:]))
    xs = sorted(ax.transData.transform((t.get_position()[0], 0))[0] for t in shown)
    line = shown[0].get_fontsize() * fig.dpi / 72 * 1.2
    return min(b - a for a, b in zip(xs, xs[1:])) * abs(math.sin(angle)) < line


def _declutter_ticks(fig, ax) -> None:
    """Keep neighbouring x tick labels apart: one line and rotated when they collide, then every k-th."""
    if not ticks_overlap(fig, ax):
        return
    labels = ax.get_xticklabels()
    ax.set_xticklabels([t.get_text().replace("\n", " ") for t in labels], fontsize=7, rotation=60,
                       ha="right", rotation_mode="anchor")
    step = 1
    while ticks_overlap(fig, ax) and step < len(labels):
        step += 1
        for i, t in enumerate(ax.get_xticklabels()):
            t.set_visible(i % step == 0)


def roc_figure(predictions: pd.DataFrame, top: pd.DataFrame,
               scores: str = "each sample's mean out-of-fold score over the repeats") -> Figure | None:
    """ROC curves of the ``top`` rows; ``scores`` says which scores they are (:mod:`~featurekit.report.wording`)."""
    if predictions.empty or top.empty:
        return None

    def curves():
        for k, (_, r) in enumerate(top.iterrows()):
            try:
                s = mean_scores(predictions, r["feature_set"], r["classifier"])
            except DataError:
                continue
            if s["y_true"].nunique() < 2:
                continue
            yield k, s["y_true"].astype(int), s["score"].astype(float), row_label(r)

    drawn = _roc_axes(curves())
    if drawn is None:
        return None
    fig, ax, _ = drawn
    ax.set_title("ROC curves of the best feature sets")
    return Figure("roc", "ROC curves", _png(fig), f"Scores: {scores}.")


def _roc_axes(curves):
    """One ROC plot of ``curves`` ((colour index, y, score, label) each, the AUC added to the label) and
    the chance line: ``(fig, ax, aucs)``, or None when there is no curve."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    aucs = []
    for k, y, score, label in curves:
        fpr, tpr, _ = roc_curve(y, score)
        auc = roc_auc(y, score)
        ax.plot(fpr, tpr, color=f"C{k}", label=f"{label} (AUC {auc:.3f})")
        aucs.append(auc)
    if not aucs:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("1 − specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig, ax, aucs


def confusion_figure(predictions: pd.DataFrame, top: pd.DataFrame,
                     wordings: Mapping[str, RunWording] | None = None) -> Figure | None:
    """Confusion matrices at 0.5 and at the Youden thresholds of the first repeat of each ``top`` row.

    ``wordings`` (``{run name: RunWording}``) names, per row's run, which predictions
    these are and where its Youden thresholds were chosen.
    """
    if predictions.empty or top.empty:
        return None
    wordings = dict(wordings or {})
    default = describe_run({})
    plt = _plt()
    fig, axes = plt.subplots(2, len(top), figsize=(3.1 * len(top), 5.8), squeeze=False)
    for j, (_, r) in enumerate(top.iterrows()):
        g = _first_repeat(predictions, r)
        y = g["y_true"].astype(int).to_numpy()
        s = g["score"].astype(float).to_numpy()
        words = wordings.get(str(r.get("run", "")), default)
        for i, (thr, name) in enumerate(((np.full(len(s), 0.5), "threshold 0.5"),
                                         (g["threshold"].astype(float).to_numpy(), words.youden_short))):
            p = s >= thr
            cm = np.array([[np.sum((y == 1) & p), np.sum((y == 1) & ~p)],
                           [np.sum((y == 0) & p), np.sum((y == 0) & ~p)]])
            ax = axes[i][j]
            ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, cm.max()))
            for a in range(2):
                for b in range(2):
                    ax.text(b, a, str(int(cm[a, b])), ha="center", va="center",
                            color="white" if cm[a, b] > cm.max() / 2 else "black", fontsize=12)
            ax.set_xticks([0, 1])
            ax.set_xticklabels(["pred +", "pred −"])
            ax.set_yticks([0, 1])
            ax.set_yticklabels(["true +", "true −"])
            ax.set_title(f"{r['feature_set']}\n{r['classifier']} · {name}", fontsize=8)
    fig.tight_layout()
    runs = list(dict.fromkeys(str(r.get("run", "")) for _, r in top.iterrows()))
    used = {run: wordings.get(run, default).first_repeat for run in runs}
    what = per_run(used)
    thresholds = per_run({run: wordings.get(run, default).threshold for run in runs})
    return Figure("confusion", "Confusion matrices", _png(fig),
                  f"Predictions: {what}; Youden thresholds {thresholds}; positive class first.")


def _row_predictions(predictions: pd.DataFrame, row) -> pd.DataFrame:
    """The predictions of ``row`` (its feature set and classifier)."""
    if predictions.empty:
        return predictions
    return predictions[(predictions["feature_set"] == row["feature_set"])
                       & (predictions["classifier"] == row["classifier"])]


def _first_repeat(predictions: pd.DataFrame, row) -> pd.DataFrame:
    """The predictions of ``row`` (its feature set and classifier) in their first repeat."""
    g = _row_predictions(predictions, row)
    return g[g["repeat"] == g["repeat"].min()] if not g.empty else g


def class_confusion(predictions: pd.DataFrame, row, classes) -> np.ndarray | None:
    """The ``(K, K)`` confusion counts (rows: true class) of a multi-class ``row``'s first repeat,
    pooled over its folds, the predicted class the most probable one; None without predictions."""
    g = _first_repeat(predictions, row)
    if g.empty:
        return None
    return confusion_matrix(g["y_true"].to_numpy(dtype=np.int64),
                            np.argmax(class_probabilities_of(g, list(classes)), axis=1), len(classes))


def class_confusion_figure(counts: np.ndarray, task: RunTask, label: str, what: str) -> Figure:
    """A multi-class confusion matrix: counts, and each row over its true class's count."""
    plt = _plt()
    k = len(task.classes)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0)
    fig, axes = plt.subplots(1, 2, figsize=(2.0 * k + 5.5, 1.0 * k + 2.2))
    for ax, values, title, fmt, top in ((axes[0], counts, "counts", lambda v: str(int(v)), max(1, counts.max())),
                                        (axes[1], shares, "row-normalised (share of the true class)",
                                         lambda v: "–" if not np.isfinite(v) else f"{v:.2f}", 1.0)):
        ax.imshow(np.nan_to_num(values), cmap="Blues", vmin=0, vmax=top)
        for a in range(k):
            for b in range(k):
                v = values[a, b]
                ax.text(b, a, fmt(v), ha="center", va="center", fontsize=11,
                        color="white" if np.isfinite(v) and v > top / 2 else "black")
        ax.set_xticks(range(k))
        ax.set_xticklabels(task.classes, rotation=30 if k > 4 else 0, fontsize=8)
        ax.set_yticks(range(k))
        ax.set_yticklabels(task.classes, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=9)
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    return Figure("confusion_classes", "Confusion matrix", _png(fig),
                  f"{label}: {what}; {task.predicted}. Left: counts; right: each row over its true class's "
                  "count (the diagonal: each class's sensitivity).")


def class_roc_figure(predictions: pd.DataFrame, row, task: RunTask,
                     scores: str = "each sample's mean out-of-fold score over the repeats") -> Figure | None:
    """One-vs-rest ROC curves of a multi-class ``row``: per class c, c's probability (each sample's mean
    over the repeats) ranking c's samples against the others'."""
    g = _row_predictions(predictions, row)
    if g.empty:
        return None
    columns = [proba_column(c) for c in task.classes]
    per_id = g.assign(id=g["id"].astype(str)).groupby("id").agg({"y_true": "first", **{c: "mean" for c in columns}})
    y = per_id["y_true"].to_numpy(dtype=np.int64)
    # a class with no sample, or every sample, has no curve
    drawn = _roc_axes((k, (y == k).astype(int), per_id[col].to_numpy(dtype=float), f"{name} vs the rest")
                      for k, (name, col) in enumerate(zip(task.classes, columns)) if 0 < np.sum(y == k) < len(y))
    if drawn is None:
        return None
    fig, ax, aucs = drawn
    ax.set_title(f"{row_label(row)}\none-vs-rest ROC curves (their mean AUC {np.mean(aucs):.3f})", fontsize=10)
    repeated = g["repeat"].nunique() > 1
    return Figure("roc_classes", "One-vs-rest ROC curves", _png(fig),
                  f"{row_label(row)}: per class, its probability ranking its samples against the other classes'. "
                  f"Scores (each class's probability): {scores}"
                  + ("; the mean of the curves' AUCs is the macro AUC of these mean probabilities, which may differ "
                     "from the table's pooled estimate (the macro AUC per repeat, averaged)." if repeated else "."))


#: p-values labelled on the DeLong colour bar (where they fall inside the range shown)
_P_TICKS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.01, 1e-3, 1e-4, 1e-5, 1e-6)


def pvalue_scale(p: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax) of the −log10 p colour scale: the range of the off-diagonal p-values present.

    A scale fixed in advance (0 to 4) paints p = 0.2 and p = 0.9 in nearly one
    colour; spanning what the matrix holds keeps the differences visible. A
    range narrower than 0.1 (all p-values alike) is widened to 0.1 around its middle.
    """
    with np.errstate(divide="ignore"):
        shown = -np.log10(np.clip(np.asarray(p, dtype=float), 1e-6, 1.0))
    off = ~np.eye(shown.shape[0], dtype=bool)
    values = shown[off & np.isfinite(shown)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 0.1:
        mid = (lo + hi) / 2
        lo, hi = max(0.0, mid - 0.05), max(0.0, mid - 0.05) + 0.1
    return lo, hi


def pvalue_figure(labels: list[str], p: np.ndarray, nested: np.ndarray,
                  scores: str = "each sample's mean out-of-fold score", adjusted: str | None = None,
                  task: RunTask | None = None) -> Figure | None:
    """Heatmap of pairwise DeLong p-values (multi-class ``task``: of the paired bootstrap of the macro-AUC
    difference), coloured by −log10 p over the range present.

    ``adjusted``: how ``p`` was adjusted for multiplicity (e.g. "Holm, 15
    comparisons"), None for raw p-values. The colour bar is labelled in p and
    marks p = 0.05 when it lies inside the range.
    """
    multiclass_task = task if task is not None and task.multiclass else None
    multiclass = multiclass_task is not None
    test = multiclass_task.test if multiclass_task is not None else "DeLong"
    if len(labels) < 2:
        return None
    plt = _plt()
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.1 * k + 3.5, 0.9 * k + 2.5))
    with np.errstate(divide="ignore"):
        shown = -np.log10(np.clip(p, 1e-6, 1.0))
    shown = shown.copy()
    np.fill_diagonal(shown, np.nan)
    vmin, vmax = pvalue_scale(p)
    cmap = _plt().get_cmap("viridis_r").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=vmin, vmax=vmax)
    middle = (vmin + vmax) / 2
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            txt = format_p(p[a, b]) + (" †" if nested[a, b] else "")
            ax.text(b, a, txt, ha="center", va="center", fontsize=8,
                    color="white" if np.nan_to_num(shown[a, b]) > middle else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(k))
    ax.set_yticklabels(labels, fontsize=7)
    name = "adjusted p" if adjusted else "p"
    bar = fig.colorbar(im, ax=ax, label=f"{name} ({'paired bootstrap' if multiclass else test}), on a −log10 scale")
    ticks = [t for t in _P_TICKS if vmin <= -math.log10(t) <= vmax]
    bar.set_ticks([-math.log10(t) for t in ticks])
    bar.set_ticklabels([f"{t:g}" for t in ticks])
    if vmin <= -math.log10(0.05) <= vmax:
        bar.ax.axhline(-math.log10(0.05), color="red", linewidth=1.5)
    ax.set_title(("Paired bootstrap of the macro-AUC difference (" if multiclass else "Paired DeLong test of AUCs (")
                 + ("multiplicity-adjusted p-values)" if adjusted else "p-values)"))
    fig.tight_layout()
    how = f"p-values adjusted for multiplicity ({adjusted})" if adjusted else "p-values, not adjusted for multiplicity"
    if multiclass:
        return Figure("pvalues_macro_auc", "Paired-bootstrap p-values", _png(fig),
                      f"Two-sided {test}: {how}, on {scores}; the colour scale spans the p-values present "
                      "(red line on the bar: p = 0.05 where inside it); † nested pair (fusion vs its own part).")
    return Figure("delong", "DeLong p-values", _png(fig),
                  f"Two-sided DeLong {how}, on {scores}; the colour scale spans the p-values present "
                  "(red line on the bar: p = 0.05 where inside it); † nested pair (fusion vs its own part): "
                  "the test is conservative there.")


def selected_epochs(provenance: Mapping[str, Any] | None) -> dict[tuple[int, int], int]:
    """``{(repeat, fold): epoch}`` whose weights each fine-tuned model kept (the best epoch, restored).

    Cross-validated runs record it per fold (``folds[i].best_epoch``), a single
    fine-tuning run once (``metrics.best_epoch``, repeat 0, fold 0).
    """
    provenance = provenance or {}
    out: dict[tuple[int, int], int] = {}
    for info in provenance.get("folds") or []:
        if isinstance(info, Mapping) and math.isfinite(as_float(info.get("best_epoch"))):
            out[(int(as_float(info.get("repeat", 0)) or 0), int(as_float(info.get("fold", 0)) or 0))] = \
                int(as_float(info["best_epoch"]))
    metrics = provenance.get("metrics")
    if not out and isinstance(metrics, Mapping) and math.isfinite(as_float(metrics.get("best_epoch"))):
        out[(0, 0)] = int(as_float(metrics["best_epoch"]))
    return out


def draw_training_curves(axes, curves: pd.DataFrame, selected: Mapping[tuple[int, int], int] | None = None,
                         metric_label: str = "ROC AUC") -> None:
    """Loss and metric against epoch on two axes: one line per (repeat, fold) and split, the selected epoch marked.

    ``selected``: ``{(repeat, fold): epoch}`` of the weights kept (:func:`selected_epochs`);
    each fold's lines get a black marker there, and a legend entry says so.
    """
    c = curves
    if "fold" not in c.columns:
        c = c.assign(fold=0)
    if "repeat" not in c.columns:
        c = c.assign(repeat=0)
    if "split" not in c.columns:
        c = c.assign(split="train")
    selected = dict(selected or {})
    colours = {split: f"C{k}" for k, split in enumerate(dict.fromkeys(c["split"]))}
    for ax, col, label in zip(axes, ("loss", "metric"), ("loss", metric_label)):
        if col not in c.columns or not c[col].notna().any():
            ax.set_visible(False)
            continue
        marked = False
        for (repeat, fold, split), g in c.groupby(["repeat", "fold", "split"], sort=True):
            g = g.sort_values("epoch")
            first = (repeat, fold) == (c["repeat"].min(), c["fold"].min())
            ax.plot(g["epoch"], g[col], color=colours[split], alpha=0.6, linewidth=1,
                    label=str(split) if first else None)
            epoch = selected.get((int(repeat), int(fold)))
            at = g[g["epoch"] == epoch] if epoch is not None else g.iloc[:0]
            if not at.empty and at[col].notna().any():
                ax.plot(at["epoch"], at[col], "o", color="black", markersize=5, zorder=3,
                        label=None if marked else "selected epoch (weights kept)")
                marked = True
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def curve_metric_label(predictions: pd.DataFrame | None) -> str:
    """What a fine-tuning's metric curve plots: the macro one-vs-rest AUC of a multi-class run, else ROC AUC."""
    multiclass = predictions is not None and bool(prediction_classes(predictions))
    return "macro ROC AUC (one-vs-rest)" if multiclass else "ROC AUC"


def training_curves_figure(run) -> Figure | None:
    c = run.training_curves
    if c is None or c.empty or "epoch" not in c.columns:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    selected = selected_epochs(run.provenance)
    metric = curve_metric_label(getattr(run, "predictions", None))
    draw_training_curves(axes, c, selected, metric_label=metric)
    fig.suptitle(f"Training curves: {run.name} (one line per fold and repeat)")
    fig.tight_layout()
    caption = (f"Loss and {metric} per epoch on the training and validation parts"
               + ("; black dots: the epoch whose weights each fold kept (best on the monitored validation score)"
                  if selected else "; the selected epoch is not recorded in this run folder") + ".")
    return Figure(f"training_{run.name}", f"Training curves ({run.name})", _png(fig), caption)
