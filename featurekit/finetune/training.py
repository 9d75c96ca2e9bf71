"""The training loop and single-run fine-tuning (:func:`finetune`).

The loop, its early-stopping state and the single run that records its
checkpoint and lineage; fold-wise runs are in ``crossval``.

One epoch: the training view (augmented, balanced as configured) in a
seeded order, the trainable parameters updated (frozen BatchNorm layers in
eval mode), then the validation view evaluated without augmentation. The
state with the best validation score (``val_loss``, ``val_auc``, ``val_acc`` or
``val_auc_acc``, the mean of AUC and accuracy) is kept
and restored at the end; training stops after ``patience`` epochs without
improvement.

Determinism: :func:`torch.manual_seed` at the start of every training run,
a seeded ``DataLoader`` generator and sampler, worker processes seeded from
it; on CUDA, mixed precision (``amp``) and cuDNN may still differ slightly
from run to run.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from featurekit import __version__
from featurekit.checkpoint import layer_table_records, save_checkpoint
from featurekit.data.spec import stratified_subsample  # noqa: F401  (re-exported by featurekit.finetune)
from featurekit.devices import torch_device as resolve_device
from featurekit.errors import DataError
from featurekit.evaluation.estimators.resampling import random_oversample_indices
from featurekit.evaluation.folds.protocols import HoldoutCV
from featurekit.finetune.augment import BaseImages, View, build_augment
from featurekit.finetune.config import FinetuneConfig, required
from featurekit.finetune.errors import FinetuneError
from featurekit.finetune.freezing import Frozen, freeze, set_train_mode, trainable_parameters
from featurekit.finetune.modeling import StartingPoint, starting_point
from featurekit.io import refuse_existing, version_attrs
from featurekit.models.weights import state_dict_sha256


# ---------------------------------------------------------------------------- sampling
class EpochSampler(torch.utils.data.Sampler):
    """Seeded order of the training view, redrawn each epoch; optionally class-balanced.

    ``oversample=True`` draws every class up to the largest one
    (:func:`featurekit.evaluation.estimators.resampling.random_oversample_indices`) anew
    each epoch. The order depends only on ``seed`` and the epoch.
    """

    def __init__(self, labels, oversample: bool = False, seed: int = 0):
        self.labels = np.asarray(labels)
        self.oversample = bool(oversample)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        idx = np.arange(len(self.labels))
        if self.oversample:
            idx = random_oversample_indices(self.labels, int(rng.integers(2**31 - 1)))
        return rng.permutation(idx)

    def __iter__(self):
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        if not self.oversample:
            return len(self.labels)
        counts = np.unique(self.labels, return_counts=True)[1]
        return int(counts.max() * len(counts))


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def seed_everything(seed: int) -> None:
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    random.seed(int(seed))


# ---------------------------------------------------------------------------- metrics
def monitor_auc(y: np.ndarray, probs: np.ndarray, positive_index: Optional[int] = None) -> float:
    """AUC of the validation (or training) predictions: the positive class's, or macro one-vs-rest."""
    from featurekit.evaluation.stats.metrics import roc_auc

    y = np.asarray(y)
    k = probs.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if k == 2 or positive_index is not None:
            pos = 1 if positive_index is None else int(positive_index)
            t = (y == pos).astype(int)
            if t.min() == t.max():
                return float("nan")
            return float(roc_auc(t, probs[:, pos], pos_label=1))
        present = [c for c in range(k) if (y == c).any() and (y != c).any()]
        if len(present) < 2:
            return float("nan")
        return float(np.mean([roc_auc((y == c).astype(int), probs[:, c], pos_label=1) for c in present]))


