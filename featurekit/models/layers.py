"""Layer tables and the layer specification grammar.

A *layer table* lists the layers of one model that featurekit can extract, in
execution order: an index, a canonical name (Keras-compatible where the
papers use Keras names), the module whose output it is, and the output's
layout: a ``(C, H, W)`` map (CNNs), an ``(H, W, C)`` channels-last map (Swin)
or an ``(L, D)`` token sequence (vision transformers, with its leading class /
distillation / register tokens counted). Index 0 is always ``input``, the
preprocessed image tensor.

Layer specification grammar (``featurekit extract --layers SPEC``)::

    SPEC     := MODEL ":" SELECTOR ("," SELECTOR)*
    SELECTOR := INDEX | NAME | START "-" END | GLOB | "all"

* ``vgg16:8-17``                      block3_conv2 ... block5_conv3 (10 layers)
* ``vgg16:block4_pool``               one layer by name
* ``resnet50:conv4_block6_out,conv5_block3_out``
* ``inception_v3:mixed0-mixed10``     ranges accept names as well as indices
* ``resnet50:conv5_*``                shell-style wildcards (fnmatch)
* ``timm-vit_small_patch16_224.augreg_in21k:blocks.3-blocks.11``
                                      a timm model: ``timm-`` + timm's own name
                                      (architecture, optionally ``.tag``)

Ranges are inclusive and follow table order. Duplicates are dropped, and the
selection is returned in table (= execution) order.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable, Sequence

from featurekit.errors import LayerError

INPUT = "input"


@dataclass(frozen=True)
class Layer:
    """One extractable layer.

    Attributes
    ----------
    index : int
        Position in the table (execution order, ``0`` = input).
    name : str
        Canonical name (``block4_pool``, ``conv5_block3_out``, ``mixed3``).
    module : str
        Dotted module path whose forward output is the activation
        (``features.23``, ``blocks.8``); ``""`` for the input.
    shape : tuple of int
        Output shape without the batch axis at the table's input size, in
        the layout's order: ``(C, H, W)``, ``(H, W, C)`` or ``(L, D)``.
    layout : {"chw", "hwc", "tokens"}
        How the output is laid out (see the module docstring).
    prefix_tokens : int
        ``tokens`` only: leading tokens that are not image patches (class,
        distillation, register tokens); the patch tokens follow them.
    class_token : bool
        ``tokens`` only: token 0 is a class token.
    """

    index: int
    name: str
    module: str
    shape: tuple[int, ...]
    layout: str = "chw"
    prefix_tokens: int = 0
    class_token: bool = False

    @property
    def channels(self) -> int:
        return int(self.shape[0] if self.layout == "chw" else self.shape[-1])

    @property
    def form(self) -> dict:
        """The layout keywords of :func:`featurekit.extraction.pooling.pool_map` for this layer."""
        return {"layout": self.layout, "prefix_tokens": self.prefix_tokens, "class_token": self.class_token}

    def describe_shape(self) -> str:
        """``512x14x14``; ``197x768 tokens (cls + 196 patches)``; ``7x7x768 (HWC)``."""
        dims = "x".join(str(s) for s in self.shape)
        if self.layout == "hwc":
            return f"{dims} (HWC)"
        if self.layout == "tokens":
            extra = self.prefix_tokens - int(self.class_token)
            more = "more " if self.class_token else ""
            parts = (["cls"] if self.class_token else []) + ([f"{extra} {more}prefix"] if extra else []) \
                + [f"{int(self.shape[0]) - self.prefix_tokens} patches"]
            return f"{dims} tokens ({' + '.join(parts)})"
        return dims


class LayerTable(Sequence[Layer]):
    """The extractable layers of one model at one input size."""

    def __init__(self, model: str, layers: Iterable[Layer], input_size: int):
        self.model = model
        self.input_size = int(input_size)
        self._layers = tuple(layers)
        self._by_name = {layer.name: layer for layer in self._layers}
        if len(self._by_name) != len(self._layers):
            raise LayerError(f"duplicate layer names in the table of {model}")

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, i):
        return self._layers[i]

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    def get(self, name_or_index: str | int) -> Layer:
        """Return one layer by name or index; unknown names list the valid ones."""
        key = str(name_or_index).strip()
        if key in self._by_name:
            return self._by_name[key]
        if key.lstrip("-").isdigit():
            i = int(key)
            if 0 <= i < len(self._layers):
                return self._layers[i]
            raise LayerError(
                f"layer index {i} is out of range for {self.model} (0-{len(self._layers) - 1}); "
                f"valid layers: {self._describe()}"
            )
        raise LayerError(f"unknown layer {key!r} for {self.model}; valid layers: {self._describe()}")

    def select(self, selector: str) -> list[Layer]:
        """Resolve the part of a spec after ``MODEL:`` into layers (table order)."""
        chosen: dict[int, Layer] = {}
        parts = [p.strip() for p in selector.split(",")]
        if not selector.strip() or any(not p for p in parts):
            raise LayerError(f"empty layer selector in {self.model}:{selector!r}")
        for part in parts:
            for layer in self._select_one(part):
                chosen[layer.index] = layer
        return [chosen[i] for i in sorted(chosen)]

    def _select_one(self, part: str) -> list[Layer]:
        if part == "all":
            return list(self._layers)
        if part in self._by_name or part.isdigit():
            return [self.get(part)]
        if any(c in part for c in "*?["):
            hits = [layer for layer in self._layers if fnmatch.fnmatchcase(layer.name, part)]
            if not hits:
                raise LayerError(f"pattern {part!r} matches no layer of {self.model}; valid layers: {self._describe()}")
            return hits
        if "-" in part:
            start, _, end = part.partition("-")
            a, b = self.get(start).index, self.get(end).index
            if a > b:
                raise LayerError(f"empty layer range {part!r} for {self.model}: {start} comes after {end}")
            return list(self._layers[a : b + 1])
        return [self.get(part)]

    def _describe(self) -> str:
        return ", ".join(f"{layer.index}:{layer.name}" for layer in self._layers)

    def format(self, dim_of=None, dim_label: str = "dim") -> str:
        """The table as text, as printed by ``featurekit layers MODEL``.

        ``dim_of(layer) -> int`` fills a last column (the feature dimension
        after pooling, e.g. :func:`featurekit.extraction.pooling.layer_dim`);
        a layer it raises a :class:`LayerError` for (a class token asked of a
        feature map) shows ``-``.
        """
        header = ("index", "name", "module", "output shape") + ((dim_label,) if dim_of else ())
        rows: list[tuple[str, ...]] = [header]
        for layer in self._layers:
            row: tuple[str, ...] = (str(layer.index), layer.name, layer.module or "(input)", layer.describe_shape())
            if dim_of:
                try:
                    row += (str(dim_of(layer)),)
                except LayerError:
                    row += ("-",)
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

