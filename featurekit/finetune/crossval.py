"""Cross-validated fine-tuning with the protocols of ``featurekit evaluate``.

The folds come from the fold source ``evaluate`` uses too,
:func:`featurekit.evaluation.results.crossval.plan_folds` (k-fold with repeats,
holdout, predefined split, or any scikit-learn splitter; grouped when the
dataset has groups), seeded by ``config.seed`` -- the same splits the
feature-based rows use for the same seed. In every fold a fresh copy of the starting model is
fine-tuned on the training part; early stopping watches a validation split
carved (stratified, group-aware) from the *training* fold -- or the
predefined ``val`` images -- never the test fold.

Folds are made exactly as :func:`featurekit.evaluation.results.crossval.cross_validate`
makes them (labelled images only, stratified on the classes scored -- every
class of a multi-class run, positive-vs-rest of a binary one -- the
dataset's groups, the same ``plan_folds`` call), so for the same data,
``--cv`` and ``--seed`` a fine-tuned row and the feature-based rows are
scored on the same test folds and their predictions are paired.

Three or more classes and no positive class are a multi-class run (the
:class:`~featurekit.finetune.training.Task`): ``predictions.csv`` holds the
class codes in ``y_true`` and every class's softmax probability in
``proba[<class>]`` columns (``score`` and ``threshold`` empty: the predicted
class is the most probable one), and the rows carry the multi-class metrics
(:mod:`featurekit.evaluation.results.summary`). Early stopping and the kept
epoch follow the recipe's criterion over all the classes (``val_auc``: the
macro one-vs-rest AUC); the provenance says which (``monitor``). A positive
class with three or more classes keeps the binary view of that class against
the rest (provenance ``one_vs_rest``).

The Youden threshold of a binary run of a fold (the ``threshold`` column) is chosen on
training data of the fold only: by default (``youden="val"``) on the
validation part, which the weights never saw -- as ``evaluate`` chooses it on
out-of-fold or ``val`` scores rather than on resubstitution scores of an
overfitting model; ``youden="train"`` uses the whole training fold. When the
validation part lacks a class, the whole training fold is used.
"""

from __future__ import annotations

import copy
import hashlib
import platform
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from featurekit.checkpoint import save_checkpoint
from featurekit.devices import torch_device as resolve_device
from featurekit.errors import DataError
from featurekit.evaluation.results.crossval import binary_code_names, plan_folds, run_provenance
from featurekit.evaluation.results.summary import proba_column
from featurekit.evaluation.stats.metrics import youden_threshold
from featurekit.executors import as_executor, exclusive_worker, in_dask_worker
from featurekit.finetune.augment import BaseImages, View
from featurekit.finetune.config import FinetuneConfig
from featurekit.finetune.errors import FinetuneError
from featurekit.finetune.freezing import freeze
from featurekit.finetune.modeling import starting_point
from featurekit.finetune.results import curves_frame, results_rows, write_run
from featurekit.finetune.training import (
    Task,
    TrainResult,
    carve_validation,
    checkpoint_meta,
    counts_by_class,
    labelled,
    predict_view,
    task_of,
    train,
)
from featurekit.io import StagedFolder


@dataclass
class CVResult:
    """Everything a cross-validated fine-tuning produced."""

    rows: pd.DataFrame
    predictions: pd.DataFrame
    curves: pd.DataFrame
    provenance: dict
    folds: list = field(default_factory=list)   # per fold: dict(repeat, fold, n_train, n_val, n_test, ...)
    run_dir: Optional[Path] = None  # the run folder written (``out``)
    estimators: Optional[dict] = None  # keep_estimators: (repeat, fold) -> that fold's best model, on the CPU


def feature_set_name(model: str) -> str:
    return f"finetune:{model}"


def fold_seed(seed: int, repeat: int, fold: int) -> int:
    return int(seed) + 1000 * int(repeat) + int(fold)