@dataclass(frozen=True)
class Task:
    """What a fine-tuning run is scored on: every class (multi-class), or one class against the rest.

    Three or more classes and no positive class are the multi-class task: the
    predicted class is the most probable one and the AUC is the macro
    one-vs-rest AUC. A positive class (two classes, or ``--positive`` with more)
    is the binary view of that class against the others.
    """

    classes: tuple
    positive: Optional[str] = None

    @property
    def multiclass(self) -> bool:
        return self.positive is None and len(self.classes) > 2

    @property
    def positive_index(self) -> Optional[int]:
        return None if self.positive is None else self.classes.index(self.positive)

    @property
    def one_vs_rest(self) -> Optional[list]:
        """The classes of a binary view of three or more classes, else None."""
        return list(self.classes) if self.positive is not None and len(self.classes) > 2 else None

    @property
    def name(self) -> str:
        return "multiclass" if self.multiclass else "binary"

    def auc_meaning(self) -> str:
        if self.multiclass:
            return (f"macro one-vs-rest ROC AUC over the {len(self.classes)} classes (the mean of each class's AUC "
                    "against the others; a class absent from the predictions scored is left out)")
        if self.positive is None:
            return f"ROC AUC of {self.classes[-1]!r}"
        return f"ROC AUC of {self.positive!r}" + (" against the rest" if self.one_vs_rest else "")

    def monitor_meaning(self, config: FinetuneConfig) -> str:
        """What ``config.monitor`` measures on the validation part, in words (recorded with the run)."""
        k = len(self.classes)
        loss = f"cross-entropy over the {k} classes" + (" (class-weighted)" if config.balance == "weights" else "")
        acc = f"accuracy (the most probable of the {k} classes)"
        monitor = required(config.monitor, "monitor")
        meaning = {"val_loss": loss, "val_auc": self.auc_meaning(), "val_acc": acc,
                   "val_auc_acc": f"the mean of the {self.auc_meaning()} and the {acc}"}[monitor]
        return f"validation {meaning}; {'lowest' if monitor == 'val_loss' else 'highest'} kept"


def task_of(dataset) -> Task:
    """The :class:`Task` of a labelled dataset; every class of a multi-class task must have images."""
    task = Task(tuple(dataset.class_names), dataset.positive)
    if task.multiclass:
        counts = np.bincount(np.asarray(dataset.labels)[np.asarray(dataset.labels) >= 0],
                             minlength=len(task.classes))
        empty = [c for c, n in zip(task.classes, counts) if n == 0]
        if empty:
            raise DataError(f"{dataset.source or dataset.name}: class(es) {empty} have no labelled image; a "
                            f"{len(task.classes)}-class model needs images of each (select the classes with "
                            "--classes)")
    return task


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * n_c)`` (1 for balanced classes)."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
    if (counts == 0).any():
        raise DataError("class weights need every class in the training data; counts are "
                        f"{counts.astype(int).tolist()}")
    return torch.tensor(counts.sum() / (num_classes * counts), dtype=torch.float32)


# ---------------------------------------------------------------------------- loop
@dataclass
class TrainResult:
    """What one training run produced. ``model`` holds the best state (on CPU)."""

    model: nn.Module
    history: list = field(default_factory=list)   # one dict per epoch
    best_epoch: int = 0
    best_score: float = float("nan")
    stopped_early: bool = False
    frozen: Optional[Frozen] = None
    monitor: str = "val_loss"
    seconds: float = 0.0

    @property
    def best(self) -> dict:
        return next((h for h in self.history if h["epoch"] == self.best_epoch), {})


def _loader(view, batch_size, sampler=None, seed=0, num_workers=0, device=None, drop_last=False):
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    cuda = device is not None and device.type == "cuda"
    return torch.utils.data.DataLoader(
        view, batch_size=int(batch_size), sampler=sampler, shuffle=False, drop_last=drop_last,
        num_workers=int(num_workers), generator=gen, worker_init_fn=_seed_worker if num_workers else None,
        pin_memory=cuda, persistent_workers=bool(num_workers),
    )


