"""``featurekit report``: one or several run folders -> ``report.md`` + standalone ``report.html``.

The report reads only the run-folder files (:mod:`featurekit.evaluation.results.runfolder`
documents them), so rows of ``featurekit evaluate`` and ``featurekit finetune``
runs sit side by side. Sections:

1. best row of each kind (handcrafted, deep, fused, finetuned), after a paragraph
   saying per run what its numbers are (:func:`featurekit.report.wording.describe_run`:
   pooled out-of-fold predictions of k-fold CV, holdout test sets or the test split,
   and where the Youden thresholds were chosen); every caption below words its
   predictions the same way;
2. layer-wise curves: ROC AUC and F1 against the layer index, one line per
   (model, classifier), pooled estimate with its 95% bootstrap band,
   handcrafted rows as horizontal reference lines; when several models are
   compared, first all of them on one relative-depth axis (0 = input, 1 = the
   last layer of each model's table, from ``last_layer_index`` in the
   provenance entries), so a 13-layer ViT and an 18-layer VGG16 share a figure;
3. the per-layer table; where ``featurekit explain`` has run, where each layer
   looks (:mod:`featurekit.report.maps`); the full results table;
4. ROC curves of the best sets (each sample's mean score over repeats);
5. confusion matrices of the best sets at 0.5 and at the Youden thresholds
   (the first repeat);
6. DeLong p-values between the best sets (multiplicity-adjusted where the
   comparisons carry ``p_adjusted``; colour scale over the range present; nested
   pairs marked †), and ΔAUC against the best row with raw and adjusted p;
7. training curves (``training_curves.csv``) when a run has them, each fold's
   selected epoch marked;
8. provenance of every run (dataset fingerprint, counts per class, positive
   class, versions, weights and their sha256, CV protocol, seed, command line).

Multi-class runs (three or more classes, no positive class; see
:func:`featurekit.report.wording.describe_task`) get the multi-class metrics
with their intervals in the tables (macro one-vs-rest AUC, accuracy,
balanced accuracy, macro / weighted F1, precision, recall, κ, log loss), the
layer-wise curves of macro AUC and macro F1, and, for the selected row (else
the best one), a per-class table (AUC, sensitivity, specificity), its
confusion matrix over the classes (first repeat, pooled over its folds) and
its one-vs-rest ROC curves; the comparisons are paired bootstraps of the
macro-AUC difference instead of DeLong's test. Binary and multi-class runs,
or runs of different classes, do not share one report.

Plots are drawn with matplotlib's Agg backend; the HTML embeds them as base64
PNG (one file to mail around), the Markdown links PNG files written in
``<report>_files/``.
"""

from __future__ import annotations

import base64
import html
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.results.comparison import compare_aucs, pvalue_matrix
from featurekit.evaluation.results.runfolder import read_runs
from featurekit.report.figures import (
    BINARY_PANELS,
    MULTICLASS_PANELS,
    Figure,
    class_confusion,
    class_confusion_figure,
    class_roc_figure,
    confusion_figure,
    layer_curves_figure,
    per_run,
    pvalue_figure,
    relative_depth,
    roc_figure,
    row_label,
    training_curves_figure,
)
from featurekit.report.maps import maps_items
from featurekit.report.tables import (
    PARTIAL,
    Table,
    adjustment,
    confusion_table,
    kind_rank,
    layer_table,
    partial_folds_note,
    per_class_table,
    provenance_tables,
    results_table,
    summary_table,
    text_table,
    vs_best_table,
)
from featurekit.report.wording import RunTask, RunWording, describe_runs

__all__ = ["build_report", "text_table", "partial_folds_note", "report_paths", "Figure", "PARTIAL"]



# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def interval_methods(results: pd.DataFrame) -> str:
    """How the intervals of ``results`` were made, from their ``*_ci_method`` columns."""
    methods = sorted({str(v) for c in results.columns if c.endswith("_ci_method")
                      for v in results[c].dropna().unique() if str(v)})
    return "; ".join(methods) if methods else "stratified bootstrap percentile (runs written before the methods "\
                                              "were recorded)"


def comparison_settings(folders) -> dict:
    """``n_boot``, ``seed`` and ``confidence`` of the runs' own comparisons, for the report's to equal theirs
    (the first run's where the runs differ; 2000 replicates, seed 0 and 95 % where a run records none)."""
    for f in folders:
        prov = f.provenance or {}
        options = prov.get("options") or {}
        n_boot = options.get("n_boot")
        if isinstance(n_boot, (int, float)) and n_boot > 0:
            return {"n_boot": int(n_boot), "seed": int(prov.get("seed") or 0),
                    "confidence": float(options.get("confidence") or 0.95)}
    return {"n_boot": 2000, "seed": 0, "confidence": 0.95}


