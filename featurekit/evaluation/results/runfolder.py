"""Reading and writing run folders.

:func:`write_run` is what ``featurekit evaluate`` uses and what any other
engine (``featurekit finetune``) should use to write a folder
``featurekit report`` can read: ``results.csv``, ``results.json``,
``predictions.csv``, ``provenance.json`` and, optionally, ``comparisons.csv``
and ``training_curves.csv``. :func:`read_run` reads one back
(:class:`RunFolder`); :func:`read_runs` merges several.

Run folder contract (format version 1; ``featurekit finetune`` writes the same)
------------------------------------------------------------------------------
A run folder ``runs/NAME/`` holds (write it with
:func:`featurekit.evaluation.results.runfolder.write_run`, read it with
:func:`~featurekit.evaluation.results.runfolder.read_run`):

``results.csv`` and ``results.json`` (the same rows; JSON: a list of row objects, NaN as null)
    One row per (``feature_set``, ``classifier``). Columns:

    * ``feature_set`` (``gabor``, ``mobilenet_v2/features.14``,
      ``vgg16/block5_conv3+gabor``, ``vote(a+b)``, a fine-tuned model's name),
      ``classifier`` (``svm``, ``logreg``..., ``finetuned`` for end-to-end nets);
    * ``kind`` in {``handcrafted``, ``deep``, ``fused``, ``finetuned``, ``selected``};
      ``model``, ``layer``, ``layer_index`` (CNN rows: the model name, canonical
      layer name and table index; fused rows: those of their CNN part; empty /
      NaN otherwise); ``fusion`` in {``""``, ``early``, ``vote``, ``stack``};
      ``parts`` (``a+b``: the feature sets fused; the set itself otherwise);
    * ``n`` (distinct samples predicted), ``n_pos``, ``n_neg`` (binary) or ``n[<class>]`` (multi-class), ``n_repeats``,
      ``n_folds``, ``protocol`` (e.g. ``stratified 5-fold x3``);
    * for every metric ``m`` in accuracy, balanced_accuracy, precision, npv,
      sensitivity, specificity, f1, mcc, youden_index, roc_auc, pr_auc:
      ``m`` (mean over test folds of all repeats, at threshold 0.5),
      ``m_sd``, ``m_pooled`` (the metric of the pooled predictions, averaged
      over repeats), ``m_ci_lo``, ``m_ci_hi`` (95% interval of ``m_pooled``),
      ``m_ci_method`` (how it was made: ``wilson``, ``bca bootstrap over
      samples`` / ``over groups``; absent in older folders), ``m_n_folds``;
    * for every threshold metric, the same columns ``m_youden...`` at the
      Youden threshold chosen on each fold's training data;
    * ``threshold_youden``, ``threshold_youden_sd``; optional extras (``seconds``).

    The statistics are defined in :mod:`featurekit.evaluation.results.summary`;
    :func:`~featurekit.evaluation.results.summary.summarise_predictions` computes them
    from ``predictions.csv`` alone.
``predictions.csv``
    Out-of-fold predictions, one row per (sample, feature_set, classifier,
    repeat): ``id``, ``y_true`` (1 = positive class, 0 = other), ``feature_set``,
    ``classifier``, ``repeat``, ``fold`` (0-based), ``score`` (probability of the
    positive class), ``threshold`` (the Youden threshold fitted on that fold's
    training data); optional ``group`` (the sample's patient / duplicate group
    when the run was grouped: the unit the intervals resample). Any metric can
    be recomputed from it.
``provenance.json``
    ``dataset`` (name, source, fingerprint, n, class_names, counts per class
    of the evaluated samples, roi), ``positive`` (class name), ``entries`` (per
    cache entry used: key, entry_id, family, model, layer, weights,
    weights_sha256, input_size, pool), ``cache`` (path), ``cv`` (the spec),
    ``protocol`` (text), ``grouped``, ``seed``, ``classifiers``, ``options``
    (class_weight, oversample, search, late_fusion, youden, n_boot...),
    ``command`` (command line), ``created`` (UTC ISO time), ``versions``
    (featurekit, python, numpy, scipy, scikit-learn, pandas, torch, torchvision,
    xgboost, h5py), ``format`` (``{"name": "featurekit-run", "version": 1}``).
``comparisons.csv`` (optional)
    Paired DeLong tests of all pairs of rows with Holm-adjusted p-values
    (``p_adjusted``, ``adjust``, ``family_size``) and, in repeated designs, the
    Nadeau–Bengio corrected resampled t-test (``nb_*``); see
    :mod:`featurekit.evaluation.results.comparison` (older folders lack the adjusted
    and ``nb_`` columns; :func:`~featurekit.evaluation.results.comparison.versus_best`
    accepts them).
``training_curves.csv`` (optional, fine-tuning runs)
    ``epoch, split, loss, metric, fold``; plotted by ``featurekit report``.

A run folder is never overwritten silently: writing into a non-empty folder
raises :class:`~featurekit.errors.OutputExistsError` unless ``overwrite=True``
(``--overwrite``), and then the folder is replaced as a whole -- the new one is
written beside it and swapped in (:class:`featurekit.io.StagedFolder`), so no
file of an earlier run (``comparisons.csv``, ``report.html``...) is left
beside the new results, and a crash never leaves a mix of the two. Each file
is written atomically (:func:`featurekit.io.atomic_write`): a full disk is a
:class:`~featurekit.errors.DiskFullError` and leaves no temporary file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from featurekit.errors import DataError, StorageError
from featurekit.evaluation.results.summary import PREDICTION_COLUMNS
from featurekit.io import StagedFolder, atomic_write_text, jsonable, refuse_existing, utc_now, versions
from featurekit.specs import FusionSpec

__all__ = [
    "RESULT_REQUIRED",
    "TRAINING_CURVE_COLUMNS",
    "RunFolder",
    "write_run",
    "read_run",
    "read_runs",
    "check_out",
]

#: columns every results.csv must have (the metric columns come on top)
RESULT_REQUIRED = ["feature_set", "classifier", "kind", "model", "layer", "layer_index", "n",
                   "protocol", "roc_auc", "roc_auc_sd", "roc_auc_ci_lo", "roc_auc_ci_hi"]
#: columns of the optional training_curves.csv
TRAINING_CURVE_COLUMNS = ["epoch", "split", "loss", "metric", "fold"]
#: row kinds: ``selected`` is the row that chooses among the others inside each training part
KINDS = ("handcrafted", "deep", "fused", "finetuned", "selected")


@dataclass
class RunFolder:
    """One run folder read back."""

    path: Path
    results: pd.DataFrame
    predictions: pd.DataFrame
    provenance: dict = field(default_factory=dict)
    comparisons: pd.DataFrame | None = None
    training_curves: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return self.path.name


def check_out(folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, a run folder that is not empty unless ``overwrite``.

    Raises
    ------
    OutputExistsError
        Naming the folder and suggesting ``--overwrite``.
    """
    return refuse_existing(folder, overwrite, what="run folder", kind="folder")


