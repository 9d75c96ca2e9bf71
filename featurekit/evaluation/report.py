"""``featurekit report``: one or several run folders -> ``report.md`` + standalone ``report.html``.

The report reads only the run-folder files (:mod:`featurekit.evaluation.runfolder`
documents them), so rows of ``featurekit evaluate`` and ``featurekit finetune``
runs sit side by side. Sections:

1. best row of each kind (handcrafted, deep, fused, finetuned);
2. layer-wise curves: ROC AUC and F1 against the layer index, one line per
   (model, classifier), pooled out-of-fold estimate with its 95% bootstrap band,
   handcrafted rows as horizontal reference lines; when several models are
   compared, first all of them on one relative-depth axis (0 = input, 1 = the
   last layer of each model's table, from ``last_layer_index`` in the
   provenance entries), so a 13-layer ViT and an 18-layer VGG16 share a figure;
3. the per-layer table and the full results table;
4. ROC curves of the best sets (mean out-of-fold score per sample over repeats);
5. confusion matrices of the best sets at 0.5 and at the per-fold Youden
   thresholds (first repeat: every sample once);
6. DeLong p-values between the best sets (nested pairs marked †), and ΔAUC
   against the best row;
7. training curves (``training_curves.csv``) when a run has them;
8. provenance of every run (dataset fingerprint, counts per class, positive
   class, versions, weights and their sha256, CV protocol, seed, command line).

Plots are drawn with matplotlib's Agg backend; the HTML embeds them as base64
PNG (one file to mail around), the Markdown links PNG files written in
``<report>_files/``.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.comparison import compare_aucs, pvalue_matrix
from featurekit.evaluation.metrics import roc_auc, roc_curve
from featurekit.evaluation.runfolder import read_runs
from featurekit.evaluation.summary import mean_scores

__all__ = ["build_report", "text_table", "partial_folds_note", "report_paths", "Figure", "PARTIAL"]

KIND_ORDER = ["handcrafted", "deep", "fused", "finetuned"]


# ---------------------------------------------------------------------------
# formatting helpers
# ---------------------------------------------------------------------------


def _num(x: Any, digits: int = 3) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "" if x is None else str(x)
    return "–" if not math.isfinite(f) else f"{f:.{digits}f}"


#: marks a fold mean that rests on only some test folds (the metric was undefined in the others)
PARTIAL = "‡"


def _partial(row: pd.Series, m: str) -> bool:
    """Whether fold metric ``m`` was undefined in some test folds (``m_n_folds < n_folds``)."""
    defined, folds = _f(row.get(f"{m}_n_folds")), _f(row.get("n_folds"))
    return math.isfinite(defined) and math.isfinite(folds) and defined < folds


def _fm(row: pd.Series, m: str) -> str:
    """Fold mean of ``m``, marked with :data:`PARTIAL` when it rests on only some folds."""
    return _num(row.get(m)) + (PARTIAL if _partial(row, m) else "")


def _pm(row: pd.Series, m: str) -> str:
    """Fold mean ± sd of ``m``, marked like :func:`_fm`."""
    if not math.isfinite(_f(row.get(f"{m}_sd"))):
        return _fm(row, m)
    return f"{_num(row.get(m))} ± {_num(row.get(f'{m}_sd'))}" + (PARTIAL if _partial(row, m) else "")


def partial_folds_note(results: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """Footnote of the :data:`PARTIAL` marks of ``metrics`` in ``results`` (empty when none).

    Returns
    -------
    list of str
        A heading line, one line per flagged row (``feature set · classifier:
        roc_auc on 2 of 5 folds, ...``) and an explanation.
    """
    rows = []
    for _, r in results.iterrows():
        bad = [f"{m} on {int(_f(r.get(f'{m}_n_folds')))} of {int(_f(r.get('n_folds')))} folds"
               for m in metrics if _partial(r, m)]
        if bad:
            rows.append(f"{_label(r)}: {', '.join(bad)}")
    if not rows:
        return []
    return ([f"{PARTIAL} mean over only the test folds where the metric is defined:"] + rows
            + ["A test fold without a positive or without a negative sample (or, for precision and NPV, "
               "without a predicted one) leaves the metric undefined there, so the fold mean rests on fewer "
               "folds than the protocol made; the pooled estimates and their intervals use every prediction."])


def _ci(row: pd.Series, m: str) -> str:
    return f"{_num(row.get(f'{m}_pooled'))} [{_num(row.get(f'{m}_ci_lo'))}, {_num(row.get(f'{m}_ci_hi'))}]"


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _p(p: Any) -> str:
    f = _f(p)
    if not math.isfinite(f):
        return "–"
    return "<0.001" if f < 0.001 else f"{f:.3f}"


def _label(row) -> str:
    return f"{row['feature_set']} · {row['classifier']}"


def text_table(results: pd.DataFrame, metric: str = "roc_auc") -> str:
    """The results as a plain-text table (what ``featurekit evaluate`` prints).

    A fold mean resting on only some test folds (the metric undefined in the
    others, e.g. ROC AUC in folds without a positive sample) is marked with
    :data:`PARTIAL`, and a footnote under the table says on how many folds.
    """
    cols = [("feature set", lambda r: str(r["feature_set"])), ("classifier", lambda r: str(r["classifier"])),
            ("kind", lambda r: str(r.get("kind", ""))),
            ("AUC mean±sd", lambda r: _pm(r, "roc_auc")),
            ("pooled AUC [95% CI]", lambda r: _ci(r, "roc_auc")),
            ("F1", lambda r: _fm(r, "f1")), ("sens", lambda r: _fm(r, "sensitivity")),
            ("spec", lambda r: _fm(r, "specificity")),
            ("bal.acc@Youden", lambda r: _fm(r, "balanced_accuracy_youden"))]
    rows = [[name for name, _ in cols]]
    for _, r in results.iterrows():
        rows.append([fn(r) for _, fn in cols])
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = partial_folds_note(results, ["roc_auc", "f1", "sensitivity", "specificity", "balanced_accuracy_youden"])
    if note:
        lines += [""] + note[:1] + [f"  {line}" for line in note[1:-1]] + [note[-1]]
    return "\n".join(lines)


@dataclass
class Figure:
    """A rendered plot."""

    name: str
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Table:
    """A table: header and rows of strings, and footnote lines under it."""

    header: list
    rows: list
    notes: list = field(default_factory=list)

    def markdown(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        out = ["| " + " | ".join(esc(h) for h in self.header) + " |",
               "|" + "|".join("---" for _ in self.header) + "|"]
        out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            out += [""] + [f"{line}  " for line in self.notes]
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in self.rows)
        notes = "<br>".join(html.escape(str(line)) for line in self.notes)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                + (f"<p class='note'>{notes}</p>" if notes else ""))


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
            value = _f(entry.get("last_layer_index"))
            if math.isfinite(value) and value > 0:
                last[(run.name, str(entry.get("model", "")))] = value
    run_names = results["run"] if "run" in results.columns else pd.Series([""] * len(results), index=results.index)
    return pd.Series([_f(index) / last.get((str(run), str(model)), float("nan"))
                      for index, model, run in zip(results["layer_index"], results["model"], run_names)],
                     index=results.index, dtype=float)


def _depth_row(axes, deep: pd.DataFrame) -> None:
    """All models on one relative-depth axis: one line per (model, classifier)."""
    for j, metric in enumerate(("roc_auc", "f1")):
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
        ax.set_ylabel("ROC AUC" if metric == "roc_auc" else "F1 (threshold 0.5)")
        ax.grid(alpha=0.3)
    axes[0].set_title("All models: ROC AUC against relative depth", fontsize=10)
    axes[1].set_title("All models: F1 against relative depth", fontsize=10)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _layer_curves(results: pd.DataFrame) -> Figure | None:
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
        _depth_row(all_axes[0], depth)
    axes = all_axes[1:] if shared else all_axes
    hand = results[results["kind"] == "handcrafted"]
    fused = results[(results["kind"] == "fused") & results["layer_index"].notna()]
    markers = ["*", "P", "X", "D", "^", "v", "s", "h"]
    marker_of = {fs: markers[i % len(markers)] for i, fs in enumerate(dict.fromkeys(fused["feature_set"]))}
    for i, model in enumerate(models):
        d = deep[deep["model"] == model]
        handles: dict[str, Any] = {}
        for j, (metric, label) in enumerate((("roc_auc", "ROC AUC"), ("f1", "F1 (threshold 0.5)"))):
            ax = axes[i][j]
            col = f"{metric}_pooled" if d[f"{metric}_pooled"].notna().any() else metric

            def add(h, name):
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
                    v = _f(hr.get(col))
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
                v = _f(fr.get(col))
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
        axes[i][0].set_title(f"{model}: ROC AUC per layer (pooled OOF, 95% bootstrap band)", fontsize=10)
        axes[i][1].set_title(f"{model}: F1 per layer", fontsize=10)
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
                  lead + "Pooled out-of-fold estimate per layer with its 95% stratified-bootstrap band; "
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


def _roc_figure(predictions: pd.DataFrame, top: pd.DataFrame) -> Figure | None:
    if predictions.empty or top.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    drawn = 0
    for k, (_, r) in enumerate(top.iterrows()):
        try:
            s = mean_scores(predictions, r["feature_set"], r["classifier"])
        except DataError:
            continue
        if s["y_true"].nunique() < 2:
            continue
        y, score = s["y_true"].astype(int), s["score"].astype(float)
        fpr, tpr, _ = roc_curve(y, score)
        auc = roc_auc(y, score)
        ax.plot(fpr, tpr, color=f"C{k}", label=f"{_label(r)} (AUC {auc:.3f})")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("1 − specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title("ROC curves of the best feature sets")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return Figure("roc", "ROC curves", _png(fig),
                  "Mean out-of-fold score per sample over the repeats.")


def _confusion(predictions: pd.DataFrame, top: pd.DataFrame) -> Figure | None:
    if predictions.empty or top.empty:
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, len(top), figsize=(3.1 * len(top), 5.8), squeeze=False)
    for j, (_, r) in enumerate(top.iterrows()):
        g = predictions[(predictions["feature_set"] == r["feature_set"])
                        & (predictions["classifier"] == r["classifier"])]
        g = g[g["repeat"] == g["repeat"].min()] if not g.empty else g
        y = g["y_true"].astype(int).to_numpy()
        s = g["score"].astype(float).to_numpy()
        for i, (thr, name) in enumerate(((np.full(len(s), 0.5), "threshold 0.5"),
                                         (g["threshold"].astype(float).to_numpy(), "Youden (train folds)"))):
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
    return Figure("confusion", "Confusion matrices", _png(fig),
                  "Out-of-fold predictions of the first repeat (every sample once in k-fold CV); "
                  "positive class first.")


def _pvalue_figure(labels: list[str], p: np.ndarray, nested: np.ndarray) -> Figure | None:
    if len(labels) < 2:
        return None
    plt = _plt()
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.1 * k + 3.5, 0.9 * k + 2.5))
    with np.errstate(divide="ignore"):
        shown = -np.log10(np.clip(p, 1e-6, 1.0))
    shown = shown.copy()
    np.fill_diagonal(shown, np.nan)
    cmap = _plt().get_cmap("viridis_r").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0, vmax=4)
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            txt = _p(p[a, b]) + (" †" if nested[a, b] else "")
            ax.text(b, a, txt, ha="center", va="center", fontsize=8,
                    color="white" if np.nan_to_num(shown[a, b]) > 2 else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(k))
    ax.set_yticklabels(labels, fontsize=7)
    fig.colorbar(im, ax=ax, label="−log10 p (DeLong)")
    ax.set_title("Paired DeLong test of AUCs (p-values)")
    fig.tight_layout()
    return Figure("delong", "DeLong p-values", _png(fig),
                  "Two-sided DeLong p-values on the mean out-of-fold scores; † nested pair "
                  "(fusion vs its own part): the test is conservative there.")


def _training_curves(run) -> Figure | None:
    c = run.training_curves
    if c is None or c.empty or "epoch" not in c.columns:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    if "fold" not in c.columns:
        c = c.assign(fold=0)
    if "split" not in c.columns:
        c = c.assign(split="train")
    for j, col in enumerate(("loss", "metric")):
        ax = axes[j]
        if col not in c.columns:
            ax.set_visible(False)
            continue
        by = ["repeat", "fold"] if "repeat" in c.columns else ["fold"]
        for k, (split, g) in enumerate(c.groupby("split", sort=False)):
            for n, (_, gf) in enumerate(g.groupby(by, sort=True)):
                gf = gf.sort_values("epoch")
                ax.plot(gf["epoch"], gf[col], color=f"C{k}", alpha=0.6,
                        label=str(split) if n == 0 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Training curves: {run.name} (one line per fold and repeat)")
    fig.tight_layout()
    return Figure(f"training_{run.name}", f"Training curves ({run.name})", _png(fig))


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


def _kind_rank(k: str) -> int:
    return KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)


def _summary_table(results: pd.DataFrame, metric: str) -> Table:
    header = ["kind", "best feature set", "classifier", "AUC mean ± sd", "pooled AUC [95% CI]",
              "F1", "sensitivity", "specificity", "sens@Youden", "spec@Youden", "n (pos)"]
    rows, shown = [], []
    for kind in sorted(results["kind"].dropna().unique(), key=_kind_rank):
        g = results[results["kind"] == kind]
        if g[metric].notna().any():
            r = g.loc[g[metric].astype(float).idxmax()]
        else:
            r = g.iloc[0]
        shown.append(r)
        rows.append([kind or "–", r["feature_set"], r["classifier"], _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                     _fm(r, "f1"), _fm(r, "sensitivity"), _fm(r, "specificity"),
                     _fm(r, "sensitivity_youden"), _fm(r, "specificity_youden"),
                     f"{int(_f(r.get('n')) or 0)} ({int(_f(r.get('n_pos')) or 0)})"
                     if math.isfinite(_f(r.get("n"))) else "–"])
    return Table(header, rows, partial_folds_note(pd.DataFrame(shown), [
        "roc_auc", "f1", "sensitivity", "specificity", "sensitivity_youden", "specificity_youden"]))


def _results_table(results: pd.DataFrame) -> Table:
    header = ["feature set", "classifier", "kind", "AUC mean ± sd", "pooled AUC [95% CI]", "PR AUC",
              "bal. acc.", "F1", "MCC", "sens", "spec", "sens@Y", "spec@Y", "F1@Y", "run"]
    rows = []
    for _, r in results.iterrows():
        rows.append([r["feature_set"], r["classifier"], r.get("kind", ""), _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                     _fm(r, "pr_auc"), _fm(r, "balanced_accuracy"), _pm(r, "f1"), _fm(r, "mcc"),
                     _fm(r, "sensitivity"), _fm(r, "specificity"),
                     _fm(r, "sensitivity_youden"), _fm(r, "specificity_youden"),
                     _fm(r, "f1_youden"), r.get("run", "")])
    return Table(header, rows, partial_folds_note(results, [
        "roc_auc", "pr_auc", "balanced_accuracy", "f1", "mcc", "sensitivity", "specificity",
        "sensitivity_youden", "specificity_youden", "f1_youden"]))


def _layer_table(results: pd.DataFrame) -> Table | None:
    deep = results[(results["kind"] == "deep") & results["layer_index"].notna()]
    if deep.empty:
        return None
    deep = deep.sort_values(["model", "classifier", "layer_index"])
    header = ["model", "index", "layer", "classifier", "AUC mean ± sd", "pooled AUC [95% CI]",
              "F1 mean ± sd", "pooled F1 [95% CI]", "bal. acc.@Youden"]
    rows = [[r["model"], str(int(_f(r["layer_index"]))), r["layer"], r["classifier"], _pm(r, "roc_auc"),
             _ci(r, "roc_auc"), _pm(r, "f1"), _ci(r, "f1"), _fm(r, "balanced_accuracy_youden")]
            for _, r in deep.iterrows()]
    return Table(header, rows, partial_folds_note(deep, ["roc_auc", "f1", "balanced_accuracy_youden"]))


def _vs_best_table(comparisons: pd.DataFrame, best: tuple) -> Table | None:
    if comparisons is None or comparisons.empty:
        return None
    rows = []
    for rec in comparisons.itertuples(index=False):
        a = (rec.a_feature_set, rec.a_classifier)
        b = (rec.b_feature_set, rec.b_classifier)
        if best not in (a, b):
            continue
        other, sign = (b, 1.0) if a == best else (a, -1.0)
        d = sign * rec.delta_auc
        lo, hi = sorted((sign * rec.ci_lo, sign * rec.ci_hi))
        rows.append([f"{other[0]} · {other[1]}", _num(d), f"[{_num(lo)}, {_num(hi)}]", _p(rec.p_value),
                     "yes †" if rec.nested else ""])
    if not rows:
        return None
    rows.sort(key=lambda r: _f(r[1]))
    return Table([f"compared with the best ({best[0]} · {best[1]})", "ΔAUC (best − other)", "95% CI",
                  "p (DeLong)", "nested"], rows)


def _provenance_tables(runs) -> list[tuple[str, Table]]:
    out = []
    for run in runs:
        p = run.provenance or {}
        ds = p.get("dataset", {}) or {}
        counts = ds.get("counts") or {}
        rows = [
            ["dataset", f"{ds.get('name', '')} ({ds.get('source', '')})"],
            ["fingerprint", str(ds.get("fingerprint", ""))],
            ["counts per class", ", ".join(f"{k}: {v}" for k, v in counts.items()) or "–"],
            ["positive class", str(p.get("positive", ""))],
            ["ROI", str(ds.get("roi", ""))],
            ["CV protocol", f"{p.get('protocol', '')} (spec {p.get('cv', '')!s})"],
            ["seed", str(p.get("seed", ""))],
            ["classifiers", ", ".join(map(str, p.get("classifiers", []) or []))],
            ["options", ", ".join(f"{k}={v}" for k, v in (p.get("options") or {}).items()
                                  if not isinstance(v, dict))],
            ["command line", str(p.get("command", ""))],
            ["created", str(p.get("created", ""))],
            ["versions", ", ".join(f"{k} {v}" for k, v in (p.get("versions") or {}).items())],
            ["cache", str(p.get("cache", ""))],
        ]
        for k, v in p.items():  # anything a different engine recorded (e.g. fine-tuning settings)
            if k not in {"dataset", "positive", "protocol", "cv", "seed", "classifiers", "options", "command",
                         "created", "versions", "cache", "entries", "feature_sets", "pipelines", "samples",
                         "format", "grouped"} and not isinstance(v, (dict, list)):
                rows.append([k, str(v)])
        out.append((f"Run {run.name}", Table(["", ""], rows)))
        entries = p.get("entries") or []
        if entries:
            erows = [[e.get("key", ""), e.get("family", ""), str(e.get("weights", "")),
                      str(e.get("weights_sha256", "") or "")[:16], str(e.get("input_size", "") or ""),
                      str(e.get("pool", "") or ""), e.get("entry_id", "")] for e in entries]
            out.append((f"Features used in {run.name}",
                        Table(["key", "family", "weights", "weights sha256 (16)", "input size", "pool", "entry"],
                              erows)))
    return out


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def report_paths(runs: Sequence[str | os.PathLike], out: str | os.PathLike | None) -> tuple[Path, Path]:
    """``(markdown, html)`` output paths for ``out`` (a .html/.md file or a folder; default: first run)."""
    if out is None:
        base = Path(runs[0]) / "report"
    else:
        o = Path(out)
        if o.suffix.lower() in (".html", ".htm", ".md"):
            base = o.with_suffix("")
        else:
            base = o / "report"
    return base.with_suffix(".md"), base.with_suffix(".html")


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #2b6cb0;padding-bottom:.2em}h2{margin-top:1.8em;color:#2b6cb0}
table{border-collapse:collapse;margin:.8em 0;font-size:.86em}
th,td{border:1px solid #d0d7de;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f1f5f9}tr:nth-child(even) td{background:#fafbfc}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e2e8f0}
figcaption{font-size:.85em;color:#555}.note{font-size:.9em;color:#444;background:#f8fafc;
border-left:3px solid #2b6cb0;padding:.4em .8em}
"""


