"""Freezing parts of a network by the layer names and indices of extraction.

Two ways to say what is frozen (both may be combined):

* ``until``: a layer of the model's :class:`~featurekit.models.layers.LayerTable`
  (name or index, e.g. ``block4_pool``, ``conv3_block2_out``, ``features.6``,
  ``7``). Every parameter of every module that *runs* up to and including that
  layer's output in the forward pass is frozen -- found by one traced forward,
  so modules outside the table (a ResNet's ``conv1``/``bn1`` stem, the
  ``downsample`` branch of a block) are frozen when they run before it, and
  so are the parameters held directly by the modules enclosing the layer
  (a ViT's class token and position embedding).
* ``layers``: selectors as in ``featurekit extract --layers`` (``conv2_*,conv3_*``,
  ``8-17``, ``features.3``): every parameter inside the modules of those layers.

BatchNorm layers inside the frozen part are kept in eval mode during
training (:func:`set_train_mode`): their running mean and variance do not
move, so a frozen backbone computes exactly what it computed before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from featurekit.errors import LayerError
from featurekit.models.building import trace_shapes
from featurekit.models.layers import INPUT, LayerTable

_BN = (nn.modules.batchnorm._BatchNorm,)


@dataclass
class Frozen:
    """What :func:`freeze` froze."""

    modules: list = field(default_factory=list)      # module paths whose own parameters/buffers are frozen
    parameters: list = field(default_factory=list)   # parameter names frozen
    batchnorms: list = field(default_factory=list)   # BatchNorm module paths kept in eval mode
    layers: list = field(default_factory=list)       # table layer names the request resolved to

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    def to_dict(self) -> dict:
        return {"layers": list(self.layers), "n_modules": len(self.modules),
                "n_parameter_tensors": len(self.parameters), "batchnorm_eval": list(self.batchnorms)}


def _owns_state(module: nn.Module) -> bool:
    return bool(list(module.parameters(recurse=False)) or list(module.buffers(recurse=False)))


def execution_order(model: nn.Module, size: int, channels: int = 3) -> list[str]:
    """Paths of the state-holding modules (and of every module) in the order their forward *finishes*.

    One forward pass of a zero image in eval mode without gradients; the
    model's training flag is restored. Modules that do not run are absent.
    """
    return list(trace_shapes(model, None, size, channels))


def resolve_frozen_modules(model: nn.Module, table: LayerTable, until: str | int | None = None,
                           layers: str | None = None) -> tuple[list[str], list[str]]:
    """Module paths (owning parameters or buffers) to freeze, and the layer names requested.

    Raises
    ------
    LayerError
        Unknown layer name/index or a selector matching nothing (the message
        lists the valid layers of the model).
    """
    named = dict(model.named_modules())
    chosen: dict[str, None] = {}
    names: list[str] = []
    if until is not None and str(until).strip():
        layer = table.get(str(until).strip())
        names.append(layer.name)
        if layer.name != INPUT:
            channels = table[0].shape[0] if table[0].shape else 3
            order = execution_order(model, table.input_size, channels)
            if layer.module not in order:
                raise LayerError(f"layer {layer.name!r} ({layer.module}) of {table.model} does not run in forward")
            stop = order.index(layer.module)
            # modules finishing before the layer's module, and the layer's module with its children
            for path in order[: stop + 1]:
                if _owns_state(named[path]):
                    chosen[path] = None
            for path, module in named[layer.module].named_modules(prefix=layer.module):
                if _owns_state(module):
                    chosen[path] = None
            # modules enclosing the layer hold state used before it (a ViT's class token and position
            # embedding on the model itself, torchvision's encoder.pos_embedding): frozen too
            parts = layer.module.split(".")
            for path in (".".join(parts[:k]) for k in range(len(parts))):
                if list(named[path].parameters(recurse=False)):
                    chosen[path] = None
    if layers is not None and str(layers).strip():
        for layer in table.select(str(layers)):
            names.append(layer.name)
            if layer.name == INPUT:
                continue
            for path, module in named[layer.module].named_modules(prefix=layer.module):
                if _owns_state(module):
                    chosen[path] = None
    return [p for p in named if p in chosen], list(dict.fromkeys(names))


def freeze(model: nn.Module, table: LayerTable, until: str | int | None = None,
           layers: str | None = None) -> Frozen:
    """Freeze (``requires_grad=False``) the part of ``model`` named by ``until`` and/or ``layers``.

    Returns a :class:`Frozen` record; pass it to :func:`set_train_mode` at
    the start of every training epoch.
    """
    modules, names = resolve_frozen_modules(model, table, until, layers)
    named = dict(model.named_modules())
    params: list[str] = []
    bns: list[str] = []
    for path in modules:
        module = named[path]
        for pname, p in module.named_parameters(prefix=path, recurse=False):
            p.requires_grad_(False)
            params.append(pname)
        if isinstance(module, _BN):
            bns.append(path)
    if (until or layers) and not params and not bns and any(n != INPUT for n in names):
        raise LayerError(f"layer(s) {', '.join(names)} of {table.model} hold no parameters to freeze; "
                         "use freeze_until to freeze everything up to a layer")
    return Frozen(modules, params, bns, names)


def set_train_mode(model: nn.Module, frozen: Frozen | None) -> nn.Module:
    """``model.train()`` with the BatchNorm layers of the frozen part left in eval mode."""
    model.train()
    if frozen is not None:
        named = dict(model.named_modules())
        for path in frozen.batchnorms:
            named[path].eval()
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