@torch.no_grad()
def predict_view(model: nn.Module, view, batch_size: int = 32, device=None, amp: bool = True,
                 num_workers: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax probabilities of a view in eval mode: ``(probs (N, K), labels, rows)``."""
    device = device or torch.device("cpu")
    model.eval()
    use_amp = bool(amp) and device.type == "cuda"
    probs, labels, rows = [], [], []
    for x, y, r in _loader(view, batch_size, num_workers=num_workers, device=device):
        x = x.to(device, non_blocking=device.type == "cuda")
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            out = model(x)
        probs.append(torch.softmax(out.float(), dim=1).cpu().numpy())
        labels.append(np.asarray(y))
        rows.append(np.asarray(r))
    if not probs:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(rows)


def _optimizer(config: FinetuneConfig, params):
    lr, weight_decay = required(config.lr, "lr"), required(config.weight_decay, "weight_decay")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=required(config.momentum, "momentum"),
                               weight_decay=weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _scheduler(config: FinetuneConfig, optimizer):
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(required(config.step_size, "step_size")),
                                               gamma=float(required(config.gamma, "gamma")))
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(required(config.epochs, "epochs")))
    return None


def _improved(score: float, best: float, monitor: str, min_delta: float) -> bool:
    if not math.isfinite(score):
        return False
    if not math.isfinite(best):
        return True
    if monitor == "val_loss":
        return score < best - min_delta
    return score > best + min_delta  # AUC, accuracy and their mean: higher is better


def train(model: nn.Module, base: BaseImages, train_rows, val_rows, labels, config: FinetuneConfig, *,
          frozen: Optional[Frozen] = None, positive_index: Optional[int] = None, seed: Optional[int] = None,
          progress: bool = True, desc: str = "finetune") -> TrainResult:
    """Train ``model`` in place on ``train_rows`` of ``base``; early stopping on ``val_rows``.

    Parameters
    ----------
    model : nn.Module
        With its head for ``num_classes`` outputs and its frozen parameters
        already marked (:func:`featurekit.finetune.freezing.freeze`).
    base : BaseImages
        The dataset's images (un-normalised, at the model's input size).
    train_rows, val_rows : array-like of int
        Rows of ``base`` to train on / to validate on (``val_rows`` may be empty:
        then no early stopping and the last epoch is kept).
    labels : array-like of int
        The label of every row of ``base``.
    frozen : Frozen, optional
        Its BatchNorm layers stay in eval mode.
    positive_index : int, optional
        Class whose AUC is monitored (default: class 1 of two, macro OvR otherwise).
    """
    seed = config.seed if seed is None else int(seed)
    epochs, batch_size = int(required(config.epochs, "epochs")), required(config.batch_size, "batch_size")
    monitor, patience = required(config.monitor, "monitor"), required(config.patience, "patience")
    min_delta = float(required(config.min_delta, "min_delta"))
    labels = np.asarray(labels, dtype=np.int64)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    val_rows = np.asarray(val_rows if val_rows is not None else [], dtype=np.int64)
    if len(train_rows) < 2:
        raise DataError(f"{desc}: only {len(train_rows)} training image(s)")
    device = resolve_device(config.device)
    use_amp = bool(config.amp) and device.type == "cuda"
    num_classes = int(max(labels.max() + 1, 2))
    seed_everything(seed)
    base.materialise()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    model.to(device)

    train_view = View(base, train_rows, labels, build_augment(config, base.preprocessing.size))
    val_view = View(base, val_rows, labels) if len(val_rows) else None
    sampler = EpochSampler(labels[train_rows], oversample=config.balance == "oversample", seed=seed)
    drop_last = len(sampler) > batch_size and len(sampler) % batch_size == 1
    loader = _loader(train_view, batch_size, sampler, seed, config.num_workers, device, drop_last)
    weight = class_weights(labels[train_rows], num_classes).to(device) if config.balance == "weights" else None
    criterion = nn.CrossEntropyLoss(weight=weight)
    val_criterion = nn.NLLLoss(weight=weight, reduction="sum")
    params = trainable_parameters(model)
    if not params:
        raise FinetuneError(f"{desc}: every parameter is frozen; nothing to train")
    optimizer = _optimizer(config, params)
    scheduler = _scheduler(config, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    result = TrainResult(model, frozen=frozen, monitor=monitor)
    best_state = None
    best = float("nan")
    waited = 0
    start = time.perf_counter()
    bar = tqdm(total=epochs, desc=desc, unit="epoch", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    try:
        for epoch in range(1, epochs + 1):
            sampler.set_epoch(epoch)
            set_train_mode(model, frozen)
            total, count, tr_probs, tr_labels = 0.0, 0, [], []
            n_batches = len(loader)
            for b, (x, y, _) in enumerate(loader, 1):
                x = x.to(device, non_blocking=device.type == "cuda")
                y = y.to(device, non_blocking=device.type == "cuda")
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    out = model(x)
                    loss = criterion(out.float(), y)
                if not torch.isfinite(loss):
                    raise FinetuneError(f"{desc}: the training loss became {loss.item()} at epoch {epoch}; "
                                        "lower the learning rate (--lr)")
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                total += float(loss.detach()) * len(y)
                count += len(y)
                tr_probs.append(torch.softmax(out.detach().float(), 1).cpu().numpy())
                tr_labels.append(y.cpu().numpy())
                if progress and n_batches > 1:
                    bar.set_postfix_str(f"epoch {epoch} batch {b}/{n_batches} loss {total / count:.3f}")
            if scheduler is not None:
                scheduler.step()
            record = {"epoch": epoch, "train_loss": total / max(count, 1),
                      "train_auc": monitor_auc(np.concatenate(tr_labels), np.concatenate(tr_probs), positive_index)
                      if tr_probs else float("nan"),
                      "val_loss": float("nan"), "val_auc": float("nan"), "val_acc": float("nan"),
                      "val_auc_acc": float("nan"), "lr": float(optimizer.param_groups[0]["lr"])}
            if val_view is not None:
                probs, y_val, _ = predict_view(model, val_view, batch_size, device, config.amp, config.num_workers)
                with torch.no_grad():
                    logp = torch.log(torch.from_numpy(probs).clamp_min(1e-12))
                    vl = val_criterion(logp.to(device), torch.from_numpy(y_val).to(device))
                    y_dev = torch.from_numpy(y_val).to(device)
                    denom = float(weight[y_dev].sum()) if weight is not None else len(y_val)
                record["val_loss"] = float(vl) / max(denom, 1e-12)
                record["val_auc"] = monitor_auc(y_val, probs, positive_index)
                record["val_acc"] = float(np.mean(probs.argmax(1) == y_val))
                record["val_auc_acc"] = (record["val_auc"] + record["val_acc"]) / 2  # NaN when AUC is
            result.history.append(record)
            score = record[monitor] if val_view is not None else float("nan")
            if val_view is None or _improved(score, best, monitor, min_delta):
                best = score
                result.best_epoch = epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                waited = 0
            else:
                waited += 1
            bar.set_postfix({k: f"{record[k]:.3f}" for k in ("train_loss", "val_loss", "val_auc")
                             if math.isfinite(record[k])}, refresh=False)
            bar.update(1)
            if val_view is not None and patience and waited >= patience:
                result.stopped_early = epoch < epochs
                break
    finally:
        bar.close()
    if best_state is None:  # the monitored score was never defined (e.g. a one-class validation split)
        best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        result.best_epoch = result.history[-1]["epoch"]
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    result.best_score = best
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------------------- splits
def carve_validation(labels: np.ndarray, rows: np.ndarray, fraction: float, seed: int,
                     groups: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (train, val) rows: stratified (group-aware with ``groups``), seeded.

    Uses the evaluation package's :class:`~featurekit.evaluation.folds.protocols.HoldoutCV`,
    so the validation split follows the same rules as the test splits. With
    ``fraction == 0``, or too few samples of a class to hold one out, the
    validation part is empty.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if fraction <= 0 or len(rows) < 4:
        return rows, np.zeros(0, dtype=np.int64)
    y = np.asarray(labels)[rows]
    counts = np.unique(y, return_counts=True)[1]
    if counts.min() < 2:
        return rows, np.zeros(0, dtype=np.int64)
    g = None if groups is None else np.asarray(groups)[rows]
    try:
        fold = next(HoldoutCV(float(fraction), 1, random_state=int(seed)).iter_folds(None, y, g))
    except DataError:
        if g is None:
            raise
        warnings.warn("too few groups for a grouped validation split; the validation images are drawn "
                      "without regard to groups (early stopping may be optimistic)", UserWarning, stacklevel=2)
        fold = next(HoldoutCV(float(fraction), 1, random_state=int(seed)).iter_folds(None, y, None))
    return rows[fold.train_idx], rows[fold.test_idx]


# ---------------------------------------------------------------------------- single run
@dataclass
class FinetuneResult:
    """A fine-tuned model with everything its checkpoint records."""

    model: nn.Module
    start: StartingPoint
    train: TrainResult
    meta: dict
    checkpoint: Optional[Path] = None

    @property
    def arch(self) -> dict:
        return self.start.arch

    @property
    def preprocessing(self):
        return self.start.preprocessing

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the checkpoint (atomically); an existing ``path`` needs ``overwrite=True``."""
        self.checkpoint = save_checkpoint(path, self.start.arch, self.model.state_dict(), self.meta,
                                          overwrite=overwrite)
        return self.checkpoint


