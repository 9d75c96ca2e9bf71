"""The fine-tuning configuration: every option of ``featurekit finetune`` in one dataclass, and its recipes.

A :class:`FinetuneConfig` is recorded verbatim in every checkpoint
(``meta["training"]``) and run folder (``provenance.json``), so a result
always says how it was trained.

Recipes
-------
A *recipe* (:data:`RECIPES`) is a named set of training settings -- optimiser,
schedule, epochs, head, augmentation, early stopping -- for one kind of
start: every option left unset (``None``) takes the recipe's value, an option
given explicitly beats it. Without ``recipe`` the start decides:
``"transfer"`` for pretrained weights (ImageNet or a file) and ``"scratch"``
for random initialisation, because a from-scratch network trained with the
transfer settings (SGD lr 1e-3 divided by 10 every 7 epochs, heavy
augmentation) underfits: its learning rate has fallen 100x by epoch 14. The
papers' settings of the studies in ``pipelines/`` are recipes too
(``us-resnet-transfer``, ``us-resnet-scratch``, ``mammo-frozen``, ``breastmnist``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Optional, TypeVar

from featurekit.finetune.errors import FinetuneError
from featurekit.options import BALANCE, HEAD_POLICIES, HEADS, MONITORS, OPTIMIZERS, SCHEDULERS  # the options'
from featurekit.specs import Weights

__all__ = ["FinetuneConfig", "Recipe", "RECIPES", "BASE_SETTINGS", "AUGMENTATIONS", "DEFAULT_AUGMENT", "OPTIMIZERS",
           "SCHEDULERS", "MONITORS", "BALANCE", "HEAD_POLICIES", "HEADS", "recipe_names", "default_recipe",
           "parse_augment", "required"]
AUGMENTATIONS = ("flip", "vflip", "rotate", "translate", "brightness", "contrast", "crop")
DEFAULT_AUGMENT = ("flip", "rotate", "translate", "brightness", "contrast")

T = TypeVar("T")


def required(value: Optional[T], name: str) -> T:
    """The value of option ``name``, which the recipe sets when a :class:`FinetuneConfig` is built.

    None here means the option was set to None afterwards (a dataclass field
    can be); that is a :class:`FinetuneError` naming it, not a TypeError inside
    the training code.
    """
    if value is None:
        raise FinetuneError(f"fine-tuning option {name} is unset (None); give it a value or leave it to the "
                            "recipe when the configuration is built")
    return value


@dataclass(frozen=True)
class Recipe:
    """A named set of training settings (values of :class:`FinetuneConfig` fields)."""

    name: str
    description: str
    settings: dict
    source: str = ""


#: What an unset recipe option falls back to: the settings of the ``transfer`` recipe.
BASE_SETTINGS = {
    "weights": "imagenet", "head": "linear", "hidden": 512, "dropout": 0.5, "small_input": False, "size": None,
    "freeze_until": None, "freeze": None, "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9,
    "weight_decay": 1e-4, "scheduler": "step", "step_size": 7, "gamma": 0.1, "epochs": 25, "batch_size": 16,
    "monitor": "val_loss", "patience": 5, "min_delta": 0.0, "val_fraction": 0.2,
    "augment": list(DEFAULT_AUGMENT), "rotation": 15.0, "translate": 0.1, "brightness": 0.2, "contrast": 0.2,
    "crop_scale": [0.8, 1.0], "balance": "none",
}

RECIPES = {r.name: r for r in (
    Recipe("transfer", "pretrained start (ImageNet or a checkpoint): SGD momentum 0.9, lr 1e-3, weight decay "
                       "1e-4, StepLR(7, 0.1), 25 epochs, batch 16, early stopping on validation loss "
                       "(patience 5), flip/rotate/translate/brightness/contrast augmentation", {}),
    Recipe("scratch", "random start: Adam lr 1e-3 (the optimiser of the MedMNIST v2 baselines), cosine "
                      "schedule over 40 epochs, batch 32, horizontal flips only, early stopping on validation "
                      "AUC (patience 10)",
           {"weights": "none", "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "scheduler": "cosine",
            "epochs": 40, "batch_size": 32, "monitor": "val_auc", "patience": 10, "augment": ["flip"]},
           "Yang J et al. MedMNIST v2. Sci Data 10, 41 (2023): Adam, lr 0.001"),
    Recipe("us-resnet-transfer", "study 1, pretrained ResNet: stem and first block frozen "
                                 "(freeze_until conv2_block2_out), SGD momentum 0.9, lr 1e-3, StepLR(7, 0.1), "
                                 "25 epochs, horizontal flip + random crop",
           {"freeze_until": "conv2_block2_out", "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9,
            "scheduler": "step", "step_size": 7, "gamma": 0.1, "epochs": 25, "augment": ["flip", "crop"],
            "monitor": "val_auc", "patience": 10}),
    Recipe("us-resnet-scratch", "study 1, ResNet from scratch: SGD momentum 0.9, lr 1e-3 (the paper's "
                                "ResNet-50: lr 0.0256), StepLR(7, 0.1), 100 epochs, horizontal flip + random crop",
           {"weights": "none", "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "scheduler": "step",
            "step_size": 7, "gamma": 0.1, "epochs": 100, "augment": ["flip", "crop"], "monitor": "val_auc",
            "patience": 0}),
    Recipe("mammo-frozen", "study 4: backbone frozen, head Dense 512 + BatchNorm + ReLU + Dropout 0.5, SGD "
                           "momentum 0.9, lr 1e-4, no schedule, 10 epochs, class weights",
           {"freeze": "all", "head": "mlp", "hidden": 512, "dropout": 0.5, "optimizer": "sgd", "lr": 1e-4,
            "momentum": 0.9, "scheduler": "none", "epochs": 10, "balance": "weights", "augment": [],
            "patience": 0}),
    Recipe("breastmnist", "study 5: small-input ResNet-18 from scratch at 28 px, head Dropout(0.8) + Linear, "
                          "SGD lr 1e-3 momentum 0.9 weight decay 1e-4, batch 32, StepLR(20, 0.7), 30 epochs, "
                          "best epoch by the mean of validation AUC and accuracy",
           {"weights": "none", "small_input": True, "size": 28, "head": "dropout_linear", "dropout": 0.8,
            "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 32,
            "scheduler": "step", "step_size": 20, "gamma": 0.7, "epochs": 30, "monitor": "val_auc_acc",
            "patience": 0, "augment": []}),
)}


def recipe_names() -> tuple:
    return tuple(RECIPES)


def default_recipe(weights) -> str:
    """``"scratch"`` for random initialisation (``none``, ``none:seed=N``, ``random``), else ``"transfer"``."""
    if weights is None:
        return "transfer"
    return "transfer" if Weights.parse(weights).pretrained else "scratch"


@dataclass
class FinetuneConfig:
    """How to fine-tune one model.

    Its fields are the training options of ``featurekit finetune``
    (:data:`featurekit.options.FINETUNE`: the same names, types and defaults; a test keeps them so).

    Recipe
        ``recipe`` (a name of :data:`RECIPES`; default ``transfer`` for pretrained
        ``weights``, ``scratch`` for ``none``): every option left ``None`` takes
        the recipe's value (see the module docstring).
    Model
        ``model`` (any registry name), ``weights`` (``imagenet``, ``none`` or a
        PATH: torchvision state_dict or featurekit checkpoint; a cross-validated
        run folder saved with fold checkpoints starts each fold from its own
        fold's model), ``head`` (``linear``; ``mlp`` = Dense(``hidden``) + BatchNorm
        + ReLU + Dropout(``dropout``) + Dense; ``dropout_linear`` = Dropout(``dropout``)
        + Dense), ``hidden``, ``dropout``,
        ``small_input`` (ResNet 3x3/1 stem without max-pool, for 28-64 px),
        ``in_chans`` (1 or 3; default 1 with ``small_input``, else 3),
        ``head_policy`` (with a checkpoint PATH: ``auto`` keeps its head when the
        class names are the same and replaces it otherwise, ``new`` always
        replaces it, ``keep`` never does and fails on a class mismatch).
    Input
        ``size`` (default: the weights'), ``resize`` (``crop`` / ``squash``;
        default squash with ``small_input``, else crop).
    Freezing
        ``freeze_until`` (a layer name/index: every parameter up to and
        including it is frozen), ``freeze`` (comma-separated selectors, e.g.
        ``conv2_*,conv3_*``). BatchNorm layers in frozen parts stay in eval mode.
    Optimisation
        ``optimizer`` (sgd with ``momentum``, adam, adamw), ``lr``,
        ``weight_decay``, ``scheduler`` (none, step with ``step_size`` and
        ``gamma``, cosine over ``epochs``), ``epochs``, ``batch_size``.
    Early stopping
        ``monitor`` (``val_loss``, ``val_auc``, ``val_acc`` or ``val_auc_acc``: the
        mean of validation AUC and accuracy), ``patience`` (epochs without
        improvement; 0 = never stop early), ``min_delta``, ``val_fraction``
        (stratified validation split carved from the training data; 0 = none,
        then the last epoch is kept).
    Data
        ``augment`` (names of :data:`AUGMENTATIONS`, training only),
        ``rotation`` (degrees), ``translate`` (fraction), ``brightness``,
        ``contrast``, ``crop_scale`` (random resized crop area range),
        ``balance`` (``none``, ``weights``: inverse-frequency class weights in the
        loss, ``oversample``: classes drawn equally often).
    Execution
        ``seed``, ``device`` (auto = CUDA when present), ``amp`` (mixed precision
        on CUDA), ``num_workers``, ``cache_images`` (decode and resize every
        image once and keep it in memory).
    """

    model: str = "resnet18"
    weights: Optional[str] = None
    recipe: Optional[str] = None
    head: Optional[str] = None
    hidden: Optional[int] = None
    dropout: Optional[float] = None
    small_input: Optional[bool] = None
    in_chans: Optional[int] = None
    head_policy: str = "auto"
    size: Optional[int] = None
    resize: Optional[str] = None
    freeze_until: Optional[str] = None
    freeze: Optional[str] = None
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    scheduler: Optional[str] = None
    step_size: Optional[int] = None
    gamma: Optional[float] = None
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    monitor: Optional[str] = None
    patience: Optional[int] = None
    min_delta: Optional[float] = None
    val_fraction: Optional[float] = None
    augment: Optional[list] = None
    rotation: Optional[float] = None
    translate: Optional[float] = None
    brightness: Optional[float] = None
    contrast: Optional[float] = None
    crop_scale: Optional[list] = None
    balance: Optional[str] = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    cache_images: bool = True

    def __post_init__(self):
        self._apply_recipe()
        self.validate()

    def _apply_recipe(self) -> None:
        """Fill every unset (None) option from the recipe, then from :data:`BASE_SETTINGS`."""
        if self.recipe is None:
            self.recipe = default_recipe(self.weights)
        if self.recipe not in RECIPES:
            raise FinetuneError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        settings = {**BASE_SETTINGS, **RECIPES[self.recipe].settings}
        for name, value in settings.items():
            if getattr(self, name) is None and value is not None:
                setattr(self, name, list(value) if isinstance(value, list) else value)

    # ------------------------------------------------------------------
    def _check_numbers(self) -> None:
        """Every ``int`` / ``float`` field (by its declared type) holds such a number, floats finite."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = "int" if "int" in f.type else "float" if "float" in f.type else None
            if value is None or kind is None:
                continue
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise FinetuneError(f"{f.name} must be an integer, got {value!r}")
            if kind == "float" and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                    or not math.isfinite(value)):
                raise FinetuneError(f"{f.name} must be a finite number, got {value!r}")

    def validate(self) -> "FinetuneConfig":
        self._check_numbers()

        def choose(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise FinetuneError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

        choose("optimizer", OPTIMIZERS)
        choose("scheduler", SCHEDULERS)
        choose("monitor", MONITORS)
        choose("balance", BALANCE)
        choose("head_policy", HEAD_POLICIES)
        choose("head", HEADS)
        if self.resize is not None:
            choose("resize", ("crop", "squash"))
        if isinstance(self.augment, str):
            self.augment = parse_augment(self.augment)
        bad = [a for a in required(self.augment, "augment") if a not in AUGMENTATIONS]
        if bad:
            raise FinetuneError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTATIONS)} or 'none'")
        for name in ("epochs", "batch_size", "step_size"):
            if int(required(getattr(self, name), name)) < 1:
                raise FinetuneError(f"{name} must be >= 1, got {getattr(self, name)}")
        if required(self.patience, "patience") < 0:
            raise FinetuneError(f"patience must be >= 0, got {self.patience}")
        if not (isinstance(self.num_workers, int) and self.num_workers >= 0):
            raise FinetuneError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        if not 0.0 <= float(required(self.val_fraction, "val_fraction")) < 1.0:
            raise FinetuneError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= float(required(self.dropout, "dropout")) < 1.0:
            raise FinetuneError(f"dropout must be in [0, 1), got {self.dropout}")
        if float(required(self.lr, "lr")) <= 0:
            raise FinetuneError(f"lr must be positive, got {self.lr}")
        if self.in_chans is not None and int(self.in_chans) not in (1, 3):
            raise FinetuneError(f"in_chans must be 1 or 3, got {self.in_chans}")
        if self.in_chans is not None and int(self.in_chans) != 3 and not self.small_input:
            raise FinetuneError("in_chans=1 needs the small-input stem (small_input=True)")
        lo, hi = (float(v) for v in required(self.crop_scale, "crop_scale"))
        if not 0 < lo <= hi <= 1:
            raise FinetuneError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        self.crop_scale = [lo, hi]
        return self

    @property
    def channels(self) -> int:
        if self.in_chans is not None:
            return int(self.in_chans)
        return 1 if self.small_input else 3

    @property
    def resize_mode(self) -> str:
        return self.resize or ("squash" if self.small_input else "crop")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise FinetuneError(f"unknown fine-tuning option(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def replace(self, **changes) -> "FinetuneConfig":
        return FinetuneConfig.from_dict({**self.to_dict(), **changes})


def parse_augment(text: str) -> list:
    """``"flip,rotate"`` -> ``["flip", "rotate"]``; ``"none"`` / ``""`` -> ``[]``; ``"default"`` -> defaults."""
    items = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if items in ([], ["none"]):
        return []
    if items == ["default"]:
        return list(DEFAULT_AUGMENT)
    return items
