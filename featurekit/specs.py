"""Typed specifications, parsed once at the edge (CLI or API entry) and passed down.

* :class:`Weights` -- which weights a CNN runs with: ``Weights.imagenet()``,
  ``Weights.random(seed=0)``, ``Weights.file(path)``; ``Weights.parse("none:seed=3")``.
* :class:`LayerSpec` -- ``vgg16:8-17``: a model and a layer selector.
* :class:`HandcraftedSpec` -- ``glcm:bin_count=64``: a texture family and its parameters.
* :func:`parse_feature_token` -- what one ``evaluate --features`` token names.
* :data:`POOLS`, :data:`HANDCRAFTED`, :data:`RESIZE_MODES` -- the names the CLI offers as choices.

This module sits at the bottom of the package with ``io`` and ``errors``: it imports
nothing else of featurekit, nor torch or scikit-learn, so a command that has
nothing to compute parses its arguments without loading them. The library
accepts strings wherever a spec is asked for and converts them here, once.
Turning a spec into working objects happens above: layer selectors against a
model's :class:`~featurekit.models.layers.LayerTable`, a :class:`HandcraftedSpec`
into a transformer with :func:`featurekit.handcrafted.from_spec`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from featurekit.errors import ClusterError, DataError, LayerError, WeightsError

__all__ = [
    "SlicePolicy",
    "SLICE_POLICIES",
    "local_scheduler_workers",
    "split_feature_tokens",
    "split_handcrafted",
    "group_families",
    "FusionSpec",
    "lookup",
    "POOLS",
    "HANDCRAFTED",
    "HANDCRAFTED_GROUPS",
    "RADIOMICS_CLASSES",
    "RESIZE_MODES",
    "Weights",
    "LayerSpec",
    "HandcraftedSpec",
    "CacheKey",
    "AllFeatures",
    "parse_feature_token",
    "split_layer_spec",
    "parse_handcrafted",
    "parse_layers",
    "group_layers",
]

#: poolings of a CNN map, and of a vision transformer's tokens (see :mod:`featurekit.extraction.pooling`)
POOLS = ("gap", "gmp", "gapgmp", "spp", "none", "cls", "mean", "clsmean")
#: handcrafted feature families, by the key the cache stores them under: one name per
#: family, each with one line in :data:`featurekit.handcrafted.FAMILIES` (a test checks both agree)
HANDCRAFTED = ("gabor", "glcm", "haar", "firstorder", "shape", "lbp", "glrlm", "glszm", "gldm", "ngtdm")
#: pyradiomics' feature classes in its order, as featurekit specs of its default features
#: (GLCM: pyradiomics' 24, without skimage's set). LBP is not among them: pyradiomics
#: computes it as an image filter, not a feature class
RADIOMICS_CLASSES = ("firstorder", "shape", "glcm:features=pyradiomics", "glrlm", "glszm", "gldm", "ngtdm")
#: names that stand for several families wherever families are parsed; ``radiomics`` is
#: those of pyradiomics' classes whose family is registered in :data:`HANDCRAFTED`
HANDCRAFTED_GROUPS = {"radiomics": tuple(c for c in RADIOMICS_CLASSES if c.partition(":")[0] in HANDCRAFTED)}
#: how an image becomes the network's input size
RESIZE_MODES = ("crop", "squash")


# --------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class Weights:
    """Which weights a network runs with (torchvision-style weights choice).

    Parameters
    ----------
    source : {"imagenet", "none", "file"}
        ImageNet weights of torchvision (through the torch hub cache), seeded
        random initialisation, or a weights file (state_dict or featurekit checkpoint).
    variant : str, optional
        The ImageNet variant (``"IMAGENET1K_V1"``); default: the model's default,
        or the cached one offline.
    seed : int
        Seed of the random initialisation (``source="none"``).
    path : str, optional
        The weights file (``source="file"``).

    Examples
    --------
    >>> Weights.parse("none:seed=3")
    Weights(source='none', variant=None, seed=3, path=None)
    >>> Weights.parse("imagenet").matches("imagenet:IMAGENET1K_V1")
    True
    >>> Weights.random().tag
    'none:seed=0'
    """

    source: str
    variant: str | None = None
    seed: int = 0
    path: str | None = None

    def __post_init__(self):
        if self.source not in ("imagenet", "none", "file"):
            raise WeightsError(f"unknown weights source {self.source!r}: use imagenet, none or a file")
        if self.source == "file" and not self.path:
            raise WeightsError("Weights.file needs a path")

    # constructors --------------------------------------------------------
    @classmethod
    def imagenet(cls, variant: str | None = None) -> "Weights":
        """torchvision's ImageNet weights (``variant`` e.g. ``"IMAGENET1K_V1"``)."""
        return cls("imagenet", variant=variant or None)

    @classmethod
    def random(cls, seed: int = 0) -> "Weights":
        """Random initialisation under ``seed`` (never passed off as pretrained)."""
        return cls("none", seed=_int(seed, "seed"))

    @classmethod
    def file(cls, path: str | os.PathLike) -> "Weights":
        """A torchvision state_dict or a featurekit checkpoint file."""
        return cls("file", path=os.fspath(path))

    @classmethod
    def parse(cls, value: Union["Weights", str, os.PathLike, None], *, seed: int | None = None) -> "Weights":
        """``"imagenet"``, ``"imagenet:VARIANT"``, ``"none"``/``"random"`` (``:seed=N``), or a path.

        ``seed`` sets the seed of ``"none"`` when the text does not name one.
        """
        if isinstance(value, Weights):
            return value
        if value is None:
            return cls.imagenet()
        if isinstance(value, os.PathLike):
            return cls.file(value)
        text = str(value).strip()
        low = text.lower()
        if low == "imagenet" or low.startswith("imagenet:"):
            return cls.imagenet(text.partition(":")[2].strip() or None)
        head, _, rest = low.partition(":")
        if head in ("none", "random"):
            if rest:
                name, eq, number = rest.partition("=")
                if not eq or name.strip() != "seed":
                    raise WeightsError(f"bad weights {text!r}: random weights are 'none' or 'none:seed=N'")
                return cls.random(_int(number, "seed"))
            return cls.random(0 if seed is None else seed)
        if not text:
            raise WeightsError("empty weights choice: use imagenet, none or a weights file")
        return cls.file(text)

    # properties ----------------------------------------------------------
    @property
    def pretrained(self) -> bool:
        """False for random initialisation."""
        return self.source != "none"

    @property
    def tag(self) -> str:
        """The requested weights as recorded with results (``imagenet:V`` is resolved when loading)."""
        if self.source == "imagenet":
            return f"imagenet:{self.variant}" if self.variant else "imagenet"
        if self.source == "none":
            return f"none:seed={self.seed}"
        return f"file:{self.file_path.name}"

    @property
    def file_path(self) -> Path:
        """The weights file of a ``"file"`` source (a WeightsError for the others, which name none)."""
        if self.path is None:
            raise WeightsError(f"{self.source} weights name no file")
        return Path(self.path)

    def __str__(self) -> str:
        return self.tag

    def matches(self, recorded: str) -> bool:
        """Whether a recorded tag (``imagenet:IMAGENET1K_V1``, ``none:seed=0``, ``file:x.pt``) is this choice."""
        try:
            other = Weights.parse(str(recorded).replace("file:", "", 1) if str(recorded).startswith("file:")
                                  else recorded)
        except WeightsError:
            return False
        if other.source != self.source:
            return False
        if self.source == "imagenet":
            return self.variant is None or other.variant == self.variant
        if self.source == "none":
            return other.seed == self.seed
        return other.file_path.name == self.file_path.name