def labelled(dataset):
    """The labelled samples of a dataset (unlabelled ``-1`` rows dropped)."""
    keep = np.flatnonzero(np.asarray(dataset.labels) >= 0)
    if len(keep) == 0:
        raise DataError(f"{dataset.source or dataset.name}: no labelled images to fine-tune on")
    return dataset if len(keep) == len(dataset) else dataset.subset(keep)


def counts_by_class(dataset) -> dict:
    counts = np.bincount(dataset.labels[dataset.labels >= 0], minlength=len(dataset.class_names))
    return {c: int(n) for c, n in zip(dataset.class_names, counts)}


def lineage_entry(dataset, start: StartingPoint, train_result: TrainResult, state_sha: str,
                  extra: Optional[dict] = None) -> dict:
    """One stage of a checkpoint's lineage."""
    return {
        "stage": len(start.lineage) + 1,
        "model": start.arch["name"],
        "dataset": dataset.name,
        "dataset_source": dataset.source,
        "dataset_fingerprint": dataset.fingerprint(),
        "n": int(len(dataset)),
        "class_names": list(dataset.class_names),
        "counts": counts_by_class(dataset),
        "positive": dataset.positive,
        "init_weights": start.weights,
        "init_weights_sha256": start.weights_sha256,
        "head": start.head,
        "epochs_run": len(train_result.history),
        "best_epoch": int(train_result.best_epoch),
        "state_sha256": state_sha,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "featurekit_version": __version__,
        **(extra or {}),
    }


