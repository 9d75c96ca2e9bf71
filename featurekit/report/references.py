"""Reference rows: a paper's reported numbers beside ours, in a study's report.

A paper's numbers were measured on *its* data with *its* protocol. Every
reference row says whether that is the data set our matching rows were
computed on ("reported on the same data (...)") or not ("reported on other
data (...)"), is styled apart from ours, and is followed by our matching rows
with their confidence intervals, so the two are read side by side and never
mistaken for one another. The substitutions a study made (data, network,
input size, epochs) are listed below the table.

``references`` (what :func:`featurekit.studies.references_of` returns)::

    {"title": ..., "citation": ..., "paper_data": "131 ultrasound images ...", "paper_dataset": "",
     "settings": ...,
     "note": ..., "profile": "quick", "substitutions": ["..."],
     "reported": [{"label": "ResNet-18 pretrained", "ours": ["r18*"], "accuracy": 0.939, "roc_auc": 0.944}]}

``ours`` patterns (shell globs) match a row's feature set, its run folder's
name, or ``RUN/FEATURE_SET``.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Mapping

import pandas as pd

__all__ = ["reference_items", "METRIC_LABELS"]

#: metric column -> table heading, in the order the table shows them
METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "bal. acc.", "precision": "precision",
                 "npv": "NPV", "sensitivity": "sensitivity", "specificity": "specificity", "f1": "F1",
                 "mcc": "MCC", "youden_index": "Youden J", "roc_auc": "ROC AUC", "pr_auc": "PR AUC"}


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


#: a paper's metric -> the column a multi-class row holds it in (the macro average; the paper rarely says which)
MULTICLASS_COLUMNS = {"precision": "precision_macro", "sensitivity": "recall_macro", "f1": "f1_macro"}


def _multiclass(row: pd.Series) -> bool:
    """A multi-class row: class counts ``n[<class>]`` instead of ``n_pos``."""
    return any(str(k).startswith("n[") and pd.notna(v) for k, v in row.items())


def _ours(row: pd.Series, metric: str) -> str:
    if _multiclass(row):
        metric = MULTICLASS_COLUMNS.get(metric, metric)
    value = _f(row.get(f"{metric}_pooled", row.get(metric)))
    if not math.isfinite(value):
        value = _f(row.get(metric))
    if not math.isfinite(value):
        return "–"
    lo, hi = _f(row.get(f"{metric}_ci_lo")), _f(row.get(f"{metric}_ci_hi"))
    ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"{value:.3f}{ci}"


def _matches(row: pd.Series, patterns) -> bool:
    names = [str(row.get("feature_set", "")), str(row.get("run", "")),
             f"{row.get('run', '')}/{row.get('feature_set', '')}"]
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def _dataset_names(runs) -> dict[str, str]:
    """``{run name: the name featurekit gave its data set}`` (lower case)."""
    out = {}
    for run in runs or ():
        ds = (getattr(run, "provenance", None) or {}).get("dataset") or {}
        if isinstance(ds, Mapping) and ds.get("name"):
            out[run.name] = str(ds["name"]).strip().lower()
    return out


def reference_items(results: pd.DataFrame, references: Mapping[str, Any], runs=()) -> list:
    """The report section's items: text paragraphs (str) and :class:`~featurekit.report.tables.Table` s.

    Reference rows (the paper's numbers) are styled apart from ours (class
    ``reference``: shaded and italic in HTML, italic in Markdown) and say on
    which data they were measured: "same data" when the paper's data set
    (``references["paper_dataset"]``, a data set name such as ``breastmnist``)
    is the data set of every run whose rows sit under it (the name featurekit
    gave it, from ``provenance.json``), "other data (...)" otherwise.
    """
    from featurekit.report.tables import Table

    reported = list(references.get("reported") or [])
    metrics = [m for m in METRIC_LABELS if any(m in r for r in reported)] or ["roc_auc"]
    if "roc_auc" not in metrics:
        metrics.append("roc_auc")
    data = references.get("paper_data") or "the paper's own data"
    paper_dataset = str(references.get("paper_dataset") or "").strip().lower()
    names = _dataset_names(runs)
    header = ["source", "model / feature set", *[METRIC_LABELS[m] for m in metrics]]
    rows, classes, same_flags = [], [], []
    any_multiclass = False
    for ref in reported:
        patterns = list(ref.get("ours") or [])
        matched = results[[_matches(r, patterns) for _, r in results.iterrows()]] if patterns else results.iloc[:0]
        used = {names.get(str(run)) for run in matched.get("run", pd.Series(dtype=str))}
        same = bool(paper_dataset) and not matched.empty and used == {paper_dataset}
        same_flags.append(same)
        source = f"paper: reported on the same data ({data})" if same else f"paper: reported on other data ({data})"
        rows.append([source, str(ref["label"]), *[f"{float(ref[m]):.3f}" if m in ref else "–" for m in metrics]])
        classes.append("reference")
        for _, r in matched.iterrows():
            any_multiclass = any_multiclass or _multiclass(r)
            label = f"{r['feature_set']} · {r['classifier']}"
            source = f"ours: {r.get('run', '')}" + (f" ({r['protocol']})" if str(r.get("protocol", "")) else "")
            rows.append([source, label, *[_ours(r, m) for m in metrics]])
            classes.append("ours")
        if patterns and matched.empty:
            rows.append(["ours", f"(no row matches {', '.join(patterns)}: step skipped in this profile?)",
                         *["–" for _ in metrics]])
            classes.append("ours")
    if same_flags and all(same_flags):
        intro = (f"The paper's reported numbers (shaded, italic rows) were measured on the same data set ({data}), "
                 "with the paper's protocol, training and random splits: differences within our intervals are "
                 "expected; read them against those intervals.")
    elif any(same_flags):
        intro = ("The paper's reported numbers (shaded, italic rows) say on which data each was measured: the "
                 f"same data set as ours ({data}) or other data; those on other data are a point of orientation, "
                 "not a result to reproduce digit by digit.")
    else:
        intro = ("The paper's reported numbers (shaded, italic rows) were measured on other data "
                 f"({data}) with the paper's protocol, so they are a point of orientation, not a result to "
                 "reproduce digit by digit.")
    intro += (" Our rows: the pooled estimate with its 95% stratified-bootstrap interval (threshold metrics at "
              "0.5); the report's first section says per run which predictions are pooled.")
    if any_multiclass:
        intro += (" Multi-class rows: ROC AUC is the macro one-vs-rest AUC, the predicted class the most probable "
                  "one (no threshold), and precision, sensitivity (recall) and F1 their macro averages over the "
                  "classes.")
    items: list = [intro]
    if references.get("citation"):
        items.append(f"Paper: {references['citation']}")
    if references.get("settings"):
        items.append(f"The paper's settings: {references['settings']}")
    if rows:
        items.append(Table(header, rows, row_classes=classes))
    if references.get("note"):
        items.append(str(references["note"]))
    subs = list(references.get("substitutions") or [])
    if subs:
        profile = references.get("profile")
        items.append(f"Substitutions made in this study{f' ({profile} profile)' if profile else ''}:")
        items.append(Table(["substitution"], [[s] for s in subs]))
    return items