def selection_items(folders) -> list:
    """Per run with a selected row: what it is, in words, and how often each candidate was chosen."""
    from featurekit.evaluation.results.selection import describe_selection

    items: list = []
    for f in folders:
        record = f.provenance.get("selection")
        if not record:
            continue
        text = describe_selection(record)
        items.append(f"Run {f.name}: {text}" if len(folders) > 1 else text)
        freq = sorted(dict(record.get("frequency", {})).items(), key=lambda kv: -float(kv[1]))
        rows = [[name, f"{float(share):.0%}"] for name, share in freq if float(share) > 0]
        items.append(Table(["candidate", f"chosen in the {len(record.get('chosen', []))} outer folds"], rows,
                           [f"{sum(1 for _, s in freq if float(s) == 0)} of {len(freq)} candidates never chosen."]))
    return items


def report_task(wordings: dict[str, RunWording]) -> RunTask:
    """The task all runs share (what :func:`featurekit.report.wording.describe_task` says of each).

    Raises
    ------
    DataError
        Binary and multi-class runs, or multi-class runs of different classes: their
        AUCs, tables and tests are not comparable, so they do not share one report.
    """
    tasks = {name: w.task for name, w in wordings.items()}
    kinds = {t.classes for t in tasks.values()}
    if len(kinds) > 1:
        raise DataError("these runs do not share one task, so not one report: "
                        + "; ".join(f"{name}: {t.header}" for name, t in tasks.items())
                        + " (report them separately)")
    return next(iter(tasks.values()), RunTask())