def checkpoint_meta(dataset, config: FinetuneConfig, start: StartingPoint, model: nn.Module,
                    train_result: TrainResult, metrics: dict, extra_lineage: Optional[dict] = None) -> dict:
    """The ``meta`` of a fine-tuned checkpoint (see :mod:`featurekit.checkpoint`)."""
    state_sha = state_dict_sha256(model.state_dict())
    entry = lineage_entry(dataset, start, train_result, state_sha, extra_lineage)
    return {
        "model": start.arch["name"],
        "preprocessing": start.preprocessing.to_dict(),
        "class_names": list(dataset.class_names),
        "positive": dataset.positive,
        "layer_table": layer_table_records(start.table),
        "training": config.to_dict(),
        "frozen": train_result.frozen.to_dict() if train_result.frozen else None,
        "metrics": metrics,
        "history": train_result.history,
        "lineage": [*start.lineage, entry],
        "init_weights": start.weights,
        "init_weights_sha256": start.weights_sha256,
        "state_sha256": state_sha,
        "versions": version_attrs(),
        "created": entry["created"],
    }


def prepare(dataset, config: FinetuneConfig, *, seed: Optional[int] = None):
    """Starting model and frozen part for ``dataset``'s classes (shared by single runs and CV)."""
    start = starting_point(config, list(dataset.class_names), seed=seed)
    frozen = freeze(start.model, start.table, config.freeze_until, config.freeze) \
        if (config.freeze_until or config.freeze) else None
    return start, frozen


