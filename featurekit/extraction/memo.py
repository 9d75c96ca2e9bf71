"""What a CNN request resolved to last time, so a fully cached extraction needs no torch.

Resolving ``vgg16:8-17`` with ImageNet weights into cache entries needs the
model's layer table, the weights file's sha256 and the preprocessing bound to
the weights -- that is, torch and torchvision (seconds to import). Once a
request has been resolved, its answer is kept beside the cache file in
``<cache>.resolved.json``: the layer keys of every spec and the entry ids. A
handcrafted family named by a spec (``glcm:bin_count=64``) is remembered the
same way, so a fully cached run does not import scikit-learn either.

The memo is keyed by everything the answer depends on: the model and
selectors as written, the weights choice (for a file: its real path, size and
modification time; for ImageNet weights: the torch hub folder and the files in
it, and for a timm model its Hugging Face hub cache files), input size, resize
mode, pooling, dtype, the device asked for with whether an NVIDIA driver is
present (AMP entries differ from float32 ones), and the versions of
featurekit, torch, torchvision and timm. A memo answer is used
only when the cache holds every entry it names; anything else -- another
weights file, a changed file, a new library version -- misses and resolves the
request in full. The memo is an optimisation: losing it, or a read-only
folder where it cannot be written, only costs the import.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from featurekit import __version__
from featurekit.cache.layout import SIDECARS
from featurekit.devices import amp_choice, gpu_present
from featurekit.io import atomic_write_text, canonical_json
from featurekit.specs import Weights

__all__ = ["ResolutionMemo", "request_key", "hand_key", "torch_hub_dir"]

MEMO_FORMAT = 1


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch (``$TORCH_HOME/hub`` or the XDG default)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def hf_hub_dir() -> Path:
    """The Hugging Face hub cache (where timm keeps pretrained weights), without importing it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expanduser(home)) / "hub"


def _weights_state(w: Weights, model: str = "") -> Any:
    if w.source == "file":
        return _stat(w.file_path.resolve())
    if w.source == "imagenet":
        folder = torch_hub_dir() / "checkpoints"
        files = sorted(folder.glob("*")) if folder.is_dir() else []
        state = [str(folder), [_stat(p) for p in files]]
        if model.startswith("timm-"):  # timm's pretrained files: the hub cache folders of the architecture
            arch = model[len("timm-"):].partition(".")[0]
            hub = sorted(hf_hub_dir().glob(f"models--timm--{arch}*/snapshots/*/*"))
            state.append([_stat(p) for p in hub])
        return state
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def request_key(model: str, selectors: list[str], weights: Weights, *, size, mode: str, pool: str,
                dtype: str, device: str, amp) -> str:
    """The canonical text of one model's request (what its resolution depends on)."""
    return canonical_json({
        "model": model, "selectors": list(selectors), "weights": weights.tag,
        "weights_state": _weights_state(weights, model), "size": size, "mode": mode, "pool": pool, "dtype": dtype,
        "device": str(device), "amp": _amp_key(amp), "gpu": gpu_present(),
        "versions": [__version__, _version("torch"), _version("torchvision"), _version("timm")],
    })


def _amp_key(amp):
    """``amp`` in a request key: ``auto`` / ``none`` as True / False (the keys existing memos hold), else the choice."""
    choice = amp_choice(amp)
    return {"auto": True, "none": False}.get(choice, choice)


def hand_key(spec, dtype: str) -> str:
    """The canonical text of a handcrafted request (``glcm:bin_count=64``): its entry depends on
    the spec, the dtype and the transformer's defaults, i.e. on the featurekit version."""
    return canonical_json({"handcrafted": str(spec), "dtype": dtype,
                           "versions": [__version__, _version("scikit-image")]})


class ResolutionMemo:
    """``<cache>.resolved.json``: request key -> ``{"layer_keys": {spec: [keys]}, "entries": [[key, id]]}``."""

    def __init__(self, cache_path: str | os.PathLike):
        cache_path = Path(cache_path)
        self.path = cache_path.with_name(cache_path.name + SIDECARS[0])

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != MEMO_FORMAT:
            return {}
        requests = data.get("requests")
        return requests if isinstance(requests, dict) else {}

    def lookup(self, key: str) -> dict | None:
        """The recorded answer of a request, or None."""
        hit = self._read().get(key)
        if not isinstance(hit, dict) or not isinstance(hit.get("entries"), list):
            return None
        return hit

    def record(self, answers: dict[str, dict]) -> None:
        """Add answers (request key -> answer); a folder that cannot be written is skipped."""
        requests = self._read()
        requests.update(answers)
        try:
            atomic_write_text(self.path, json.dumps({"format": MEMO_FORMAT, "requests": requests}, indent=1))
        except OSError:
            pass  # the memo only saves an import; a read-only cache folder is fine
