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

import lazy_loader

# submodule -> the names it defines, each imported on first use (``predict`` is a submodule and a
# function: the function is the package's attribute)
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "config": ["AUGMENTATIONS", "FinetuneConfig", "RECIPES", "Recipe"],
    "crossval": ["CVResult", "cross_validate"],
    "errors": ["FinetuneError", "HeadMismatchError"],
    "freezing": ["Frozen", "freeze", "set_train_mode"],
    "modeling": ["StartingPoint", "starting_point"],
    "pipeline": ["FinetuneStage", "RunOptions", "StageOutcome", "run_stage", "run_stages"],
    "predict": ["Predictor", "predict"],
    "results": ["results_rows", "write_run"],
    "training": ["FinetuneResult", "TrainResult", "carve_validation", "finetune", "stratified_subsample", "train"],
})