def write_run(folder: str | os.PathLike, results: pd.DataFrame, predictions: pd.DataFrame,
              provenance: dict, *, comparisons: pd.DataFrame | None = None,
              training_curves: pd.DataFrame | None = None, overwrite: bool = False,
              stage: StagedFolder | None = None) -> Path:
    """Write a run folder, whole: staged beside ``folder`` and swapped in when complete.

    Parameters
    ----------
    folder : path
    results : DataFrame
        One row per (feature_set, classifier), at least :data:`RESULT_REQUIRED`
        (:func:`featurekit.evaluation.results.summary.summarise_predictions` makes them).
    predictions : DataFrame
        :data:`~featurekit.evaluation.results.summary.PREDICTION_COLUMNS`.
    provenance : dict
        Written as ``provenance.json`` (``created`` and ``versions`` are added when missing).
    comparisons, training_curves : DataFrame, optional
    overwrite : bool, default False
        Replace a non-empty ``folder`` as a whole; without it, a non-empty
        ``folder`` is an :class:`~featurekit.errors.OutputExistsError`.
    stage : StagedFolder, optional
        A stage of ``folder`` the caller already wrote files into (e.g. fold
        checkpoints); the run files join them and the stage is committed.

    Returns
    -------
    Path of the folder.
    """
    folder = Path(folder)
    missing = [c for c in RESULT_REQUIRED if c not in results.columns]
    if missing:
        raise DataError(f"results lack the column(s) {missing}")
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions lack the column(s) {missing}")
    bad_kind = set(results["kind"].dropna()) - set(KINDS) - {""}
    if bad_kind:
        raise DataError(f"kind must be one of {KINDS}, got {sorted(bad_kind)}")
    dup = results.duplicated(["feature_set", "classifier"])
    if dup.any():
        raise DataError(f"results repeat (feature_set, classifier) rows: "
                        f"{results.loc[dup, ['feature_set', 'classifier']].values.tolist()[:3]}")
    if stage is None:
        stage = StagedFolder(folder, overwrite=overwrite, what="run folder")
    elif stage.dest != folder:
        raise ValueError(f"stage of {stage.dest} given to write {folder}")
    prov = dict(provenance)
    prov.setdefault("created", utc_now())
    prov.setdefault("versions", versions())
    prov.setdefault("format", {"name": "featurekit-run", "version": 1})
    cols = PREDICTION_COLUMNS + [c for c in predictions.columns if c not in PREDICTION_COLUMNS]
    texts = {
        "results.csv": results.to_csv(index=False),
        "results.json": json.dumps(jsonable(results.to_dict(orient="records")), indent=1) + "\n",
        "predictions.csv": predictions[cols].to_csv(index=False),
        "comparisons.csv": None if comparisons is None else comparisons.to_csv(index=False),
        "training_curves.csv": None if training_curves is None else training_curves.to_csv(index=False),
        "provenance.json": json.dumps(jsonable(prov), indent=2) + "\n",
    }
    try:
        for name, text in texts.items():
            if text is not None:
                atomic_write_text(stage.path / name, text)
        return stage.commit()
    except StorageError as exc:  # name the run folder, not its hidden stage
        raise type(exc)(str(exc).replace(str(stage.path), str(folder))) from None
    finally:
        stage.discard()  # no-op once committed