def _fit_fold(fold, desc, fold_start, test_sha, *, base, start, config, labels, y01, groups, pos, youden, keep_model,
              progress):
    """Fine-tune one fold and score its test part (here, or as one task on a Dask worker).

    ``fold_start`` is the fold's own starting point (continuing an earlier run fold
    by fold) or None for the shared ``start``; ``test_sha`` identifies its test images.
    ``pos`` is the positive class's index, None for a multi-class run (no threshold).
    Returns the test rows, their class probabilities (n, K), the fold's Youden threshold
    (NaN for a multi-class run), the :class:`TrainResult`, the fold's info, its training
    rows and (``keep_model``) the model on the CPU.
    """
    with exclusive_worker():
        device = resolve_device(config.device)
        if config.num_workers and in_dask_worker() is not None:
            raise FinetuneError("--workers N (DataLoader processes) is for local runs: a Dask worker would "
                                "start them afresh for every epoch; give --workers 0 (the cluster's "
                                "workers are the parallelism)")
        seed = fold_seed(config.seed, fold.repeat, fold.fold)
        train_rows = np.asarray(fold.train_idx)
        if fold.val_idx is not None and len(fold.val_idx):
            fit_rows, val_rows = train_rows, np.asarray(fold.val_idx)
        else:
            fit_rows, val_rows = carve_validation(labels, train_rows, config.val_fraction, seed, groups)
        all_train = np.r_[fit_rows, val_rows]
        threshold_rows = val_rows if (youden == "val" and np.unique(y01[val_rows]).size >= 2) else all_train
        test_rows = np.asarray(fold.test_idx)
        if np.intersect1d(all_train, test_rows).size:  # never: the protocols and the carving are disjoint
            raise DataError(f"fold {fold.repeat}/{fold.fold}: training or validation images in the test fold")
        own = fold_start is not None
        fold_start = fold_start if own else start
        model = copy.deepcopy(fold_start.model)
        frozen = freeze(model, fold_start.table, config.freeze_until, config.freeze) \
            if (config.freeze_until or config.freeze) else None
        tr: TrainResult = train(model, base, fit_rows, val_rows, labels, config, frozen=frozen,
                                positive_index=pos, seed=seed, progress=progress, desc=desc)
        model.to(device)
        p_test, _, r_test = predict_view(model, View(base, test_rows, labels), config.batch_size, device,
                                         config.amp)
        if pos is not None:
            p_thr, _, r_thr = predict_view(model, View(base, threshold_rows, labels), config.batch_size, device,
                                           config.amp)
        model.to("cpu")
    thr = float("nan")  # multi-class: the most probable class is predicted, no threshold
    if pos is not None:
        try:
            thr = float(youden_threshold(y01[r_thr], p_thr[:, pos], pos_label=1))
        except DataError:
            thr = 0.5  # one class only in the training fold: no Youden threshold
    info = {"repeat": int(fold.repeat), "fold": int(fold.fold), "n_train": int(len(fit_rows)),
            "n_val": int(len(val_rows)), "n_test": int(len(test_rows)), "best_epoch": int(tr.best_epoch),
            "epochs_run": len(tr.history), "stopped_early": bool(tr.stopped_early),
            "threshold": None if pos is None else thr,
            "threshold_on": None if pos is None else "val" if threshold_rows is val_rows else "train",
            "seconds": round(tr.seconds, 2), "device": str(device), "test_ids_sha256": test_sha}
    if own:
        info.update(init_weights=fold_start.weights_path, init_weights_sha256=fold_start.weights_sha256)
    if not keep_model:  # what comes back from a worker: scores and history, not the weights
        tr, model = replace(tr, model=None), None
    return np.asarray(r_test), np.asarray(p_test), thr, tr, info, fit_rows, model


