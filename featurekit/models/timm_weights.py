"""Weights of timm models: pretrained tags from the hub cache, local files, seeded random init.

``--weights``:

``imagenet``
    The pretrained weights of the tag (timm's default tag when the name has
    none), whatever data they were trained on. The file is looked up in the Hugging Face hub cache
    (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``) where timm
    keeps it -- ``model.safetensors``, else ``pytorch_model.bin`` -- or, for
    weights timm only knows by URL, in the torch hub cache. Missing and
    online: downloaded there; offline: a :class:`WeightsError` names the file
    and the folder. Recorded as ``imagenet:<tag>``.
``none``
    timm's random initialisation under the seed.
``PATH``
    A ``.safetensors`` file (read with safetensors), a ``.pth``/``.pt``/``.bin``
    state_dict (``torch.load(weights_only=True)``: no pickled code runs) or
    a featurekit checkpoint of a fine-tuned timm model.

A state_dict goes through timm's own loading (``pretrained_cfg_overlay``
with the state_dict: the model's checkpoint filter, e.g. position-embedding
resampling for another ``--size``), strictly: every key must fit.

Each resolution is a :class:`~featurekit.models.weights.ModelRef` (cheap: the
model is built by ``load()``, so a cache hit builds nothing) recording the
weights tag, the file's sha256 and the preprocessing of
:func:`featurekit.models.timm_models.preprocessing`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Collection
from urllib.parse import urlparse

import torch
from torch import nn

from featurekit.checkpoint import is_checkpoint, load_weights_file
from featurekit.errors import WeightsError
from featurekit.models.architecture import apply_arch
from featurekit.models.building import quiet_meta_copies, skip_init
from featurekit.models.modelspec import TIMM_PREFIX, ModelSpec
from featurekit.models.preprocessing import Preprocessing
from featurekit.models.timm_models import (
    create,
    import_timm,
    layer_table,
    preprocessing,
    pretrained_cfg,
    pretrained_tags,
    split_name,
    table_for_model,
    timm_name,
    timm_spec,
)
from featurekit.models.weights import ModelRef, file_sha256
from featurekit.specs import Weights

HUB_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class TimmModelRef(ModelRef):
    """A :class:`ModelRef` whose random initialisation also depends on timm's version."""

    @property
    def identity(self) -> dict:
        ident = super().identity
        if "init" in ident:
            ident["init"] += f"+timm-{import_timm().__version__}"
        return ident


