"""The tables of a report: the text table of ``featurekit evaluate``, and the
summary, results, per-layer, ΔAUC-against-the-best and provenance tables of
``featurekit report``, as :class:`Table` objects (Markdown and HTML renderings).

A multi-class run (:class:`~featurekit.report.wording.RunTask`) gets its own
columns: macro one-vs-rest AUC, accuracy, balanced accuracy, macro F1, κ with
their pooled estimates and intervals, and the per-class and confusion tables
of one row; binary runs keep theirs.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

from featurekit.errors import DataError
from featurekit.evaluation.results.comparison import versus_best
from featurekit.report.figures import as_float, format_p, row_label
from featurekit.report.wording import RunTask, describe_run, describe_task

#: the selected row first: the estimate of "choose the best, then use it"; the others are maxima over rows
KIND_ORDER = ["selected", "handcrafted", "deep", "fused", "finetuned"]

__all__ = ["Table", "text_table", "partial_folds_note", "summary_table", "results_table", "layer_table",
           "vs_best_table", "provenance_tables", "per_class_table", "confusion_table", "kind_rank", "KIND_ORDER",
           "PARTIAL", "adjustment"]

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
    defined, folds = as_float(row.get(f"{m}_n_folds")), as_float(row.get("n_folds"))
    return math.isfinite(defined) and math.isfinite(folds) and defined < folds


def _fm(row: pd.Series, m: str) -> str:
    """Fold mean of ``m``, marked with :data:`PARTIAL` when it rests on only some folds."""
    return _num(row.get(m)) + (PARTIAL if _partial(row, m) else "")


def _pm(row: pd.Series, m: str) -> str:
    """Fold mean ± sd of ``m``, marked like :func:`_fm`."""
    if not math.isfinite(as_float(row.get(f"{m}_sd"))):
        return _fm(row, m)
    return f"{_num(row.get(m))} ± {_num(row.get(f'{m}_sd'))}" + (PARTIAL if _partial(row, m) else "")


def partial_folds_note(results: pd.DataFrame, metrics: Sequence[str], multiclass: bool = False) -> list[str]:
    """Footnote of the :data:`PARTIAL` marks of ``metrics`` in ``results`` (empty when none).

    Returns
    -------
    list of str
        A heading line, one line per flagged row (``feature set · classifier:
        roc_auc on 2 of 5 folds, ...``) and an explanation.
    """
    rows = []
    for _, r in results.iterrows():
        bad = [f"{m} on {int(as_float(r.get(f'{m}_n_folds')))} of {int(as_float(r.get('n_folds')))} folds"
               for m in metrics if _partial(r, m)]
        if bad:
            rows.append(f"{row_label(r)}: {', '.join(bad)}")
    if not rows:
        return []
    why = ("A test fold where no class has the metric's terms defined (e.g. κ when one class only is present "
           "or predicted)" if multiclass else
           "A test fold without a positive or without a negative sample (or, for precision and NPV, "
           "without a predicted one)")
    return ([f"{PARTIAL} mean over only the test folds where the metric is defined:"] + rows
            + [why + " leaves the metric undefined there, so the fold mean rests on fewer "
               "folds than the protocol made; the pooled estimates and their intervals use every prediction."])


def _ci(row: pd.Series, m: str) -> str:
    return f"{_num(row.get(f'{m}_pooled'))} [{_num(row.get(f'{m}_ci_lo'))}, {_num(row.get(f'{m}_ci_hi'))}]"


def text_table(results: pd.DataFrame, metric: str = "roc_auc", provenance: Mapping[str, Any] | None = None) -> str:
    """The results as a plain-text table (what ``featurekit evaluate`` prints).

    A fold mean resting on only some test folds (the metric undefined in the
    others, e.g. ROC AUC in folds without a positive sample) is marked with
    :data:`PARTIAL`, and a footnote under the table says on how many folds.
    With the run's ``provenance``, lines under the table say what the numbers
    are (:func:`featurekit.report.wording.describe_run`): where the pooled
    estimates come from, what mean ± sd is over, where the Youden threshold was chosen.
    A multi-class run (:func:`~featurekit.report.wording.describe_task`) shows
    macro AUC, accuracy, balanced accuracy, macro F1 and κ, and says what they are.
    """
    task = describe_task(provenance, results)
    if task.multiclass:
        return _multiclass_text_table(results, provenance, task)
    cols = [("feature set", lambda r: str(r["feature_set"])), ("classifier", lambda r: str(r["classifier"])),
            ("kind", lambda r: str(r.get("kind", ""))),
            ("AUC mean±sd", lambda r: _pm(r, "roc_auc")),
            ("pooled AUC [95% CI]", lambda r: _ci(r, "roc_auc")),
            ("acc", lambda r: _fm(r, "accuracy")),
            ("F1", lambda r: _fm(r, "f1")), ("sens", lambda r: _fm(r, "sensitivity")),
            ("spec", lambda r: _fm(r, "specificity")),
            ("bal.acc@Youden", lambda r: _fm(r, "balanced_accuracy_youden"))]
    lines = _plain_table(results, cols)
    note = partial_folds_note(results, ["roc_auc", "accuracy", "f1", "sensitivity", "specificity",
                                        "balanced_accuracy_youden"])
    if note:
        lines += [""] + note[:1] + [f"  {line}" for line in note[1:-1]] + [note[-1]]
    if provenance is not None:
        w = describe_run(provenance, results)
        lines += ["", f"pooled AUC [95% CI]: {w.estimate}", f"mean±sd and acc, F1, sens, spec (threshold 0.5): "
                  f"{w.spread}", f"@Youden: threshold {w.threshold}"]
    return "\n".join(lines)


def _kappa_name(task: RunTask) -> str:
    return "kappa (quadratic)" if task.ordered else "kappa"


def _multiclass_text_table(results: pd.DataFrame, provenance: Mapping[str, Any] | None, task: RunTask) -> str:
    """:func:`text_table` of a multi-class run."""
    kappa = _kappa_name(task)
    cols = [("feature set", lambda r: str(r["feature_set"])), ("classifier", lambda r: str(r["classifier"])),
            ("kind", lambda r: str(r.get("kind", ""))),
            ("macro AUC mean±sd", lambda r: _pm(r, "roc_auc")),
            ("pooled macro AUC [95% CI]", lambda r: _ci(r, "roc_auc")),
            ("acc", lambda r: _fm(r, "accuracy")), ("bal.acc", lambda r: _fm(r, "balanced_accuracy")),
            ("macro F1", lambda r: _fm(r, "f1_macro")), (kappa, lambda r: _fm(r, "kappa"))]
    lines = _plain_table(results, cols)
    note = partial_folds_note(results, ["roc_auc", "accuracy", "balanced_accuracy", "f1_macro", "kappa"],
                              multiclass=True)
    if note:
        lines += [""] + note[:1] + [f"  {line}" for line in note[1:-1]] + [note[-1]]
    lines.append("")
    if provenance is not None:
        w = describe_run(provenance, results)
        lines += [f"pooled macro AUC [95% CI]: {w.estimate}",
                  f"mean±sd and acc, bal.acc, macro F1, {kappa}: {w.spread}"]
    lines += [f"macro AUC: {task.auc}", f"acc, bal.acc, macro F1, {kappa}: {task.predicted}; {kappa}: {task.kappa}"]
    return "\n".join(lines)


def _plain_table(results: pd.DataFrame, cols) -> list[str]:
    """The lines of a plain-text table: ``cols`` = (header, cell function of a row), a rule under the header."""
    rows = [[name for name, _ in cols]]
    for _, r in results.iterrows():
        rows.append([fn(r) for _, fn in cols])
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


@dataclass
class Table:
    """A table: header and rows of strings, and footnote lines under it.

    ``row_classes`` (optional, one per row): ``"selected"`` marks the selected row
    (bold); ``"reference"`` marks a row that
    is not featurekit's own result (a paper's reported number): italic in
    Markdown, shaded and italic in HTML (``<tr class='reference'>``).
    """

    header: list
    rows: list
    notes: list = field(default_factory=list)
    row_classes: list = field(default_factory=list)

    def _class(self, i: int) -> str:
        return str(self.row_classes[i]) if i < len(self.row_classes) and self.row_classes[i] else ""

    def markdown(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        mark = {"reference": "*", "selected": "**"}  # a paper's row in italics, the selected row in bold

        def cell(c, i):
            m = mark.get(self._class(i), "")
            return f"{m}{esc(c)}{m}" if m and str(c) else esc(c)

        out = ["| " + " | ".join(esc(h) for h in self.header) + " |",
               "|" + "|".join("---" for _ in self.header) + "|"]
        out += ["| " + " | ".join(cell(c, i) for c in row) + " |" for i, row in enumerate(self.rows)]
        if self.notes:
            out += [""] + [f"{line}  " for line in self.notes]
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join((f"<tr class='{html.escape(self._class(i))}'>" if self._class(i) else "<tr>")
                       + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for i, row in enumerate(self.rows))
        notes = "<br>".join(html.escape(str(line)) for line in self.notes)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                + (f"<p class='note'>{notes}</p>" if notes else ""))


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


def kind_rank(k: str) -> int:
    return KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER)


def _best_of_each_kind(results: pd.DataFrame, metric: str) -> list[tuple[str, pd.Series]]:
    """(label, row) of the best row by ``metric`` of each kind, in :data:`KIND_ORDER`."""
    out = []
    for kind in sorted(results["kind"].dropna().unique(), key=kind_rank):
        g = results[results["kind"] == kind]
        if g[metric].notna().any():
            r = g.loc[g[metric].astype(float).idxmax()]
        else:
            r = g.iloc[0]
        label = kind or "–"
        if kind != "selected" and len(g) > 1:
            label = f"{label} (best of {len(g)})"
        out.append((label, r))
    return out


def _class_counts(r: pd.Series, task: RunTask) -> str:
    """``n (n of each class)`` of a multi-class row: ``45 (15 / 15 / 15)``."""
    if not math.isfinite(as_float(r.get("n"))):
        return "–"
    return f"{int(as_float(r['n']))} ({' / '.join(_count(r.get(f'n[{c}]')) for c in task.classes)})"


def _count(x: Any) -> str:
    f = as_float(x)
    return str(int(f)) if math.isfinite(f) else "–"


def summary_table(results: pd.DataFrame, metric: str, task: RunTask | None = None) -> Table:
    if task is not None and task.multiclass:
        return _multiclass_summary_table(results, metric, task)
    header = ["kind", "best feature set", "classifier", "AUC mean ± sd", "pooled AUC [95% CI]",
              "accuracy", "F1", "sensitivity", "specificity", "sens@Youden", "spec@Youden", "n (pos)"]
    rows, shown, classes = [], [], []
    for label, r in _best_of_each_kind(results, metric):
        shown.append(r)
        classes.append("selected" if r["kind"] == "selected" else "")
        rows.append([label, r["feature_set"], r["classifier"], _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                     _fm(r, "accuracy"), _fm(r, "f1"), _fm(r, "sensitivity"), _fm(r, "specificity"),
                     _fm(r, "sensitivity_youden"), _fm(r, "specificity_youden"),
                     f"{int(as_float(r.get('n')) or 0)} ({int(as_float(r.get('n_pos')) or 0)})"
                     if math.isfinite(as_float(r.get("n"))) else "–"])
    notes = partial_folds_note(pd.DataFrame(shown), [
        "roc_auc", "accuracy", "f1", "sensitivity", "specificity", "sensitivity_youden", "specificity_youden"])
    if "selected" in set(results["kind"].dropna()):
        notes = [SELECTED_NOTE] + notes
    return Table(header, rows, notes, classes)


#: the multi-class metrics of the report's tables with their pooled estimate and interval: (column, header)
MULTICLASS_COLUMNS = (("accuracy", "accuracy"), ("balanced_accuracy", "bal. acc."), ("f1_macro", "macro F1"),
                      ("precision_macro", "macro precision"), ("recall_macro", "macro recall"),
                      ("f1_weighted", "weighted F1"), ("kappa", "κ"), ("log_loss", "log loss"))
#: the subset of :data:`MULTICLASS_COLUMNS` in the summary table
_MULTICLASS_SUMMARY = ("accuracy", "balanced_accuracy", "f1_macro", "kappa")


def _multiclass_notes(task: RunTask) -> list[str]:
    return [f"macro AUC: {task.auc}. Pooled estimate [95% interval] of each metric; {task.predicted}; "
            f"κ: {task.kappa}."]


def _multiclass_summary_table(results: pd.DataFrame, metric: str, task: RunTask) -> Table:
    cols = [(m, h) for m, h in MULTICLASS_COLUMNS if m in _MULTICLASS_SUMMARY]
    header = ["kind", "best feature set", "classifier", "macro AUC mean ± sd", "pooled macro AUC [95% CI]",
              *[f"{h} [95% CI]" for _, h in cols], f"n ({' / '.join(task.classes)})"]
    rows, shown, classes = [], [], []
    for label, r in _best_of_each_kind(results, metric):
        shown.append(r)
        classes.append("selected" if r["kind"] == "selected" else "")
        rows.append([label, r["feature_set"], r["classifier"], _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                     *[_ci(r, m) for m, _ in cols], _class_counts(r, task)])
    notes = _multiclass_notes(task) + partial_folds_note(pd.DataFrame(shown), ["roc_auc"], multiclass=True)
    if "selected" in set(results["kind"].dropna()):
        notes = [SELECTED_NOTE] + notes
    return Table(header, rows, notes, classes)


def per_class_table(row: pd.Series, task: RunTask) -> Table:
    """Per class of a multi-class ``row``: its count, one-vs-rest AUC, sensitivity and specificity with intervals."""
    rows = [[c, _count(row.get(f"n[{c}]")), _ci(row, f"roc_auc[{c}]"), _ci(row, f"sensitivity[{c}]"),
             _ci(row, f"specificity[{c}]")] for c in task.classes]
    methods = sorted({str(row.get(f"{m}[{c}]_ci_method")) for m in ("roc_auc", "sensitivity", "specificity")
                      for c in task.classes if isinstance(row.get(f"{m}[{c}]_ci_method"), str)
                      and row.get(f"{m}[{c}]_ci_method")})
    return Table([f"class ({row_label(row)})", "n", "AUC vs the rest [95% CI]", "sensitivity [95% CI]",
                  "specificity [95% CI]"], rows,
                 ["Per class c: the AUC of c's probability for c against the other classes; sensitivity: the share "
                  "of c's samples predicted as c; specificity: the share of the other classes' samples not "
                  f"predicted as c ({task.predicted}). Pooled estimate [95% interval"
                  + (f": {'; '.join(methods)}" if methods else "") + "]."])


def confusion_table(counts, task: RunTask, label: str, what: str) -> Table:
    """A ``(K, K)`` confusion matrix (rows: true class) as counts with the row share in parentheses."""
    rows = []
    for c, line in zip(task.classes, counts):
        total = float(sum(line))
        rows.append([c, *[f"{int(v)} ({v / total:.2f})" if total else f"{int(v)}" for v in line], str(int(total))])
    return Table([f"true \\ predicted ({label})", *task.classes, "n"], rows,
                 [f"Counts of {what}; in parentheses each count over its true class's count (the diagonal: each "
                  f"class's sensitivity); {task.predicted}."])


#: under a table holding the selected row: what it is, and why the other kinds' best rows are optimistic
SELECTED_NOTE = ("selected: in each outer fold the candidate best on held-out predictions of its training part "
                 "(never the test part), scored on the test part -- the estimate of choosing the best. A kind's "
                 "\"best of N\" is the maximum of N rows scored on the same test folds: biased upward.")


def results_table(results: pd.DataFrame, task: RunTask | None = None) -> Table:
    if task is not None and task.multiclass:
        header = ["feature set", "classifier", "kind", "macro AUC mean ± sd", "pooled macro AUC [95% CI]",
                  *[f"{h} [95% CI]" for _, h in MULTICLASS_COLUMNS], "run"]
        rows = [[r["feature_set"], r["classifier"], r.get("kind", ""), _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                 *[_ci(r, m) for m, _ in MULTICLASS_COLUMNS], r.get("run", "")] for _, r in results.iterrows()]
        return Table(header, rows, _multiclass_notes(task) + partial_folds_note(results, ["roc_auc"],
                                                                                 multiclass=True))
    header = ["feature set", "classifier", "kind", "AUC mean ± sd", "pooled AUC [95% CI]", "PR AUC",
              "accuracy", "bal. acc.", "F1", "MCC", "sens", "spec", "sens@Y", "spec@Y", "F1@Y", "run"]
    rows = []
    for _, r in results.iterrows():
        rows.append([r["feature_set"], r["classifier"], r.get("kind", ""), _pm(r, "roc_auc"), _ci(r, "roc_auc"),
                     _fm(r, "pr_auc"), _fm(r, "accuracy"), _fm(r, "balanced_accuracy"), _pm(r, "f1"), _fm(r, "mcc"),
                     _fm(r, "sensitivity"), _fm(r, "specificity"),
                     _fm(r, "sensitivity_youden"), _fm(r, "specificity_youden"),
                     _fm(r, "f1_youden"), r.get("run", "")])
    return Table(header, rows, partial_folds_note(results, [
        "roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1", "mcc", "sensitivity", "specificity",
        "sensitivity_youden", "specificity_youden", "f1_youden"]))


def layer_table(results: pd.DataFrame, task: RunTask | None = None) -> Table | None:
    deep = results[(results["kind"] == "deep") & results["layer_index"].notna()]
    if deep.empty:
        return None
    deep = deep.sort_values(["model", "classifier", "layer_index"])
    if task is not None and task.multiclass:
        header = ["model", "index", "layer", "classifier", "macro AUC mean ± sd", "pooled macro AUC [95% CI]",
                  "macro F1 mean ± sd", "pooled macro F1 [95% CI]", "bal. acc. [95% CI]"]
        rows = [[r["model"], str(int(as_float(r["layer_index"]))), r["layer"], r["classifier"], _pm(r, "roc_auc"),
                 _ci(r, "roc_auc"), _pm(r, "f1_macro"), _ci(r, "f1_macro"), _ci(r, "balanced_accuracy")]
                for _, r in deep.iterrows()]
        return Table(header, rows, _multiclass_notes(task) + partial_folds_note(deep, ["roc_auc", "f1_macro"],
                                                                                multiclass=True))
    header = ["model", "index", "layer", "classifier", "AUC mean ± sd", "pooled AUC [95% CI]",
              "F1 mean ± sd", "pooled F1 [95% CI]", "bal. acc.@Youden"]
    rows = [[r["model"], str(int(as_float(r["layer_index"]))), r["layer"], r["classifier"], _pm(r, "roc_auc"),
             _ci(r, "roc_auc"), _pm(r, "f1"), _ci(r, "f1"), _fm(r, "balanced_accuracy_youden")]
            for _, r in deep.iterrows()]
    return Table(header, rows, partial_folds_note(deep, ["roc_auc", "f1", "balanced_accuracy_youden"]))


def adjustment(comparisons: pd.DataFrame | None) -> str | None:
    """How the ``p_adjusted`` of ``comparisons`` were adjusted ("holm, family of 15 comparisons"); None without them."""
    if comparisons is None or "p_adjusted" not in comparisons.columns:
        return None
    if not pd.to_numeric(comparisons["p_adjusted"], errors="coerce").notna().any():
        return None
    method_col = "adjust" if "adjust" in comparisons.columns else "adjust_method"
    methods = sorted({str(m) for m in comparisons.get(method_col, pd.Series(dtype=object)).dropna()})
    sizes = sorted({int(f) for f in pd.to_numeric(comparisons.get("family_size", pd.Series(dtype=float)),
                                                    errors="coerce").dropna()})
    text = ", ".join(methods) or "method not recorded"
    if sizes:
        text += ", family of " + " / ".join(map(str, sizes)) + " comparisons"
    return text


def vs_best_table(comparisons: pd.DataFrame, best: tuple, task: RunTask | None = None,
                  confidence: float = 0.95) -> Table | None:
    """ΔAUC (best − other) of every row compared with the best, its DeLong p (multi-class: the paired
    bootstrap's p of the macro-AUC difference) and the p adjusted over that family of comparisons
    (:func:`featurekit.evaluation.results.comparison.versus_best`)."""
    if comparisons is None or comparisons.empty:
        return None
    try:
        vb = versus_best(comparisons, best)
    except DataError:
        return None
    how = adjustment(vb)
    rows = [[f"{r.other_feature_set} · {r.other_classifier}", _num(r.delta_auc), f"[{_num(r.ci_lo)}, {_num(r.ci_hi)}]",
             format_p(r.p_value), *([format_p(r.p_adjusted)] if how else []), "yes †" if r.nested else ""]
            for r in vb.itertuples(index=False)]
    if not rows:
        return None
    multiclass_task = task if task is not None and task.multiclass else None
    multiclass = multiclass_task is not None
    return Table([f"compared with the best ({best[0]} · {best[1]})",
                  "Δ macro AUC (best − other)" if multiclass else "ΔAUC (best − other)", f"{confidence:.0%} CI",
                  "p (paired bootstrap)" if multiclass else "p (DeLong)", *([f"p adjusted ({how})"] if how else []),
                  "nested"], rows, [f"Paired test: {multiclass_task.test}."] if multiclass_task is not None else [])


def provenance_tables(runs) -> list[tuple[str, Table]]:
    out = []
    for run in runs:
        p = run.provenance or {}
        ds = p.get("dataset", {}) or {}
        counts = ds.get("counts") or {}
        task = describe_task(p, run.results)
        rows = [
            ["dataset", f"{ds.get('name', '')} ({ds.get('source', '')})"],
            ["fingerprint", str(ds.get("fingerprint", ""))],
            ["counts per class", ", ".join(f"{k}: {v}" for k, v in counts.items()) or "–"],
            ["classes", task.header] if task.multiclass else
            ["positive class", task.header if task.one_vs_rest else str(p.get("positive", ""))],
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
