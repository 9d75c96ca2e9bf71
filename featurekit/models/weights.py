"""Resolving ``--weights imagenet | none | PATH`` into a ready model.

* ``imagenet``: torchvision's default ImageNet weights for the model, through
  torchvision's weights API and torch hub cache (``$TORCH_HOME/hub/checkpoints``):
  downloaded when online, read from the cache when present. Offline with the
  file missing, a :class:`~featurekit.errors.WeightsError` names the exact file
  and folder to put it in. A cached file is trusted only when its sha256 starts
  with the hash prefix in its name (torchvision's ``check_hash`` rule).
* ``none``: random initialisation under a seed (``torch.manual_seed``), never
  passed off as pretrained: its tag says ``none``.
* ``PATH``: a torchvision state_dict file, or a featurekit checkpoint written by
  ``featurekit finetune`` (architecture, head and preprocessing come with it).

Each resolution records the weights' sha256 so every result can say exactly
which weights made it.

No code runs from a weights file: every file, on every path, is read by
:func:`featurekit.checkpoint.load_weights_file` (``torch.load(weights_only=True)``);
torchvision's own loader, which unpickles hub files with ``weights_only=False``,
is never called.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from featurekit.checkpoint import is_checkpoint, load_weights_file, state_dict_sha256
from featurekit.errors import WeightsError
from featurekit.io import write_json
from featurekit.models.architecture import apply_arch
from featurekit.models.building import skip_init
from featurekit.models.layers import LayerTable
from featurekit.models.modelspec import ModelSpec
from featurekit.models.preprocessing import Preprocessing
from featurekit.models.registry import build, get_spec, layer_table, table_for_model
from featurekit.models.sources import weights_of
from featurekit.models.torchvision_models import head_modules
from featurekit.specs import Weights

_HASHES: dict[str, str] = {}  # "realpath|inode|size|mtime_ns|ctime_ns" -> sha256


@dataclass
class ModelRef:
    """Everything about a model and its weights that identifies its features, without building it.

    Resolving is cheap (no forward pass, no weight tensors); :meth:`load`
    builds the model. A cache hit therefore never pays for building VGG16.
    """

    spec: ModelSpec
    table: LayerTable
    preprocessing: Preprocessing
    weights: str          # "imagenet:IMAGENET1K_V1", "none:seed=0", "file:NAME"
    weights_sha256: str | None  # None for random init until built (then the state_dict's hash)
    weights_path: str | None = None
    meta: dict = field(default_factory=dict)
    arch: dict | None = None  # a featurekit checkpoint's architecture (new head, small-input stem)
    _builder: Callable[[], nn.Module] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identity(self) -> dict:
        """What makes two feature sets of this model differ (hashed into cache entry ids)."""
        ident = {"weights": self.weights, "weights_sha256": self.weights_sha256}
        if self.weights.startswith("none:"):
            # random init depends on the seed and on torch's initialisers
            ident["weights_sha256"] = None
            ident["init"] = f"torch-{torch.__version__.split('+')[0]}"
        return ident

    def load(self) -> "LoadedModel":
        if self._builder is None:
            raise WeightsError(f"{self.spec.name} ({self.weights}): this reference has no model builder")
        model = self._builder().eval()
        sha = self.weights_sha256 or state_dict_sha256(model.state_dict())
        return LoadedModel(model, self.spec, self.table, self.preprocessing, self.weights, sha,
                           self.weights_path, self.meta)


@dataclass
class LoadedModel:
    """A model in eval mode with everything recorded about how it was made."""

    model: nn.Module
    spec: ModelSpec
    table: LayerTable
    preprocessing: Preprocessing
    weights: str
    weights_sha256: str
    weights_path: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


@contextlib.contextmanager
def _safe_state_dict(tv_weights, path: Path):
    """Make torchvision's builder take its state_dict from :func:`load_weights_file`.

    torchvision's builders call ``weights.get_state_dict()``, which unpickles the
    hub file with ``weights_only=False`` (code in a crafted file would run).
    While this context is active, that call returns the verified ``path`` read
    safely (and mapped, which skips one full read of a 528 MB VGG16 file);
    nothing ever falls back to torchvision's loader.
    """
    cls = type(tv_weights)
    own = cls.__dict__.get("get_state_dict")

    def get_state_dict(self, *args, **kwargs):
        if self is not tv_weights:
            raise WeightsError(f"torchvision asked for weights {self} while building with {tv_weights}")
        return load_weights_file(path, mmap=True)

    cls.get_state_dict = get_state_dict
    try:
        yield
    finally:
        if own is None:
            del cls.get_state_dict
        else:
            cls.get_state_dict = own


def _hash_memo_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "featurekit" / "sha256.json"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised by (real path, inode, size, mtime, ctime) in memory and on disk."""
    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    if key in _HASHES:
        return _HASHES[key]
    memo_path = _hash_memo_path()
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        memo[key] = h.hexdigest()
        with contextlib.suppress(OSError):  # a memo that cannot be written only costs a re-hash
            write_json(memo_path, memo, indent=None)
    _HASHES[key] = memo[key]
    return memo[key]