def build_report(runs: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike | None = None, *,
                 top: int = 6, metric: str = "roc_auc_pooled", title: str | None = None,
                 references: dict | None = None) -> Path:
    """Write ``report.md`` and a standalone ``report.html`` for one or several run folders.

    Parameters
    ----------
    runs : path or list of paths
        A run folder, or several (rows are merged; a (feature_set, classifier)
        seen in an earlier run gets ``@run`` appended).
    out : path, optional
        ``FILE.html`` / ``FILE.md`` (both are written, side by side) or a folder
        (``report.md`` and ``report.html`` in it). Default: the first run folder.
    top : int
        Number of best rows in the ROC, confusion and DeLong sections.
    metric : str
        Ranking metric (a results column). Default ``roc_auc_pooled``: the AUC of
        the pooled out-of-fold predictions, the estimate the interval, the ROC
        curves and DeLong's test refer to (the fold mean is noisier with small folds).

    references : dict, optional
        A paper's reported numbers and the substitutions a study made: a first
        section "Beside the paper" (see :mod:`featurekit.evaluation.references`).

    Returns
    -------
    Path of report.html.
    """
    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    if not runs:
        raise DataError("name at least one run folder")
    folders, results, predictions = read_runs(runs)
    if results.empty:
        raise DataError(f"no result rows in {', '.join(map(str, runs))}")
    if metric not in results.columns:
        raise DataError(f"unknown ranking metric {metric!r}")
    if not results[metric].notna().any() and metric.endswith("_pooled") and metric[:-7] in results.columns:
        metric = metric[:-7]
    for c in ("kind", "model", "layer", "parts", "fusion"):
        if c not in results.columns:
            results[c] = ""
        col = results[c].astype(object)
        results[c] = col.where(col.notna(), "").astype(str)
    if "layer_index" not in results.columns:
        results["layer_index"] = np.nan
    results["layer_index"] = pd.to_numeric(results["layer_index"], errors="coerce")
    results["relative_depth"] = relative_depth(results, folders)
    results = results.sort_values(["kind", metric], key=lambda s: s.map(_kind_rank) if s.name == "kind"
                                  else -s.astype(float)).reset_index(drop=True)
    md_path, html_path = report_paths(runs, out)
    md_path.parent.mkdir(parents=True, exist_ok=True)

    ranked = results.sort_values(metric, ascending=False, key=lambda s: s.astype(float).fillna(-1))
    top_rows = ranked.head(top)
    sections: list[tuple[str, list]] = []  # (title, [Table | Figure | str])

    intro = (f"{len(results)} rows from {len(folders)} run(s): "
             + ", ".join(f"{f.name} ({len(f.results)} rows)" for f in folders)
             + f". Ranking by {metric}. AUC mean ± sd: over test folds and repeats; pooled AUC [95% CI]: "
               "pooled out-of-fold predictions per repeat, averaged over repeats, with the stratified-"
               "bootstrap percentile interval. @Youden / @Y: at the threshold maximising Youden's J on "
               "each fold's training data.")
    random = sorted({f"{e.get('model')} ({e.get('weights')})" for f in folders
                     for e in (f.provenance.get("entries") or []) if str(e.get("weights", "")).startswith("none")})
    if random:  # never let random-weight features pass for pretrained ones
        intro += (f" **Note: the CNN features of {', '.join(random)} come from RANDOM weights, not "
                  "pretrained ones.**")
    if references:
        from featurekit.evaluation.references import reference_items

        sections.append(("Beside the paper", [Table(*x) if isinstance(x, tuple) else x
                                              for x in reference_items(results, references)]))
    sections.append(("Best of each kind", [intro, _summary_table(results, metric)]))
    fig = _layer_curves(results)
    lt = _layer_table(results)
    if fig is not None or lt is not None:
        sections.append(("Layer-wise performance", [x for x in (fig, lt) if x is not None]))
    sections.append(("All results", [_results_table(results)]))
    roc = _roc_figure(predictions, top_rows)
    conf = _confusion(predictions, top_rows.head(min(4, top)))
    if roc is not None or conf is not None:
        sections.append(("Best feature sets", [x for x in (roc, conf) if x is not None]))
    if not predictions.empty and len(top_rows) >= 2:
        keys = [(r["feature_set"], r["classifier"]) for _, r in top_rows.iterrows()]
        parts = {(r["feature_set"], r["classifier"]): r.get("parts", "") for _, r in results.iterrows()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comps = compare_aucs(predictions, keys, parts=parts, warn=False)
            all_comps = compare_aucs(predictions, [(r["feature_set"], r["classifier"])
                                                   for _, r in ranked.iterrows()], parts=parts, warn=False)
        p, nested = pvalue_matrix(comps, keys)
        items: list = []
        pf = _pvalue_figure([f"{a} · {b}" for a, b in keys], p, nested)
        if pf is not None:
            items.append(pf)
        vb = _vs_best_table(all_comps, keys[0])
        if vb is not None:
            items.append(vb)
        if bool(all_comps["nested"].any()) if not all_comps.empty else False:
            items.append("† Nested comparisons (a fusion against one of its own parts): DeLong's test is "
                         "conservative and its normal approximation invalid there (Demler et al., Stat Med "
                         "2012); a large p-value is weak evidence that the fusion adds nothing.")
        if items:
            sections.append(("Statistical comparison (DeLong)", items))
    curves = [f for f in (_training_curves(r) for r in folders) if f is not None]
    if curves:
        sections.append(("Training curves", curves))
    sections.append(("Provenance", [x for pair in _provenance_tables(folders) for x in pair]))

    doc_title = title or ("featurekit report: " + ", ".join(f.name for f in folders))
    _write_markdown(md_path, doc_title, sections)
    _write_html(html_path, doc_title, sections)
    return html_path


def _write_markdown(path: Path, title: str, sections) -> None:
    fig_dir = path.with_name(path.stem + "_files")
    lines = [f"# {title}", ""]
    for name, items in sections:
        lines += [f"## {name}", ""]
        for it in items:
            if isinstance(it, Figure):
                fig_dir.mkdir(parents=True, exist_ok=True)
                (fig_dir / f"{it.name}.png").write_bytes(it.png)
                lines += [f"![{it.title}]({fig_dir.name}/{it.name}.png)", ""]
                if it.caption:
                    lines += [f"*{it.caption}*", ""]
            elif isinstance(it, Table):
                lines += [it.markdown(), ""]
            elif isinstance(it, tuple):
                pass
            else:
                lines += [str(it) if not str(it).startswith("Run ") and not str(it).startswith("Features used")
                          else f"### {it}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _write_html(path: Path, title: str, sections) -> None:
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for name, items in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for it in items:
            if isinstance(it, Figure):
                b64 = base64.b64encode(it.png).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(it.title)}' src='data:image/png;base64,{b64}'>"
                             f"<figcaption>{html.escape(it.caption)}</figcaption></figure>")
            elif isinstance(it, Table):
                parts.append(it.html())
            else:
                text = str(it)
                if text.startswith("Run ") or text.startswith("Features used"):
                    parts.append(f"<h3>{html.escape(text)}</h3>")
                else:
                    parts.append(f"<p class='note'>{html.escape(text)}</p>")
    parts.append("<p class='note'>Written by featurekit. Cite the dataset wherever these results are "
                 "shown.</p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