def _prediction_frame(task: Task, ids, y, groups, fs_name: str, fold, test_rows, probs, thr: float) -> pd.DataFrame:
    """The predictions.csv rows of one test fold: the positive class's score (binary) or every class's
    probability (multi-class), and the group of each image (the resampling unit of the intervals)."""
    rows = np.asarray(test_rows, dtype=np.int64)
    if task.multiclass:
        scores = {"score": np.nan, **{proba_column(c): probs[:, j] for j, c in enumerate(task.classes)}}
    else:
        scores = {"score": probs[:, task.positive_index].astype(np.float64)}
    return pd.DataFrame({"id": np.asarray(ids, dtype=object)[rows], "y_true": y[rows], "feature_set": fs_name,
                         "classifier": "finetuned", "repeat": int(fold.repeat), "fold": int(fold.fold),
                         **scores, "threshold": thr, **({} if groups is None else {"group": groups[rows]})})


def ids_sha256(ids) -> str:
    """SHA-256 of a set of sample ids (order-free): which images a test fold holds."""
    return hashlib.sha256("\x00".join(sorted(str(i) for i in ids)).encode("utf-8")).hexdigest()


def fold_checkpoints(weights) -> Optional[dict]:
    """``{(repeat, fold): path}`` of a cross-validated run folder's fold models, or None for other weights."""
    folder = Path(str(weights)) if weights is not None else None
    if folder is None or not folder.is_dir():
        return None
    found = {}
    for path in sorted((folder / "checkpoints").glob("r*_f*.pt")):
        r, _, f = path.stem[1:].partition("_f")
        if r.isdigit() and f.isdigit():
            found[(int(r), int(f))] = path
    if not found:
        raise FinetuneError(f"{folder} is a folder but holds no fold checkpoints (checkpoints/rR_fF.pt): "
                            "a cross-validated run continues fold by fold only from a run saved with "
                            "--save-fold-checkpoints")
    return found


def _fold_start(fold_models: dict, fold, test_sha: str, config: FinetuneConfig, dataset, first):
    """The starting point of one fold from the earlier run's model of the same fold (same test images)."""
    from featurekit.checkpoint import load_checkpoint

    path = fold_models.get((int(fold.repeat), int(fold.fold)))
    if path is None:
        raise FinetuneError(f"no fold checkpoint r{fold.repeat}_f{fold.fold}.pt in {config.weights}: the earlier "
                            f"run used other folds (it has {', '.join(p.stem for p in fold_models.values())})")
    recorded = ((load_checkpoint(path)["meta"].get("metrics") or {}).get("fold") or {}).get("test_ids_sha256")
    if recorded != test_sha:
        raise FinetuneError(f"{path} was trained in a fold whose test images differ from fold "
                            f"{fold.repeat}/{fold.fold} here ({'not recorded' if recorded is None else 'other ids'}): "
                            "continuing from it would train on test images. Use the same data, cv and seed.")
    start = starting_point(config.replace(weights=str(path)), list(dataset.class_names))
    if start.preprocessing != first.preprocessing:
        raise FinetuneError(f"{path}: its preprocessing differs from the other folds' ({start.preprocessing})")
    return start