def imagenet_weights(name: str, variant: str | None = None):
    """torchvision's ImageNet weights enum of a model.

    ``variant`` names one (``"IMAGENET1K_V1"``). Without it: the model's
    DEFAULT weights, unless only another ImageNet-1k classification variant
    is in the torch hub cache (e.g. MobileNet-V2's V1 file while DEFAULT is
    V2) -- then that one, so an offline machine uses what it has rather than
    fail; the weights tag records which variant was used.
    """
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError, AttributeError) as exc:
        raise WeightsError(f"torchvision has no ImageNet weights for {name}") from exc
    if variant:
        try:
            return enum[variant]
        except KeyError:
            raise WeightsError(f"{name} has no weights {variant!r}; torchvision has "
                               f"{', '.join(w.name for w in enum)}") from None
    if hub_file(enum.DEFAULT).is_file():
        return enum.DEFAULT
    cached = [w for w in enum if w.name.startswith("IMAGENET1K_V") and hub_file(w).is_file()]
    return cached[-1] if cached else enum.DEFAULT


def hub_file(weights) -> Path:
    """Where torch hub keeps (or would download) a torchvision weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def hash_prefix(path: str | os.PathLike) -> str | None:
    """The sha256 prefix a torchvision file name carries (``mobilenet_v2-b0353104.pth`` -> ``b0353104``).

    torchvision's ``check_hash`` rule: the 8 or more hex digits after the last
    ``-`` of the file stem; None when the name has none.
    """
    stem = Path(path).name.split(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return tail if re.fullmatch(r"[0-9a-f]{8,}", tail) else None


def verify_hub_file(tv_weights, path: Path, model: str) -> str:
    """The sha256 of a cached torchvision weights file, checked against the prefix in its name.

    Raises
    ------
    WeightsError
        The name carries no hash, or the file's sha256 does not start with it
        (another file saved under that name, or a damaged one): never used
        or recorded as ImageNet weights.
    """
    prefix = hash_prefix(path)
    if prefix is None:
        raise WeightsError(f"{path}: the file name of {model}'s {tv_weights.name} weights carries no sha256 "
                           "prefix, so the file cannot be verified; pass it as --weights PATH to use it as "
                           "a plain weights file")
    sha = file_sha256(path)
    if not sha.startswith(prefix):
        raise WeightsError(
            f"{path} has the name of torchvision's {model} ImageNet weights ({tv_weights.name}), whose sha256 "
            f"starts with {prefix}, but this file's sha256 starts with {sha[:len(prefix)]}: it is another or "
            f"a damaged file, and is not used as ImageNet weights. Delete it (it is downloaded again from "
            f"{tv_weights.url} when online) or put the genuine file there; to use this file as your own "
            f"weights, pass its path with --weights (it is then recorded as file:{path.name})")
    return sha


def resolve_model(name: str, weights="imagenet", *, seed: int | None = None, size: int | None = None,
                  mode: str = "crop", recorded: Collection[tuple[str, str]] = ()) -> ModelRef:
    """Resolve a model and its weights (downloading ImageNet weights if needed), without building it.

    ``weights`` is a :class:`~featurekit.specs.Weights` or its text form
    (``"imagenet"``, ``"imagenet:IMAGENET1K_V1"``, ``"none"``, ``"none:seed=3"``, a path);
    ``seed`` seeds the text ``"none"``. ``recorded``: ``(weights tag, sha256)`` pairs of
    features computed before (a feature cache's entries): when torchvision's ImageNet file is
    absent, the sha256 recorded under its tag, and matching the hash in the file's name, stands
    for it -- the entries computed from it are found without the file (or a download); building
    the model still needs the file, and one whose sha256 differs is refused.
    """
    spec = get_spec(name)
    return weights_of(spec.source).resolve_weights(spec.name, Weights.parse(weights, seed=seed), size=size,
                                                   mode=mode, recorded=recorded)


def resolve_weights(name: str, w: Weights, *, size: int | None, mode: str,
                    recorded: Collection[tuple[str, str]] = ()) -> ModelRef:
    """Resolve a torchvision model's weights (the ``torchvision`` source of :mod:`featurekit.models.sources`)."""
    spec = get_spec(name)
    if w.source == "imagenet":
        return _resolve_imagenet(spec, w.variant, size, mode, recorded)
    if w.source == "none":
        return _resolve_random(spec, w.seed, size, mode)
    return _resolve_file(spec, w.file_path, size, mode)


def load_model(name: str, weights="imagenet", *, seed: int | None = None, size: int | None = None,
               mode: str = "crop") -> LoadedModel:
    """Build a registry model with its weights, layer table and bound preprocessing (eval mode)."""
    return resolve_model(name, weights, seed=seed, size=size, mode=mode).load()


def _resolve_imagenet(spec: ModelSpec, variant, size, mode, recorded: Collection[tuple[str, str]] = ()) -> ModelRef:
    tv_weights = imagenet_weights(spec.name, variant)
    path = hub_file(tv_weights)
    tag = f"imagenet:{tv_weights.name}"
    pre = Preprocessing.from_weights(tv_weights.transforms(), spec.default_size, size, mode)
    if not path.is_file():
        prefix = hash_prefix(path)
        known = {sha for t, sha in recorded if t == tag and sha and prefix and sha.startswith(prefix)}
        if len(known) == 1:  # the file's sha256, as features computed from it recorded it
            (sha,) = known

            def from_the_file():
                ref = _resolve_imagenet(spec, variant, size, mode)  # the file itself: downloaded, verified
                if ref.weights_sha256 != sha:
                    raise WeightsError(f"{ref.weights_path}: sha256 {ref.weights_sha256}, not the {sha} "
                                       f"recorded for {spec.name}'s {tag} weights")
                return ref._builder()

            return ModelRef(spec, layer_table(spec.name, pre.size), pre, tag, sha, str(path),
                            _builder=from_the_file)
        try:  # download only (hash-checked by torch hub); reading is ours
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(tv_weights.url, str(path), hash_prefix=hash_prefix(path),
                                           progress=True)
        except OSError as exc:  # URLError is an OSError: offline and not cached
            raise WeightsError(
                f"ImageNet weights for {spec.name} are not available offline: expected the file "
                f"{path.name} in {path.parent} (set TORCH_HOME to use another cache folder). "
                f"Download {tv_weights.url} and put it there, or use --weights none / --weights PATH. "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        except RuntimeError as exc:  # torch hub's hash check of the download
            raise WeightsError(f"downloading {tv_weights.url} to {path} failed: {exc}") from exc
    sha = verify_hub_file(tv_weights, path, spec.name)

    def builder():
        with skip_init(), _safe_state_dict(tv_weights, path):  # every parameter comes from the file
            return build(spec.name, weights=tv_weights)

    return ModelRef(spec, layer_table(spec.name, pre.size), pre, tag, sha, str(path), _builder=builder)


def _resolve_random(spec: ModelSpec, seed: int, size, mode) -> ModelRef:
    def builder():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return build(spec.name, weights=None)

    pre = Preprocessing.from_weights(None, spec.default_size, size, mode)
    return ModelRef(spec, layer_table(spec.name, pre.size), pre, f"none:seed={int(seed)}", None,
                    _builder=builder)


def _resolve_file(spec: ModelSpec, path: Path, size, mode) -> ModelRef:
    obj = load_weights_file(path)
    if is_checkpoint(obj):
        arch = obj["arch"]
        if arch.get("name", spec.name) != spec.name:
            raise WeightsError(f"checkpoint {path} is a {arch.get('name')} model, not {spec.name}")
        meta = obj["meta"]
        pre = Preprocessing.from_dict(meta["preprocessing"]) if "preprocessing" in meta else \
            Preprocessing.from_weights(None, spec.default_size, size, mode)
        if size is not None and int(size) != pre.size:
            pre = Preprocessing(int(size), round(int(size) * pre.resize / pre.size), pre.mean, pre.std,
                                pre.mode, pre.interpolation, pre.channels)

        def builder():
            with skip_init():  # strict load below sets every parameter
                model = apply_arch(build(spec.name, weights=None), arch)
            _load_state(model, obj["state_dict"], path, strict=True, spec=spec)
            return model

        with torch.device("meta"):
            skeleton = apply_arch(build(spec.name, weights=None), arch)
        _load_state(skeleton, obj["state_dict"], path, strict=True, spec=spec, check_only=True)
        table = table_for_model(skeleton, spec, pre.size, pre.channels)
    else:
        state = obj.get("state_dict", obj.get("model", obj))
        pre = Preprocessing.from_weights(None, spec.default_size, size, mode)
        meta = {}
        table = layer_table(spec.name, pre.size)

        def builder():
            model = build(spec.name, weights=None)  # a head absent from the file keeps its fresh init
            _load_state(model, state, path, strict=False, spec=spec)
            return model

        with torch.device("meta"):
            _load_state(build(spec.name, weights=None), state, path, strict=False, spec=spec, check_only=True)
    return ModelRef(spec, table, pre, f"file:{path.name}", file_sha256(path), str(path.resolve()), meta,
                    arch=dict(obj["arch"]) if is_checkpoint(obj) else None, _builder=builder)


def _load_state(model: nn.Module, state: dict, path: Path, strict: bool, spec: ModelSpec | None = None,
                check_only: bool = False) -> None:
    """Load a state_dict; with ``strict=False`` only the classifier head may differ.

    ``check_only`` validates keys and shapes (e.g. against a ``meta``-device
    skeleton) without copying any tensor.
    """
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state_dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    heads = tuple(f"{h}." for h in head_modules(spec.name)) if (spec and not strict) else ()
    if heads:  # a state_dict of the same backbone with another head: keep the fresh head
        state = {k: v for k, v in state.items()
                 if not (k.startswith(heads) and (k not in own or own[k].shape != v.shape))}
    missing = [k for k in own if k not in state and not (heads and k.startswith(heads))]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        raise WeightsError(
            f"{path} does not fit {spec.name if spec else type(model).__name__}: "
            + "; ".join(f"{what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                        for what, keys in (("missing", missing), ("unexpected", unexpected),
                                           ("shape mismatch", mismatched)) if keys)
        )
    if not check_only:
        model.load_state_dict(state, strict=False)
