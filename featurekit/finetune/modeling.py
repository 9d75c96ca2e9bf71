"""The model a fine-tuning run starts from: weights, new head, small-input stem, preprocessing.

``--weights imagenet | none``
    torchvision's model (ImageNet weights, or random under the seed); its
    ImageNet head is replaced by a new one for the dataset's classes.
``--weights PATH`` (torchvision state_dict)
    The backbone from the file, a new head.
``--weights PATH`` (featurekit checkpoint: two-stage transfer)
    The checkpoint's whole architecture and weights (rebuilt and loaded
    strictly by :func:`featurekit.models.weights.load_model`); its head is kept
    when it was trained on the same class names (``head_policy="auto"``) and
    replaced otherwise. Its lineage is carried on and extended.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from featurekit.errors import LayerError
from featurekit.finetune.errors import FinetuneError, HeadMismatchError
from featurekit.models.architecture import make_small_input, normalize_arch, set_head
from featurekit.models.building import quiet_meta_copies
from featurekit.models.layers import LayerTable
from featurekit.models.preprocessing import Preprocessing
from featurekit.models.registry import get_spec, table_for_model
from featurekit.models.weights import load_model, resolve_model
from featurekit.specs import Weights


@dataclass
class StartingPoint:
    """A model ready to fine-tune and where it came from."""

    model: nn.Module
    arch: dict
    preprocessing: Preprocessing
    table: LayerTable
    weights: str                 # tag of the initial weights ("imagenet:IMAGENET1K_V1", "file:stage1.pt")
    weights_sha256: str
    weights_path: str | None
    lineage: list = field(default_factory=list)   # stages before this one (from a checkpoint)
    head: str = "new"            # "new" or "kept"
    parent_classes: list | None = None


def _gray_preprocessing(pre: Preprocessing) -> Preprocessing:
    return dataclasses.replace(pre, mean=(float(np.mean(pre.mean)),), std=(float(np.mean(pre.std)),), channels=1)


def starting_point(config, class_names: list[str], *, seed: int | None = None) -> StartingPoint:
    """Build the initial model of a run for ``class_names`` as ``config`` says.

    Raises
    ------
    WeightsError
        Unreadable / corrupt / unsafe weights file, or one of another model.
    HeadMismatchError
        ``head_policy="keep"`` with a checkpoint trained on other classes.
    FinetuneError
        A small-input / channel setting that contradicts the checkpoint's.
    """
    seed = config.seed if seed is None else int(seed)
    spec = get_spec(config.model)
    num_classes = len(class_names)
    if num_classes < 2:
        raise FinetuneError(f"fine-tuning needs at least two classes, got {class_names}")
    choice = str(config.weights)
    weights = Weights.parse(config.weights, seed=seed)  # parsed once; a file is read once, here
    with quiet_meta_copies():  # the meta-device check of a checkpoint
        ref = resolve_model(spec.name, weights, seed=seed, size=config.size, mode=config.resize_mode)
        # a featurekit checkpoint (arch and meta recorded), or None for ImageNet, random init and plain state_dicts
        checkpoint = {"arch": ref.arch, "meta": ref.meta} if ref.arch is not None else None
        if checkpoint is None and config.small_input and config.size is None:
            raise FinetuneError("the small-input stem is meant for 28-64 px images: give the input size (--size)")
        lm = ref.load()
    model = lm.model
    want = {"name": spec.name, "num_classes": num_classes, "head": config.head, "hidden": int(config.hidden),
            "dropout": float(config.dropout), "small_input": bool(config.small_input),
            "in_chans": config.channels}
    lineage: list = []
    head_state = "new"
    parent_classes = None
    if checkpoint is not None:
        parent = normalize_arch(checkpoint["arch"])
        meta = checkpoint.get("meta", {})
        lineage = list(meta.get("lineage", []))
        parent_classes = list(meta.get("class_names", []))
        # The backbone comes from the checkpoint: its stem must be the one asked for.
        if config.small_input and not parent["small_input"]:
            raise FinetuneError(f"{choice} was trained without the small-input stem; drop --small-input "
                                "(the backbone cannot change between stages)")
        want["small_input"], want["in_chans"] = bool(parent["small_input"]), int(parent["in_chans"])
        if config.in_chans is not None and int(config.in_chans) != want["in_chans"]:
            raise FinetuneError(f"{choice} takes {want['in_chans']}-channel input; in_chans={config.in_chans} "
                                "cannot be used with it")
        same_classes = parent_classes == list(class_names)
        if config.head_policy == "keep" and int(parent["num_classes"]) != num_classes:
            raise HeadMismatchError(
                f"checkpoint {choice} has a {parent['num_classes']}-class head "
                f"(classes {parent_classes}) but the data has {num_classes} classes {list(class_names)}; "
                "use head_policy 'new' (--head-policy new) to replace the head")
        if config.head_policy == "keep" or (config.head_policy == "auto" and same_classes):
            # the trained head goes on with its own configuration
            want.update(head=parent["head"], hidden=parent["hidden"], dropout=parent["dropout"])
            head_state = "kept"
    # new modules (stem, head) are initialised under the seed, whatever the global RNG state is
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 7919)
        if checkpoint is None and want["small_input"]:
            make_small_input(model, want["in_chans"], adapt_pretrained=weights.pretrained)
        if head_state == "new":
            set_head(model, spec.name, num_classes, want["head"], want["hidden"], want["dropout"])
    arch = normalize_arch(want)
    pre = lm.preprocessing
    if checkpoint is not None and config.resize and config.resize != pre.mode:
        pre = dataclasses.replace(pre, mode=config.resize)  # an explicit --resize beats the checkpoint's
    if arch["in_chans"] == 1 and pre.channels != 1:
        pre = _gray_preprocessing(pre)
    try:
        table = table_for_model(model, spec, pre.size, pre.channels)
    except LayerError as exc:
        raise FinetuneError(f"{spec.name} cannot run at input size {pre.size}: {exc}") from exc
    model.eval()
    return StartingPoint(model, arch, pre, table, lm.weights, lm.weights_sha256, lm.weights_path, lineage,
                         head_state, parent_classes)


def quiet_load_model(name: str, weights: str, **kw):
    """:func:`load_model` without torch's "copying ... to a meta parameter" warnings, which its
    meta-device validation pass of a checkpoint emits once per tensor (no-ops, not problems)."""
    with quiet_meta_copies():
        return load_model(name, weights, **kw)


def weights_label(path: str | None) -> str:
    return Path(path).name if path else ""
