"""Fine-tuning CNNs end to end, comparable with the feature-based rows.

Public API
----------
:class:`FinetuneConfig`
    Every option (recipe, model, weights, head, small-input stem, freezing,
    optimiser, scheduler, early stopping, augmentation, imbalance, seed, device).
:data:`RECIPES`
    Named training settings (``transfer``, ``scratch`` and the studies' papers').
:func:`finetune`
    One training run on a dataset; returns a :class:`FinetuneResult` and
    writes the best checkpoint (``out=``).
:func:`cross_validate`
    Fine-tuning in every fold of an evaluation protocol (``"5"``, ``"5x3"``,
    ``"holdout:0.3x10"``, ``"predefined"``); writes a run folder in the format
    of ``featurekit evaluate`` (:mod:`featurekit.finetune.results`).
:class:`FinetuneStage`, :class:`RunOptions`, :func:`run_stage`, :func:`run_stages`
    A run as a typed object (data, config, outputs) and chains of them
    (two-stage transfer; :mod:`featurekit.finetune.pipeline`).
:func:`starting_point`, :func:`freeze`, :func:`set_train_mode`, :func:`train`
    The pieces: initial model (ImageNet / random / checkpoint, new or kept head),
    freezing by layer names, the training loop.
:class:`Predictor`, :func:`predict`
    Class probabilities from a checkpoint.

Checkpoints are :mod:`featurekit.checkpoint` files: ``torch.load(weights_only=True)``
safe, loadable by :func:`featurekit.models.weights.load_model` (and so by
``featurekit extract --weights CKPT``).

Names are imported lazily: ``from featurekit.finetune.config import FinetuneConfig``
(or this package's ``FinetuneConfig``) does not import torch.
"""

import importlib

_WHERE = {
    "AUGMENTATIONS": "config", "FinetuneConfig": "config", "RECIPES": "config", "Recipe": "config",
    "CVResult": "crossval", "cross_validate": "crossval",
    "FinetuneError": "errors", "HeadMismatchError": "errors",
    "Frozen": "freezing", "freeze": "freezing", "set_train_mode": "freezing",
    "StartingPoint": "modeling", "starting_point": "modeling",
    "FinetuneStage": "pipeline", "RunOptions": "pipeline", "StageOutcome": "pipeline", "run_stage": "pipeline",
    "run_stages": "pipeline",
    "Predictor": "predict", "predict": "predict",
    "results_rows": "results", "write_run": "results",
    "FinetuneResult": "training", "TrainResult": "training", "carve_validation": "training",
    "finetune": "training", "stratified_subsample": "training", "train": "training",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        # (importing the submodule first: ``predict`` is a submodule and a function; the function wins)
        value = getattr(importlib.import_module(f"featurekit.finetune.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featurekit.finetune' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
