"""Fine-tuning CNNs end to end, comparable with the feature-based rows.

Public API
----------
:class:`FinetuneConfig`
    Every option (model, weights, head, small-input stem, freezing, optimiser,
    scheduler, early stopping, augmentation, imbalance, seed, device).
:func:`finetune`
    One training run on a dataset; returns a :class:`FinetuneResult` and
    writes the best checkpoint (``out=``).
:func:`cross_validate`
    Fine-tuning in every fold of an evaluation protocol (``"5"``, ``"5x3"``,
    ``"holdout:0.3x10"``, ``"predefined"``); writes a run folder in the format
    of ``featurekit evaluate`` (:mod:`featurekit.finetune.results`).
:func:`starting_point`, :func:`freeze`, :func:`set_train_mode`, :func:`train`
    The pieces: initial model (ImageNet / random / checkpoint, new or kept head),
    freezing by layer names, the training loop.
:class:`Predictor`, :func:`predict`
    Class probabilities from a checkpoint.
:func:`run_pipeline`
    Chained stages from a pipeline JSON file (two-stage transfer).

Checkpoints are :mod:`featurekit.checkpoint` files: ``torch.load(weights_only=True)``
safe, loadable by :func:`featurekit.models.weights.load_model` (and so by
``featurekit extract --weights CKPT``).
"""

from featurekit.finetune.config import AUGMENTATIONS, FinetuneConfig
from featurekit.finetune.crossval import CVResult, cross_validate
from featurekit.finetune.errors import FinetuneError, HeadMismatchError
from featurekit.finetune.freezing import Frozen, freeze, set_train_mode
from featurekit.finetune.modeling import StartingPoint, starting_point
from featurekit.finetune.pipeline import load_pipeline, run_pipeline
from featurekit.finetune.predict import Predictor, predict
from featurekit.finetune.results import results_rows, write_run
from featurekit.finetune.training import (
    FinetuneResult,
    TrainResult,
    carve_validation,
    finetune,
    stratified_subsample,
    train,
)

__all__ = [
    "AUGMENTATIONS",
    "CVResult",
    "FinetuneConfig",
    "FinetuneError",
    "FinetuneResult",
    "Frozen",
    "HeadMismatchError",
    "Predictor",
    "StartingPoint",
    "TrainResult",
    "carve_validation",
    "cross_validate",
    "finetune",
    "freeze",
    "load_pipeline",
    "predict",
    "results_rows",
    "run_pipeline",
    "set_train_mode",
    "starting_point",
    "stratified_subsample",
    "train",
    "write_run",
]