def class_items(results: pd.DataFrame, predictions: pd.DataFrame, metric: str, task: RunTask,
                wordings: dict[str, RunWording]) -> list:
    """A multi-class report's per-class table, confusion matrix and one-vs-rest ROC curves of one row:
    the selected row (the best of them with several runs), else the best row by ``metric``."""
    pool = results[results["kind"] == "selected"]
    pool = pool if not pool.empty else results
    row = pool.loc[pool[metric].astype(float).fillna(-np.inf).idxmax()] if pool[metric].notna().any() \
        else pool.iloc[0]
    words = wordings.get(str(row.get("run", "")), next(iter(wordings.values())))
    label = row_label(row)
    items: list = [per_class_table(row, task)]
    counts = class_confusion(predictions, row, task.classes)
    if counts is not None:
        what = f"{words.first_repeat}, pooled over its folds"
        items += [class_confusion_figure(counts, task, label, what), confusion_table(counts, task, label, what)]
    roc = class_roc_figure(predictions, row, task, words.scores)
    if roc is not None:
        items.append(roc)
    return items


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
tr.reference td{background:#fdf3dc;font-style:italic;color:#5a4a1f}
tr.selected td{font-weight:600;background:#eaf2fb}
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
        section "Beside the paper" (see :mod:`featurekit.report.references`).

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
    results = results.sort_values(["kind", metric], key=lambda s: s.map(kind_rank) if s.name == "kind"
                                  else -s.astype(float)).reset_index(drop=True)
    md_path, html_path = report_paths(runs, out)
    md_path.parent.mkdir(parents=True, exist_ok=True)

    ranked = results.sort_values(metric, ascending=False, key=lambda s: s.astype(float).fillna(-1))
    top_rows = ranked.head(top)
    sections: list[tuple[str, list]] = []  # (title, [Table | Figure | str])

    wordings = describe_runs(folders)
    task = report_task(wordings)
    intro = (f"{len(results)} rows from {len(folders)} run(s): "
             + ", ".join(f"{f.name} ({len(f.results)} rows)" for f in folders)
             + f". Ranking by {metric}. Intervals: 95 % intervals of the pooled estimates "
             f"({interval_methods(results)}); ")
    if task.multiclass:
        intro += f"{task.header}. "
    else:
        intro += ("accuracy, F1, sensitivity, specificity at threshold 0.5 unless marked @Youden / @Y "
                  "(the threshold maximising Youden's J). ")
    ovr = list(dict.fromkeys(w.task.header for w in wordings.values() if w.task.one_vs_rest))
    if ovr:  # a binary view of three or more classes: say which
        intro += f"Task: {'; '.join(ovr)}. "
    distinct = list(dict.fromkeys(w.sentence() for w in wordings.values()))
    intro += distinct[0] if len(distinct) == 1 else " ".join(f"Run {name}: {w.sentence()}"
                                                             for name, w in wordings.items())
    random = sorted({f"{e.get('model')} ({e.get('weights')})" for f in folders
                     for e in (f.provenance.get("entries") or []) if str(e.get("weights", "")).startswith("none")})
    if random:  # never let random-weight features pass for pretrained ones
        intro += (f" **Note: the CNN features of {', '.join(random)} come from RANDOM weights, not "
                  "pretrained ones.**")
    if references:
        from featurekit.report.references import reference_items

        sections.append(("Beside the paper", list(reference_items(results, references, folders))))
    sections.append(("Best of each kind", [intro, summary_table(results, metric, task)]))
    chosen = selection_items(folders)
    if chosen:
        sections.append(("The selected row: the best candidate chosen on training data", chosen))
    deep_runs = set(results.loc[results["kind"].isin(["deep", "fused", "handcrafted"]), "run"].astype(str)) \
        if "run" in results.columns else set()
    fig = layer_curves_figure(results, per_run({n: w.estimate for n, w in wordings.items() if n in deep_runs}),
                              MULTICLASS_PANELS if task.multiclass else BINARY_PANELS)
    lt = layer_table(results, task)
    if fig is not None or lt is not None:
        sections.append(("Layer-wise performance", [x for x in (fig, lt) if x is not None]))
    looks = maps_items(folders)
    if looks:
        sections.append(("Where each layer looks: evidence on the lesion", looks))
    sections.append(("All results", [results_table(results, task)]))
    top_runs = {str(r) for r in top_rows.get("run", pd.Series(dtype=str))}
    top_scores = per_run({n: w.scores for n, w in wordings.items() if n in top_runs})
    if task.multiclass:
        sections.append(("Per class: the selected row (else the best)",
                         class_items(results, predictions, metric, task, wordings)))
        top_scores = per_run({n: w.estimate for n, w in wordings.items() if n in top_runs})
    else:
        roc = roc_figure(predictions, top_rows, top_scores)
        conf = confusion_figure(predictions, top_rows.head(min(4, top)), wordings)
        if roc is not None or conf is not None:
            sections.append(("Best feature sets", [x for x in (roc, conf) if x is not None]))
    if not predictions.empty and len(top_rows) >= 2:
        keys = [(r["feature_set"], r["classifier"]) for _, r in top_rows.iterrows()]
        parts = {(r["feature_set"], r["classifier"]): r.get("parts", "") for _, r in results.iterrows()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the runs' own settings: the same pair gets the same interval and p as in their comparisons.csv
            # (a binary run's are DeLong's, with no bootstrap unless asked)
            run_settings = comparison_settings(folders)
            settings = run_settings if task.multiclass else {"confidence": run_settings["confidence"]}
            comps = compare_aucs(predictions, keys, parts=parts, warn=False, **settings)
            all_comps = compare_aucs(predictions, [(r["feature_set"], r["classifier"])
                                                   for _, r in ranked.iterrows()], parts=parts, warn=False,
                                     **settings)
        adjusted = adjustment(comps)
        p, nested = pvalue_matrix(comps, keys, column="p_adjusted" if adjusted else "p_value")
        items: list = []
        pf = pvalue_figure([f"{a} · {b}" for a, b in keys], p, nested, top_scores, adjusted, task)
        if pf is not None:
            items.append(pf)
        vb = vs_best_table(all_comps, keys[0], task, confidence=run_settings["confidence"])
        if vb is not None:
            items.append(vb)
        if bool(all_comps["nested"].any()) if not all_comps.empty else False:
            items.append("† Nested comparisons (a fusion against one of its own parts): a large p-value is weak "
                         "evidence that the fusion adds nothing." if task.multiclass else
                         "† Nested comparisons (a fusion against one of its own parts): DeLong's test is "
                         "conservative and its normal approximation invalid there (Demler et al., Stat Med "
                         "2012); a large p-value is weak evidence that the fusion adds nothing.")
        if items:
            sections.append((f"Statistical comparison ({task.test})", items))
    curves = [f for f in (training_curves_figure(r) for r in folders) if f is not None]
    if curves:
        sections.append(("Training curves", curves))
    sections.append(("Provenance", [x for pair in provenance_tables(folders) for x in pair]))

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