def read_run(folder: str | os.PathLike) -> RunFolder:
    """Read a run folder (``results.csv`` or ``results.json``, ``predictions.csv``, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such run folder")
    if (folder / "results.csv").is_file():
        results = pd.read_csv(folder / "results.csv", keep_default_na=True)
    elif (folder / "results.json").is_file():
        raw = json.loads((folder / "results.json").read_text())
        results = pd.DataFrame(raw["rows"] if isinstance(raw, dict) else raw)
    else:
        raise DataError(f"{folder}: not a run folder (no results.csv / results.json)")
    for c in ("feature_set", "classifier", "kind", "model", "layer"):
        if c in results.columns:
            col = results[c].astype(object)
            results[c] = col.where(col.notna(), "").astype(str)
    pred_path = folder / "predictions.csv"
    predictions = (pd.read_csv(pred_path, dtype={"id": str, "feature_set": str, "classifier": str, "group": str})
                   if pred_path.is_file() else pd.DataFrame(columns=PREDICTION_COLUMNS))
    prov_path = folder / "provenance.json"
    provenance = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    comp = pd.read_csv(folder / "comparisons.csv") if (folder / "comparisons.csv").is_file() else None
    curves = None
    if (folder / "training_curves.csv").is_file():
        curves = pd.read_csv(folder / "training_curves.csv")
    return RunFolder(folder, results, predictions, provenance, comp, curves)


def _renamed_parts(parts: Any, rename: Mapping[str, str]) -> Any:
    """A fused row's ``parts`` (``"a+b"``) with the renamed feature sets' new names; other values as they are."""
    if not isinstance(parts, str) or "+" not in parts:
        return parts
    return "+".join(rename.get(str(p), str(p)) for p in FusionSpec.parse(parts).parts)


def read_runs(folders: Sequence[str | os.PathLike]) -> tuple[list[RunFolder], pd.DataFrame, pd.DataFrame]:
    """Read several run folders; merged results and predictions get a ``run`` column.

    Rows with the same (feature_set, classifier) in several runs are kept apart
    by suffixing the later ones with ``@<run name>``, in the ``parts`` of that
    run's fused rows too.
    """
    runs = [read_run(f) for f in folders]
    res_parts, pred_parts = [], []
    seen: set = set()
    for run in runs:
        res = run.results.copy()
        pred = run.predictions.copy()
        res["run"] = run.name
        pred["run"] = run.name
        clash = [(fs, c) for fs, c in zip(res["feature_set"], res["classifier"]) if (fs, c) in seen]
        if clash:
            rename = {fs: f"{fs}@{run.name}" for fs, _ in clash}
            res["feature_set"] = res["feature_set"].replace(rename)
            pred["feature_set"] = pred["feature_set"].replace(rename)
            if "parts" in res.columns:  # a fusion of this run is made of this run's rows, renamed with them
                res["parts"] = [_renamed_parts(p, rename) for p in res["parts"]]
        seen.update(zip(res["feature_set"], res["classifier"]))
        res_parts.append(res)
        pred_parts.append(pred)
    results = pd.concat(res_parts, ignore_index=True) if res_parts else pd.DataFrame()
    predictions = pd.concat(pred_parts, ignore_index=True) if pred_parts else pd.DataFrame()
    return runs, results, predictions