def lookup(name: Any, table: Mapping[str, Any], aliases: Mapping[str, str], what: str) -> tuple[str, Any]:
    """``(key, table[key])`` of a name or alias (case-insensitive) of a table of named things.

    Raises
    ------
    DataError
        Unknown name; the message lists the known names and aliases.
    """
    key = str(name).strip().lower()
    key = aliases.get(key, key)
    if key not in table:
        raise DataError(f"unknown {what} {name!r}; choose from {', '.join(table)} "
                        f"(aliases: {', '.join(sorted(aliases))})")
    return key, table[key]


def _int(value: Any, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise WeightsError(f"{what} must be an integer, got {value!r}") from None


# --------------------------------------------------------------------------- layers
def split_layer_spec(spec: str) -> tuple[str, str]:
    """Split ``"vgg16:8-17"`` into ``("vgg16", "8-17")`` (model lower-cased)."""
    model, sep, selector = str(spec).partition(":")
    model = model.strip().lower()
    if not sep or not model or not selector.strip():
        raise LayerError(
            f"bad layer spec {spec!r}: expected MODEL:LAYERS, e.g. 'vgg16:8-17', "
            "'vgg16:block4_pool', 'resnet50:conv5_*'"
        )
    return model, selector.strip()


@dataclass(frozen=True)
class LayerSpec:
    """``MODEL:SELECTOR`` (see :mod:`featurekit.models.layers` for the selector grammar)."""

    model: str
    selector: str

    @classmethod
    def parse(cls, value: Union["LayerSpec", str]) -> "LayerSpec":
        if isinstance(value, LayerSpec):
            return value
        model, selector = split_layer_spec(str(value))
        return cls(model, selector)

    def __str__(self) -> str:
        return f"{self.model}:{self.selector}"


def parse_layers(values: Iterable[Union[LayerSpec, str]]) -> list[LayerSpec]:
    """Layer specs from strings or specs, in order, duplicates dropped."""
    return list(dict.fromkeys(LayerSpec.parse(v) for v in values))


def group_layers(specs: Iterable[LayerSpec]) -> dict[str, list[str]]:
    """``{model: [selectors]}``: all layers of one model come from one forward pass."""
    grouped: dict[str, list[str]] = {}
    for spec in specs:
        grouped.setdefault(spec.model, []).append(spec.selector)
    return grouped


# --------------------------------------------------------------------------- handcrafted
@dataclass(frozen=True)
class HandcraftedSpec:
    """A handcrafted family with parameter overrides: ``glcm:bin_count=64;symmetric=true``.

    Parameters are those of the family's transformer (``GLCMFeatures``...);
    ``;`` separates them, ``,`` separates list items
    (``gabor:frequencies=0.5,0.25``). Values are read as int, float, bool
    (``true``/``false``), ``none`` or text.
    :func:`featurekit.handcrafted.from_spec` makes the transformer.
    """

    family: str
    params: tuple[tuple[str, Any], ...] = field(default=())

    @classmethod
    def parse(cls, value: Union["HandcraftedSpec", str]) -> "HandcraftedSpec":
        if isinstance(value, HandcraftedSpec):
            return value
        text = str(value).strip()
        family, _, rest = text.partition(":")
        family = family.strip().lower()
        if family not in HANDCRAFTED:
            raise LayerError(f"unknown handcrafted family {family!r}; choose from {', '.join(HANDCRAFTED)}")
        params: dict[str, Any] = {}
        for item in filter(None, (p.strip() for p in rest.split(";"))):
            name, eq, raw = item.partition("=")
            if not eq or not name.strip():
                raise LayerError(f"bad parameter {item!r} in {text!r}: expected NAME=VALUE")
            params[name.strip()] = _value(raw)
        return cls(family, tuple(sorted(params.items())))

    def __str__(self) -> str:
        if not self.params:
            return self.family
        return self.family + ":" + ";".join(f"{k}={_text(v)}" for k, v in self.params)


def parse_handcrafted(values: Iterable[Any] | str, *, read_params=None) -> list[HandcraftedSpec | Any]:
    """Families from ``"gabor,glcm:bin_count=64"``, a list of specs/strings, or transformers.

    A configured transformer (``GaborFeatures(...)``) is kept as it is. A group
    name (:data:`HANDCRAFTED_GROUPS`: ``radiomics``) stands for its families
    with their defaults; ``radiomics:params=FILE.yaml`` (or ``FAMILY:params=FILE.yaml``)
    for the families and settings a pyradiomics parameter file names, which
    ``read_params(path, families)`` turns into specs
    (:func:`featurekit.handcrafted.pyradiomics_params.read_pyradiomics_params`;
    the layers above this module pass it). Duplicates are dropped, order kept.
    """
    if isinstance(values, HandcraftedSpec):
        values = [values]
    if isinstance(values, str):
        values = _split_families(values)
    out = []
    for v in values:
        if isinstance(v, str):
            out.extend(_parse_group_or_file(v, read_params))
        elif isinstance(v, HandcraftedSpec):
            out.append(v)
        elif hasattr(v, "get_params"):
            out.append(v)
        else:
            raise LayerError(f"not a handcrafted family: {v!r}")
    return list(dict.fromkeys(out))


def _parse_group_or_file(text: str, read_params) -> list[HandcraftedSpec]:
    """One token: a family spec, a group, or ``NAME:params=FILE`` (module docstring)."""
    name, _, rest = text.strip().partition(":")
    name = name.strip().lower()
    items = [p.strip() for p in rest.split(";") if p.strip()]
    if any(p.partition("=")[0].strip() == "params" for p in items):
        if len(items) != 1:
            raise LayerError(f"bad handcrafted spec {text!r}: params=FILE takes no other parameters "
                             "(set them in the file)")
        if name not in HANDCRAFTED_GROUPS and name not in HANDCRAFTED:
            raise LayerError(f"unknown handcrafted family {name!r}; choose from "
                             f"{', '.join((*HANDCRAFTED, *HANDCRAFTED_GROUPS))}")
        if read_params is None:
            raise LayerError(f"{text!r}: a parameter file is read by featurekit.handcrafted."
                             "read_pyradiomics_params (extract and the command line read it for you)")
        families = [c.partition(":")[0] for c in HANDCRAFTED_GROUPS.get(name, (name,))]
        return list(read_params(items[0].partition("=")[2].strip(), families))
    if name in HANDCRAFTED_GROUPS:
        if items:
            raise LayerError(f"bad handcrafted spec {text!r}: the group {name!r} takes no parameters but "
                             f"params=FILE.yaml; set a family's own (e.g. glcm:bin_count=32)")
        return [HandcraftedSpec.parse(c) for c in HANDCRAFTED_GROUPS[name]]
    return [HandcraftedSpec.parse(text)]


def _split_families(text: str) -> list[str]:
    """``"gabor:frequencies=0.5,0.25,glcm"`` -> ``["gabor:frequencies=0.5,0.25", "glcm"]``."""
    items: list[str] = []
    for chunk in (c.strip() for c in text.split(",")):
        if not chunk:
            continue
        head = chunk.partition(":")[0].strip().lower()
        if head in HANDCRAFTED or head in HANDCRAFTED_GROUPS or not items:
            items.append(chunk)
        else:
            items[-1] += "," + chunk  # a list value of the previous family's parameter
    return items


def split_handcrafted(values: Sequence[str]) -> list[str]:
    """Family specs from comma-separated texts; a parameter's list keeps its commas
    (``["gabor:frequencies=0.5,0.25,glcm"]`` -> ``["gabor:frequencies=0.5,0.25", "glcm"]``)."""
    return [item for text in values for item in _split_families(str(text))]


def _value(raw: str) -> Any:
    raw = raw.strip()
    if "," in raw:
        return tuple(_value(p) for p in raw.split(",") if p.strip())
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _text(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(_text(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "none" if v is None else str(v)


# --------------------------------------------------------------------------- feature tokens
@dataclass(frozen=True)
class CacheKey:
    """A cache key named directly: ``MODEL/LAYER`` for a network layer (``mobilenet_v2/features.14``),
    a family for handcrafted features (``gabor``)."""

    key: str

    @classmethod
    def of_layer(cls, model: str, layer: str) -> "CacheKey":
        """The key of a network layer."""
        return cls(f"{model}/{layer}")

    @property
    def is_layer(self) -> bool:
        """Whether the key names a network layer (``MODEL/LAYER``)."""
        return "/" in self.key

    @property
    def model(self) -> str | None:
        return self.key.split("/", 1)[0] if self.is_layer else None

    @property
    def layer(self) -> str | None:
        return self.key.split("/", 1)[1] if self.is_layer else None

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class AllFeatures:
    """Every key of the cache."""

    def __str__(self) -> str:
        return "all"


FeatureToken = Union[LayerSpec, HandcraftedSpec, CacheKey, AllFeatures]


@dataclass(frozen=True)
class FusionSpec:
    """An early fusion of feature sets, written ``A+B`` (``vgg16:block5_conv3+gabor``).

    ``parts`` are feature tokens (:func:`parse_feature_token`); a layer spec part
    may name several layers, all of which join the fusion.
    """

    parts: tuple

    @classmethod
    def parse(cls, value: Union["FusionSpec", str]) -> "FusionSpec":
        if isinstance(value, FusionSpec):
            return value
        pieces = [p.strip() for p in str(value).split("+")]
        pieces = [f for p in pieces for f in group_families(p)]  # a group joins as its families
        if any(not p for p in pieces):
            raise LayerError(f"bad fusion {value!r}: write feature sets joined by '+', e.g. vgg16:block5_conv3+gabor")
        if len(pieces) < 2:
            raise LayerError(f"fusion {value!r} needs at least two feature sets joined by '+'")
        return cls(tuple(parse_feature_token(p) for p in pieces))

    @classmethod
    def of(cls, keys: Iterable[str]) -> "FusionSpec":
        """The fusion of resolved cache keys (a fused row's ``parts``)."""
        return cls(tuple(CacheKey(str(k)) for k in keys))

    @property
    def keys(self) -> frozenset:
        """The parts' texts (for cache keys: the keys)."""
        return frozenset(str(p) for p in self.parts)

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.parts)


def parse_feature_token(value: Any) -> FeatureToken:
    """What one ``evaluate --features`` token names.

    ``"all"``; a handcrafted family (``"gabor"``, ``"glcm:bin_count=64"``); a layer
    spec (``"vgg16:8-17"``: one feature set per layer); else a cache key
    (``"vgg16/block5_conv3"``).
    """
    if isinstance(value, (LayerSpec, HandcraftedSpec, CacheKey, AllFeatures)):
        return value
    text = str(value).strip()
    if not text:
        raise LayerError("empty feature-set name")
    if text == "all":
        return AllFeatures()
    if text.partition(":")[0].strip().lower() in HANDCRAFTED:
        return HandcraftedSpec.parse(text)
    if ":" in text:
        return LayerSpec.parse(text)
    return CacheKey(text)


def split_feature_tokens(values: Sequence[str]) -> list[str]:
    """Comma-separated feature-set tokens; commas inside a layer spec's selector stay in it.

    ``["gabor,glcm", "vgg16:block4_pool,block5_pool,gabor"]`` ->
    ``["gabor", "glcm", "vgg16:block4_pool,block5_pool", "gabor"]``: a piece without
    ``:`` or ``/`` that follows a layer spec continues its selector, unless it
    is a handcrafted family, a group (``radiomics``: its families, one token each) or ``all``.
    """
    out: list[str] = []
    for item in values:
        for piece in (p.strip() for p in str(item).split(",")):
            if not piece:
                continue
            if (out and ":" in out[-1] and ":" not in piece and "/" not in piece
                    and piece.lower() not in HANDCRAFTED and piece.lower() not in HANDCRAFTED_GROUPS
                    and piece != "all"):
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.extend(group_families(piece))
    return out


def group_families(name: str) -> list[str]:
    """The family keys a group name stands for (``radiomics`` -> ``firstorder``, ``shape``, ...),
    or ``[name]``: how a group is read where feature sets are named by their cache keys."""
    members = HANDCRAFTED_GROUPS.get(str(name).strip().lower())
    return [str(name)] if members is None else [m.partition(":")[0] for m in members]


# --------------------------------------------------------------------------
# planes of stacks (--slices) and local clusters (--scheduler local:N)
# --------------------------------------------------------------------------

SLICE_POLICIES = ("index:K", "middle", "max-mask", "all-masked", "all")
_SLICE_KINDS = ("index", "middle", "max-mask", "all-masked", "all")


@dataclass(frozen=True)
class SlicePolicy:
    """A slice policy: ``kind`` in ``index, middle, max-mask, all-masked, all``; ``index`` for ``index``."""

    kind: str
    index: int | None = None

    def __post_init__(self) -> None:
        # a plane number exactly for "index", so planes() never meets a missing or negative one
        if (self.kind not in _SLICE_KINDS or (self.kind == "index") != (self.index is not None)
                or (self.index is not None and self.index < 0)):
            raise DataError(f"slice policy {self.kind!r} with index {self.index!r}: expected one of "
                            f"{list(SLICE_POLICIES)} (K a slice number from 0)")

    @classmethod
    def parse(cls, text: None | str | "SlicePolicy") -> "SlicePolicy | None":
        if text is None or isinstance(text, SlicePolicy):
            return text
        name = str(text).strip().lower()
        if name in _SLICE_KINDS and name != "index":
            return cls(name)
        head, _, k = name.partition(":")
        if head == "index" and k.strip().isdigit():
            return cls("index", int(k))
        raise DataError(f"slice policy {text!r}: expected one of {list(SLICE_POLICIES)} (K a slice number from 0)")

    @property
    def many(self) -> bool:
        return self.kind in ("all-masked", "all")

    def planes(self, n: int, where: str, areas: Any = None) -> list[int]:
        """The planes of an ``n``-plane stack; ``areas`` = mask pixels per plane (mask policies)."""
        if self.index is not None:  # the "index" kind
            if self.index >= n:
                raise DataError(f"{where}: --slices index:{self.index}, but it has {n} planes (0..{n - 1})")
            return [self.index]
        if self.kind == "middle":
            return [n // 2]
        if self.kind == "all":
            return list(range(n))
        if areas is None:
            raise DataError(f"{where}: --slices {self.kind} needs a mask volume, and this sample has none")
        if len(areas) != n:
            raise DataError(f"{where}: the mask has {len(areas)} planes, the image {n}")
        areas = [int(a) for a in areas]
        if not any(areas):
            raise DataError(f"{where}: --slices {self.kind}, but its mask is empty in every plane")
        if self.kind == "max-mask":
            return [areas.index(max(areas))]
        return [k for k, a in enumerate(areas) if a]


def local_scheduler_workers(scheduler: str) -> int | None:
    """The ``N`` of a ``--scheduler local:N`` (a LocalCluster of N workers); None for any other scheduler.

    Raises
    ------
    ClusterError
        ``local:`` without a positive number of workers.
    """
    head, sep, n = str(scheduler).partition(":")
    if head != "local" or not sep:
        return None
    workers = int(n) if n.strip().isdigit() else 0
    if workers < 1:
        raise ClusterError(f"--scheduler local:N takes a positive number of workers, got {n!r}")
    return workers
