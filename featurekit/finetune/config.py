"""The fine-tuning configuration: every option of ``featurekit finetune`` in one dataclass.

A :class:`FinetuneConfig` is recorded verbatim in every checkpoint
(``meta["training"]``) and run folder (``provenance.json``), so a result
always says how it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from featurekit.finetune.errors import FinetuneError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine")
MONITORS = ("val_loss", "val_auc")
BALANCE = ("none", "weights", "oversample")
HEAD_POLICIES = ("auto", "new", "keep")
AUGMENTATIONS = ("flip", "vflip", "rotate", "translate", "brightness", "contrast", "crop")
DEFAULT_AUGMENT = ("flip", "rotate", "translate", "brightness", "contrast")


@dataclass
class FinetuneConfig:
    """How to fine-tune one model.

    Model
        ``model`` (any registry name), ``weights`` (``imagenet``, ``none`` or a
        PATH: torchvision state_dict or featurekit checkpoint), ``head``
        (``linear`` / ``mlp``), ``hidden``, ``dropout`` (MLP head),
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
        ``monitor`` (``val_loss`` or ``val_auc``), ``patience`` (epochs without
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
    weights: str = "imagenet"
    head: str = "linear"
    hidden: int = 512
    dropout: float = 0.5
    small_input: bool = False
    in_chans: Optional[int] = None
    head_policy: str = "auto"
    size: Optional[int] = None
    resize: Optional[str] = None
    freeze_until: Optional[str] = None
    freeze: Optional[str] = None
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "step"
    step_size: int = 7
    gamma: float = 0.1
    epochs: int = 25
    batch_size: int = 16
    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    val_fraction: float = 0.2
    augment: list = field(default_factory=lambda: list(DEFAULT_AUGMENT))
    rotation: float = 15.0
    translate: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    crop_scale: list = field(default_factory=lambda: [0.8, 1.0])
    balance: str = "none"
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    cache_images: bool = True

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------
    def validate(self) -> "FinetuneConfig":
        def choose(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise FinetuneError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

        choose("optimizer", OPTIMIZERS)
        choose("scheduler", SCHEDULERS)
        choose("monitor", MONITORS)
        choose("balance", BALANCE)
        choose("head_policy", HEAD_POLICIES)
        choose("head", ("linear", "mlp"))
        if self.resize is not None:
            choose("resize", ("crop", "squash"))
        if isinstance(self.augment, str):
            self.augment = parse_augment(self.augment)
        bad = [a for a in self.augment if a not in AUGMENTATIONS]
        if bad:
            raise FinetuneError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTATIONS)} or 'none'")
        for name in ("epochs", "batch_size", "step_size"):
            if int(getattr(self, name)) < 1:
                raise FinetuneError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise FinetuneError(f"patience must be >= 0, got {self.patience}")
        if not (isinstance(self.num_workers, int) and self.num_workers >= 0):
            raise FinetuneError(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise FinetuneError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise FinetuneError(f"dropout must be in [0, 1), got {self.dropout}")
        if float(self.lr) <= 0:
            raise FinetuneError(f"lr must be positive, got {self.lr}")
        if self.in_chans is not None and int(self.in_chans) not in (1, 3):
            raise FinetuneError(f"in_chans must be 1 or 3, got {self.in_chans}")
        if self.in_chans is not None and int(self.in_chans) != 3 and not self.small_input:
            raise FinetuneError("in_chans=1 needs the small-input stem (small_input=True)")
        lo, hi = (float(v) for v in self.crop_scale)
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
