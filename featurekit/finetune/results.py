"""Training curves and the run folder of cross-validated fine-tuning.

The run folder follows the contract of ``featurekit evaluate``
(:mod:`featurekit.evaluation.results.runfolder`) and is written by the same writer
(:func:`featurekit.evaluation.results.runfolder.write_run`); its results rows are made
by the same function (:func:`featurekit.evaluation.results.summary.summarise_predictions`)
from ``predictions.csv`` alone, so fine-tuned rows and feature-based rows carry
exactly the same statistics::

    runs/NAME/
      results.csv, results.json   one row: feature_set "finetune:MODEL", classifier "finetuned",
                                  kind "finetuned", model, n, n_pos (binary) or n[<class>]
                                  (multi-class), protocol, every metric with _sd, _ci_lo, _ci_hi,
                                  _pooled (binary: and the _youden variants; multi-class: the
                                  macro, weighted and per-class metrics)
      predictions.csv             id, y_true, feature_set, classifier, repeat, fold, score, threshold,
                                  proba[<class>]... (multi-class), group (grouped data)
      provenance.json             dataset (fingerprint, counts), task, classes, positive, one_vs_rest,
                                  monitor, cv, protocol, seed, command, versions, weights + sha256,
                                  lineage, arch, preprocessing, options, folds
      training_curves.csv         fold, repeat, epoch, split (train/val), loss, metric (AUC: the
                                  positive class's, or the macro one-vs-rest AUC of a multi-class run)
      training_curves.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from featurekit.evaluation.results.runfolder import write_run as write_run_folder
from featurekit.evaluation.results.summary import PREDICTION_COLUMNS, summarise_predictions  # noqa: F401  (PREDICTION_COLUMNS re-exported)
from featurekit.io import StagedFolder, atomic_call

CURVE_COLUMNS = ["fold", "repeat", "epoch", "split", "loss", "metric"]


def results_rows(predictions: pd.DataFrame, *, protocol: str, model: str, n_boot: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """The results rows of fine-tuned predictions (the evaluation package's statistics)."""
    meta = {(fs, clf): {"kind": "finetuned", "model": model, "layer": "", "layer_index": np.nan, "fusion": "",
                        "parts": fs}
            for fs, clf in predictions[["feature_set", "classifier"]].drop_duplicates().itertuples(index=False)}
    return summarise_predictions(predictions, meta, protocol=protocol, n_boot=n_boot, confidence=confidence,
                                 seed=seed)


# ---------------------------------------------------------------------------- curves
def curves_frame(histories: Sequence[tuple[int, int, list]], metric: str = "auc") -> pd.DataFrame:
    """``[(repeat, fold, history)]`` -> the long training-curves table."""
    rows = []
    for repeat, fold, history in histories:
        for h in history:
            for split in ("train", "val"):
                rows.append({"fold": int(fold), "repeat": int(repeat), "epoch": int(h["epoch"]), "split": split,
                             "loss": h[f"{split}_loss"], "metric": h[f"{split}_{metric}"]})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def plot_curves(curves: pd.DataFrame, path, title: str = "", metric_label: str = "ROC AUC",
                selected: Mapping[tuple[int, int], int] | None = None) -> Path:
    """Loss and metric per epoch, one line per (repeat, fold) and split; ``selected``
    (``{(repeat, fold): epoch}``, the weights kept) marked -- drawn as the report draws them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from featurekit.report.figures import draw_training_curves

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    draw_training_curves(axes, curves, selected, metric_label)
    if title:
        fig.suptitle(title)
    path = Path(path)
    try:
        atomic_call(path, lambda tmp: fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------------------- run folder
def write_run(folder, rows: pd.DataFrame, predictions: pd.DataFrame, curves: pd.DataFrame,
              provenance: dict, title: str = "", *, overwrite: bool = False,
              stage: StagedFolder | None = None) -> Path:
    """Write the run folder (see the module docstring), whole; returns its path.

    A non-empty ``folder`` is refused unless ``overwrite`` (then replaced as a
    whole); ``stage`` is a :class:`~featurekit.io.StagedFolder` of ``folder``
    already holding files of this run (fold checkpoints).
    """
    stage = stage if stage is not None else StagedFolder(folder, overwrite=overwrite, what="run folder")
    from featurekit.report.figures import curve_metric_label, selected_epochs

    plot_curves(curves, stage.path / "training_curves.png", title=title, metric_label=curve_metric_label(predictions),
                selected=selected_epochs(provenance))
    return write_run_folder(folder, rows, predictions, provenance, training_curves=curves, stage=stage)