def finetune(dataset, config: FinetuneConfig, out=None, *, progress: bool = True,
             overwrite: bool = False) -> FinetuneResult:
    """Fine-tune on a whole dataset and (with ``out``) write the best checkpoint.

    Splits: a dataset with a predefined ``split`` trains on ``train`` and stops
    early on ``val`` (carved from ``train`` when there is none); its ``test``
    images are evaluated once at the end (``meta["metrics"]["test"]``) and never
    used for training. Without a split column, a stratified ``val_fraction`` of
    the images is held out for early stopping.

    An existing ``out`` is refused before training unless ``overwrite=True``.

    Returns
    -------
    FinetuneResult
        ``.model`` (best state, eval mode, CPU), ``.meta`` (checkpoint meta),
        ``.checkpoint`` (the written path, when ``out`` was given).
    """
    if out is not None:
        refuse_existing(out, overwrite, what="checkpoint", kind="file")
    dataset = labelled(dataset)
    labels = np.asarray(dataset.labels)
    rows = np.arange(len(dataset))
    test_rows = np.zeros(0, dtype=np.int64)
    val_fraction = required(config.val_fraction, "val_fraction")
    split_note = "carved"
    if dataset.split is not None and (dataset.split == "train").any():
        split = np.asarray(dataset.split)
        train_rows, val_rows, test_rows = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
        split_note = "predefined"
        if len(val_rows) == 0:
            train_rows, val_rows = carve_validation(labels, train_rows, val_fraction, config.seed, dataset.groups)
            split_note = "predefined-train, carved val"
    else:
        train_rows, val_rows = carve_validation(labels, rows, val_fraction, config.seed, dataset.groups)
    task = task_of(dataset)
    start, frozen = prepare(dataset, config)
    base = BaseImages(dataset, start.preprocessing, cache=config.cache_images, progress=progress)
    pos = task.positive_index
    tr = train(start.model, base, train_rows, val_rows, labels, config, frozen=frozen, positive_index=pos,
               progress=progress, desc=f"finetune {start.arch['name']} on {dataset.name}")
    metrics: dict[str, Any] = {
        "monitor": config.monitor, "monitor_meaning": task.monitor_meaning(config), "task": task.name,
        "best_epoch": tr.best_epoch, "stopped_early": tr.stopped_early, "best": tr.best, "split": split_note,
        "n_train": int(len(train_rows)), "n_val": int(len(val_rows)), "n_test": int(len(test_rows)),
        "seconds": round(tr.seconds, 2)}
    if task.one_vs_rest:
        metrics["one_vs_rest"] = task.one_vs_rest
    if len(test_rows):
        device = resolve_device(config.device)
        model = start.model.to(device)
        probs, y, _ = predict_view(model, View(base, test_rows, labels), required(config.batch_size, "batch_size"),
                                   device, config.amp)
        start.model.to("cpu")
        test: dict[str, Any] = {"accuracy": float(np.mean(probs.argmax(1) == y)), "auc": monitor_auc(y, probs, pos),
                                "auc_meaning": task.auc_meaning()}
        if task.multiclass:  # the multi-class metrics of the evaluation package, on the test part
            from featurekit.evaluation.stats.multiclass import multiclass_metrics

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mc = multiclass_metrics(y, probs, list(task.classes))
            test.update({k: float(mc[k]) for k in ("balanced_accuracy", "precision_macro", "recall_macro",
                                                   "f1_macro", "kappa")})
        metrics["test"] = test
    meta = checkpoint_meta(dataset, config, start, start.model, tr, metrics)
    result = FinetuneResult(start.model, start, tr, meta)
    if out is not None:
        result.save(out, overwrite=overwrite)
    return result


def clone_model(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