def read_state_file(path: str | os.PathLike) -> dict:
    """A state_dict from ``.safetensors`` (safetensors) or a torch file (``weights_only``: no pickled code)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return load_weights_file(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception) and OSError
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc


def _hub_online() -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:  # no name resolution = offline: fail at once instead of after the hub client's retries
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
        return True
    except OSError:
        return False


def _download(repo: str, filename: str, revision: str | None, cache: Path) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=cache))
    except EntryNotFoundError:
        return None


def pretrained_file(name: str) -> Path:
    """The file of a timm model's pretrained weights in the hub cache, downloaded when missing and online.

    Raises
    ------
    WeightsError
        No pretrained weights for the tag, or the file is not cached and the hub is unreachable
        (the message names the file and the folder to put it in).
    """
    cfg = pretrained_cfg(name)
    label = f"{TIMM_PREFIX}{timm_name(name)} (timm tag {cfg.get('tag') or '?'})"
    hub_id, url = cfg.get("hf_hub_id"), cfg.get("url")
    if hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        files = list(HUB_FILES)
        if cfg.get("hf_hub_filename"):
            own = cfg["hf_hub_filename"]
            files = ([own.replace("pytorch_model.bin", "model.safetensors")] if own.endswith(".bin") else []) + [own]
        cache = Path(constants.HF_HUB_CACHE)
        for filename in files:
            hit = try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision or None)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
        folder = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "<revision>"
        if _hub_online():
            try:
                for filename in files:
                    got = _download(repo, filename, revision or None, cache)
                    if got is not None:
                        return got
            except Exception as exc:  # connection, authentication, disk errors of the hub client
                raise WeightsError(f"could not download the weights of {label} from {repo}: {exc}") from exc
        raise WeightsError(
            f"pretrained weights of {label} are not available offline: expected {files[0]} of the Hugging Face "
            f"repository {repo} in {folder} (the hub cache; HF_HUB_CACHE or HF_HOME point elsewhere). Fetch it "
            f"on a machine with network (huggingface-cli download {repo} {files[0]}) and copy the cache folder, "
            f"or pass the file itself with --weights PATH, or use --weights none.")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if path.is_file():
            return path
        if path.suffix not in (".pth", ".pt", ".bin", ".safetensors"):
            raise WeightsError(f"{label}'s weights are a {path.suffix} file ({url}), which featurekit does not "
                               "read; convert it to .safetensors and pass it with --weights PATH")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=True)
            return path
        except OSError as exc:
            raise WeightsError(
                f"pretrained weights of {label} are not available offline: expected the file {path.name} in "
                f"{path.parent} (set TORCH_HOME to use another cache folder). Download {url} and put it "
                f"there, or use --weights PATH / --weights none. ({type(exc).__name__}: {exc})") from exc
    raise WeightsError(f"timm has no pretrained weights for {label}; use --weights none or --weights PATH")


def resolve_model(name: str, weights="imagenet", *, seed: int | None = None, size: int | None = None,
                  mode: str = "crop") -> ModelRef:
    """Resolve a timm model and its weights into a :class:`ModelRef` (the model is built by ``load()``).

    ``weights`` is a :class:`~featurekit.specs.Weights` or its text. Pretrained
    weights are recorded as ``imagenet:<tag>`` -- featurekit's word for "the
    model's pretrained weights", the tag saying what they were trained on --
    so ``Weights.imagenet()`` matches them. ``imagenet:TAG`` must name the tag
    of the model name: the tag belongs to the name, as timm spells it.
    """
    spec = timm_spec(name)
    w = Weights.parse(weights, seed=seed)
    if w.source == "none":
        pre = preprocessing(spec.name, size, mode)

        def random_builder():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(w.seed))
                return create(spec.name, size=pre.size)

        return TimmModelRef(spec, layer_table(spec.name, pre.size), pre, w.tag, None, _builder=random_builder)
    if w.source == "imagenet":
        tag = pretrained_cfg(spec.name).get("tag")
        if w.variant is not None and w.variant.lower() != str(tag).lower():
            arch, _ = split_name(spec.name)
            raise WeightsError(f"{spec.name} has the pretrained tag {tag!r}, not {w.variant!r}: a timm model's "
                               f"weights are named by the tag in the model name, {TIMM_PREFIX}{arch}.TAG, with "
                               f"--weights imagenet (tags of {arch}: {', '.join(pretrained_tags(arch)) or 'none'})")
        path = pretrained_file(spec.name)
        pre = preprocessing(spec.name, size, mode)

        def pretrained_builder():
            with skip_init():  # the strict load below sets every parameter
                return create(spec.name, size=pre.size, state_dict=read_state_file(path), source=path)

        return TimmModelRef(spec, layer_table(spec.name, pre.size), pre, f"imagenet:{tag}", file_sha256(path),
                            str(path), _builder=pretrained_builder)
    return _resolve_file(spec, w.file_path, size, mode)


def resolve_weights(name: str, weights: Weights, *, size: int | None, mode: str,
                    recorded: Collection[tuple[str, str]] = ()) -> ModelRef:
    """:func:`resolve_model` as a source of :mod:`featurekit.models.sources` (``weights`` parsed).

    ``recorded`` (hashes of features computed before) is not used: a timm
    pretrained file is found in the hub cache, or downloaded, by its tag.
    """
    return resolve_model(name, weights, size=size, mode=mode)


def _resolve_file(spec: ModelSpec, path: Path, size, mode) -> ModelRef:
    obj = read_state_file(path)
    if is_checkpoint(obj):
        arch = obj["arch"]
        if str(arch.get("name", spec.name)).lower() != spec.name:
            raise WeightsError(f"checkpoint {path} is a {arch.get('name')} model, not {spec.name}")
        meta = obj["meta"]
        pre = Preprocessing.from_dict(meta["preprocessing"]) if "preprocessing" in meta else \
            preprocessing(spec.name, size, mode)
        if size is not None and int(size) != pre.size:
            if pretrained_cfg(spec.name).get("fixed_input_size", False):
                raise WeightsError(f"checkpoint {path} holds a {spec.name} built for {pre.size} px input; "
                                   f"use --size {pre.size}")
            pre = Preprocessing(int(size), round(int(size) * pre.resize / pre.size), pre.mean, pre.std,
                                pre.mode, pre.interpolation, pre.channels)
        built_size = int(meta.get("preprocessing", {}).get("size", pre.size))

        def skeleton_on(device):
            with torch.device(device):
                return apply_arch(create(spec.name, size=built_size, num_classes=0), arch)

        def checkpoint_builder():
            with skip_init():
                model = skeleton_on("cpu")
            _load_strict(model, obj["state_dict"], path)
            return model

        with quiet_meta_copies():
            skeleton = skeleton_on("meta")
            _load_strict(skeleton, obj["state_dict"], path)
        table = table_for_model(skeleton, spec, pre.size, pre.channels)
        return TimmModelRef(spec, table, pre, f"file:{path.name}", file_sha256(path), str(path.resolve()), meta,
                            arch=dict(arch), _builder=checkpoint_builder)
    state = obj.get("state_dict", obj.get("model", obj)) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state_dict of tensors")
    pre = preprocessing(spec.name, size, mode)
    with quiet_meta_copies(), torch.device("meta"):  # the file fits? checked before anything is computed
        create(spec.name, size=pre.size, state_dict=dict(state), source=path)

    def file_builder():
        with skip_init():
            return create(spec.name, size=pre.size, state_dict=dict(state), source=path)

    return TimmModelRef(spec, layer_table(spec.name, pre.size), pre, f"file:{path.name}", file_sha256(path),
                        str(path.resolve()), _builder=file_builder)


def _load_strict(model: nn.Module, state: dict, path: Path) -> None:
    try:
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit its architecture: {str(exc).splitlines()[0][:400]}") from exc