def cross_validate(dataset, config: FinetuneConfig, cv="5", *, out=None, n_boot: int = 2000,
                   confidence: float = 0.95, youden: str = "val", keep_estimators: bool = False,
                   progress: bool = True, command: Optional[str] = None, overwrite: bool = False,
                   executor=None) -> CVResult:
    """Fine-tune in every fold of ``cv`` and score the test folds.

    Parameters
    ----------
    dataset : Dataset
        Labelled images. Two classes need a ``positive`` one (the binary
        metrics); three or more without one are a multi-class run (every
        class's probability, the multi-class metrics); three or more with a
        ``positive`` class are trained on all of them and scored one-vs-rest on
        the positive class.
    config : FinetuneConfig
    cv : str, int or splitter
        ``"5"``, ``"5x3"``, ``"holdout:0.3x10"``, ``"predefined"`` (the dataset's
        ``split`` column), or any scikit-learn splitter (see
        :func:`~featurekit.evaluation.results.crossval.plan_folds`).
    out : path, optional
        Write the run folder there (see :mod:`featurekit.finetune.results`), as
        :meth:`Evaluation.save <featurekit.evaluation.results.crossval.Evaluation.save>`
        writes an evaluation's.
    n_boot, confidence : bootstrap of the confidence intervals.
    youden : {"val", "train"}
        Where each fold's Youden threshold is chosen (see the module docstring; a
        multi-class run has none).
    keep_estimators : bool
        Keep each fold's best model: in :attr:`CVResult.estimators` (keyed
        ``(repeat, fold)``, as :func:`featurekit.evaluation.cross_validate` keeps
        its fitted estimators) and, with ``out``, written to
        ``out/checkpoints/r{R}_f{F}.pt``. When ``config.weights`` is such a run folder, every fold starts from the
        model of the same fold there (a second fine-tuning of the same folds); its
        test images must be the same ones (checked: ``test_ids_sha256``), so no
        fold ever trains on images it is tested on.
    command : str, optional
        The command line to record (default: ``sys.argv``).
    overwrite : bool, default False
        Replace a non-empty ``out`` as a whole (otherwise refused before training).
    executor : None, "local", Executor or dask.distributed.Client
        Where the folds are trained: here, one after the other (default), or one
        task per fold on a Dask cluster (each worker decodes the images once and
        trains one fold at a time with all its threads, or on its GPU). Same seed,
        same folds, same results on the same kind of device.
    """
    if youden not in ("val", "train"):
        raise FinetuneError(f"youden must be 'val' or 'train', got {youden!r}")
    # the run folder is written beside out and swapped in whole; a non-empty one is refused now
    stage = StagedFolder(out, overwrite=overwrite, what="run folder") if out is not None else None
    dataset = labelled(dataset)
    task = task_of(dataset)
    if task.positive is None and not task.multiclass:
        raise DataError(f"{dataset.source or dataset.name}: cross-validated results of two classes need a "
                        f"positive class (one of {dataset.class_names}; --positive)")
    labels = np.asarray(dataset.labels)
    pos = task.positive_index
    # what the folds are stratified on and y_true holds: the class codes, or 1 = positive
    y01 = labels.astype(np.int64) if task.multiclass else (labels == pos).astype(np.int64)
    if np.unique(y01).size < 2:
        raise DataError(f"{dataset.source or dataset.name}: no image of the positive class "
                        f"{dataset.positive!r} or none of the others")
    if task.one_vs_rest:
        warnings.warn(f"{len(task.classes)} classes: fine-tuned on all of them, scored as {task.positive!r} "
                      "against the rest (one-vs-rest, as the positive class asks; without it the run is "
                      "multi-class)", UserWarning, stacklevel=2)
    code_names = list(task.classes) if task.multiclass else binary_code_names(dataset.class_names, task.positive)
    plan = plan_folds(cv, y01, dataset.groups, split=None if dataset.split is None else list(dataset.split),
                      seed=int(config.seed), class_names=code_names)
    folds, protocol = plan.folds, plan.protocol
    groups = None if dataset.groups is None else np.asarray([str(v) for v in dataset.groups], dtype=object)

    fold_models = fold_checkpoints(config.weights)
    first = next(iter(fold_models.values()), None) if fold_models else None
    start = starting_point(config.replace(weights=str(first)) if first else config, list(dataset.class_names))
    base = BaseImages(dataset, start.preprocessing, cache=config.cache_images, progress=progress)
    fs_name = feature_set_name(start.arch["name"])
    device = resolve_device(config.device)
    ex = as_executor(executor)
    if ex.is_local:
        base.materialise()  # on a cluster each worker decodes the images once, on its first fold
    ids = dataset.ids
    test_shas = [ids_sha256(ids[i] for i in fold.test_idx) for fold in folds]
    fold_starts = [None if fold_models is None else _fold_start(fold_models, fold, sha, config, dataset, start)
                   for fold, sha in zip(folds, test_shas)]
    outs = ex.map(_fit_fold, [(fold, f"{fs_name} r{fold.repeat} f{fold.fold}", fs, sha)
                              for fold, fs, sha in zip(folds, fold_starts, test_shas)],
                  shared=dict(base=base, start=start, config=config, labels=labels, y01=y01, groups=groups,
                              pos=pos, youden=youden, keep_model=keep_estimators,
                              progress=progress and ex.is_local),
                  progress=progress and not ex.is_local, desc=f"{fs_name} folds", unit="fold")
    frames, histories, fold_info = [], [], []
    kept: dict[tuple[int, int], Any] = {}
    for fold, fold_start, (test_rows, probs, thr, tr, info, fit_rows, model) in zip(folds, fold_starts, outs):
        fold_start = start if fold_start is None else fold_start
        frames.append(_prediction_frame(task, ids, y01, groups, fs_name, fold, test_rows, probs, thr))
        histories.append((fold.repeat, fold.fold, tr.history))
        if model is not None:
            kept[(int(fold.repeat), int(fold.fold))] = model
        if model is not None and stage is not None:
            sub = dataset.subset(np.sort(fit_rows))
            meta = checkpoint_meta(sub, config, fold_start, model, tr, {"fold": info},
                                   extra_lineage={"cv": str(cv), "repeat": int(fold.repeat), "fold": int(fold.fold)})
            name = Path("checkpoints") / f"r{fold.repeat}_f{fold.fold}.pt"
            save_checkpoint(stage.path / name, start.arch, model.state_dict(), meta)
            info["checkpoint"] = str(Path(out) / name)
        fold_info.append(info)

    predictions = pd.concat(frames, ignore_index=True)
    rows = results_rows(predictions, protocol=protocol, model=start.arch["name"], n_boot=n_boot,
                        confidence=confidence, seed=int(config.seed))
    curves = curves_frame(histories)
    if task.multiclass:
        samples = {"n": int(len(y01)), **{f"n[{c}]": int(k) for c, k in
                                          zip(task.classes, np.bincount(y01, minlength=len(task.classes)))}}
    else:
        samples = {"n": int(len(y01)), "n_pos": int(y01.sum()), "n_neg": int(len(y01) - y01.sum())}
    provenance = run_provenance(
        plan, seed=int(config.seed), positive=task.positive, command=command, samples=samples,
        options={**config.to_dict(), "youden": None if task.multiclass else youden, "n_boot": int(n_boot),
                 "confidence": float(confidence), "ordered": False},
        task=task.name, classes=list(task.classes) if task.multiclass else None,
        **({"one_vs_rest": task.one_vs_rest} if task.one_vs_rest else {}),
        monitor={"criterion": config.monitor, "meaning": task.monitor_meaning(config)},
        kind="finetuned",
        dataset={"name": dataset.name, "source": str(dataset.source), "fingerprint": dataset.fingerprint(),
                 "n": int(len(dataset)), "class_names": list(dataset.class_names),
                 "counts": counts_by_class(dataset), "roi": dataset.roi, "roi_margin": dataset.roi_margin,
                 **({"group_kind": dataset.group_kind} if groups is not None and dataset.group_kind else {})},
        validation="predefined val" if any(f.val_idx is not None and len(f.val_idx) for f in folds)
        else f"stratified {config.val_fraction:g} of each training fold",
        model=start.arch["name"], arch=start.arch, preprocessing=start.preprocessing.to_dict(),
        weights=start.weights if fold_models is None else f"folds:{Path(str(config.weights)).name}",
        weights_sha256=start.weights_sha256 if fold_models is None else hashlib.sha256(
            "".join(f.get("init_weights_sha256", "") for f in fold_info).encode()).hexdigest(),
        weights_path=start.weights_path if fold_models is None else str(config.weights),
        lineage=start.lineage, head=start.head, device=str(device), folds=fold_info,
    )
    provenance["versions"]["platform"] = platform.platform()
    result = CVResult(rows, predictions, curves, provenance, fold_info,
                      estimators=kept if keep_estimators else None)
    if out is not None:
        result.run_dir = write_run(out, rows, predictions, curves, provenance,
                                   title=f"{fs_name} on {dataset.name} ({protocol})", stage=stage)
    return result
