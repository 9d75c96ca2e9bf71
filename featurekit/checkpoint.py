"""featurekit checkpoint files.

A checkpoint is a ``torch.save`` of a plain dict that ``torch.load(...,
weights_only=True)`` can read -- tensors, numbers, strings, lists and dicts
only, so loading one never executes pickled code::

    {"format": "featurekit-checkpoint", "version": 1,
     "arch": {...architecture dict, see featurekit.models.architecture...},
     "state_dict": {...},
     "meta": {"preprocessing": {...}, "class_names": [...], "layer_table": [...],
              "training": {...}, "metrics": {...}, "lineage": [...], ...}}
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from featurekit.errors import WeightsError
from featurekit.io import atomic_write_bytes, refuse_existing

FORMAT = "featurekit-checkpoint"
VERSION = 1


def is_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_weights_file(path: str | os.PathLike, *, mmap: bool = False) -> dict:
    """Read a weights or checkpoint file: every featurekit path that reads one reads it here.

    ``torch.load(path, map_location="cpu", weights_only=True)``: only tensors,
    numbers, strings and plain containers are unpickled, so a file can never run
    code (a crafted ``__reduce__`` is refused, never called). ImageNet files of
    the torch hub cache, ``--weights FILE``, featurekit checkpoints (``predict``,
    ``finetune --weights``, pipelines) all come through here, and a featurekit
    checkpoint is used only when its weights hash to the ``state_sha256`` it
    recorded.

    Parameters
    ----------
    path : path
    mmap : bool
        Map the tensors instead of reading them (zip-format files; a legacy
        file is read normally, still with ``weights_only``).

    Raises
    ------
    WeightsError
        Missing, corrupt or truncated file, one holding other objects than
        tensors and plain data (named with the offending global), or one that
        is not a dict -- the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")  # legacy files: harmless
            obj = torch.load(path, map_location="cpu", weights_only=True,
                             mmap=bool(mmap) and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\n|$)", str(exc))
        raise WeightsError(
            f"{path} holds Python objects other than tensors and plain data"
            f"{f' ({found.group(1).strip()})' if found else ''}; featurekit never unpickles those, "
            "because unpickling can run code hidden in the file. If the file is yours, load it where you "
            "trust it and re-save the weights alone: torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes the safe unpickler raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} is not a loadable weights file (corrupt or truncated): {first}") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state_dict or featurekit checkpoint")
    if is_checkpoint(obj):
        _verify_recorded(obj, path)
    return obj


def state_dict_sha256(state_dict: dict) -> str:
    """The sha256 of a state_dict: each key, then its tensor's bytes, in order (what checkpoints record)."""
    h = hashlib.sha256()
    for key, value in state_dict.items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _verify_recorded(obj: dict, path: Path) -> None:
    """A featurekit checkpoint's weights must hash to the ``state_sha256`` it recorded (meta and last lineage stage)."""
    meta = obj.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    lineage = meta.get("lineage")
    lineage = lineage if isinstance(lineage, list) else []
    last = lineage[-1] if lineage and isinstance(lineage[-1], dict) else {}
    recorded = {v for v in (meta.get("state_sha256"), last.get("state_sha256")) if v is not None}
    if not recorded:
        return
    state = obj.get("state_dict")
    try:
        actual = state_dict_sha256(state) if isinstance(state, dict) else None
    except (AttributeError, TypeError, RuntimeError) as exc:
        raise WeightsError(f"featurekit checkpoint {path}: its state_dict cannot be read ({exc})") from None
    if recorded != {actual}:
        raise WeightsError(
            f"featurekit checkpoint {path}: its weights do not match the state_sha256 it recorded "
            f"({sorted(recorded)[0][:12]}..., the weights hash to {str(actual)[:12]}...): the file was changed "
            "or damaged after it was written; it is not used")


def load_checkpoint(path: str | os.PathLike) -> dict:
    obj = load_weights_file(path)
    if not is_checkpoint(obj):
        raise WeightsError(f"{path} is not a featurekit checkpoint (no 'format: {FORMAT}' entry)")
    if obj.get("version", 0) > VERSION:
        raise WeightsError(f"{path} was written by a newer featurekit (checkpoint version {obj['version']})")
    for key in ("arch", "state_dict", "meta"):
        if key not in obj:
            raise WeightsError(f"featurekit checkpoint {path} lacks its {key!r} entry")
    return obj


def plain(obj, where: str = "meta"):
    """``obj`` as weights_only-safe data: dicts with str keys, lists, str, int, float, bool, None, tensors.

    Tuples become lists, numpy scalars and arrays Python numbers and lists,
    paths strings; anything else raises :class:`WeightsError` (naming where it
    is) rather than producing a checkpoint that ``weights_only`` loading refuses.
    """
    import numpy as np

    if obj is None:
        return None
    # exact builtin types: subclasses (numpy.float64, torch's TorchVersion str) would pickle as globals
    if isinstance(obj, bool) or isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise WeightsError(f"checkpoint {where} has a non-string key {k!r}")
            out[k] = plain(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise WeightsError(f"checkpoint {where} holds a {type(obj).__name__}, which weights_only loading refuses")


def save_checkpoint(path: str | os.PathLike, arch: dict, state_dict: dict, meta: dict, *,
                    overwrite: bool = False) -> Path:
    """Write a checkpoint atomically (a crash or a full disk never leaves a half-written file).

    ``arch`` and ``meta`` are converted with :func:`plain` so the file always
    loads with ``torch.load(weights_only=True)``. With ``overwrite=False`` an
    existing ``path`` is an :class:`~featurekit.errors.OutputExistsError`.
    The checkpoint is serialised in memory and written by
    :func:`~featurekit.io.atomic_write_bytes`: ``torch.save`` writing a file
    itself turns a full disk into a bare ``RuntimeError`` (``unexpected pos``),
    while a plain write gives the :class:`~featurekit.errors.DiskFullError`
    naming the folder and the size, with any earlier file at ``path`` intact.
    """
    path = Path(path)
    refuse_existing(path, overwrite, what="checkpoint", kind="file")
    payload = {"format": FORMAT, "version": VERSION, "arch": plain(dict(arch), "arch"),
               "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
               "meta": plain(dict(meta), "meta")}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    del payload
    return atomic_write_bytes(path, buffer.getbuffer())


def layer_table_records(table) -> list[dict]:
    """A :class:`~featurekit.models.layers.LayerTable` as plain records for checkpoint meta."""
    return [{"index": int(layer.index), "name": layer.name, "module": layer.module,
             "shape": [int(s) for s in layer.shape]} for layer in table]
