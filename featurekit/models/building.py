"""Helpers for building and inspecting a model, shared by every model source.

A base module: it imports nothing else of :mod:`featurekit.models`.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from featurekit.errors import LayerError

_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
                   "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                   "orthogonal_")


@contextlib.contextmanager
def skip_init():
    """Make ``torch.nn.init`` functions no-ops while building a model whose every
    parameter is then overwritten by a strict ``load_state_dict`` (VGG16's random
    initialisation alone takes seconds on a CPU)."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    try:
        for name in saved:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


@contextlib.contextmanager
def quiet_meta_copies():
    """Silence torch's per-tensor "copying from a non-meta parameter ... is a no-op" warnings,
    which checking a state_dict against a ``meta``-device skeleton emits (no-ops, not problems)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        yield


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """Path and module of the last ``nn.Linear`` of a model (a torchvision model's classifier)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise LayerError(f"{type(model).__name__} has no linear classifier layer to replace")
    return found[-1]


def trace_shapes(model: nn.Module, modules: list[str] | None, size: int, channels: int = 3) -> dict[str, tuple | None]:
    """Output shapes (without batch) of modules in one eval-mode forward, in the order they finish.

    ``modules=None`` traces every submodule. Runs on the ``meta`` device when
    the model is there (no compute), else on a single zero image; the model's
    training flag is restored. Modules that do not run in eval-mode
    ``forward`` (e.g. Inception's auxiliary head) are absent; a module whose
    output is not a tensor maps to ``None``. A module run twice keeps its first call.
    """
    seen: dict[str, tuple | None] = {}
    handles = []
    lookup = dict(model.named_modules())
    for path in (modules if modules is not None else [p for p in lookup if p]):
        def hook(_m, _inp, out, path=path):
            if path not in seen:
                seen[path] = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        handles.append(lookup[path].register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen
