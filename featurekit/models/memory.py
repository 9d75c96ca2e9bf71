"""How much memory a batch of a model takes, checked before any work.

A ``--size`` of 20000 px, or a batch too large for the machine, would
otherwise fail halfway through with an allocator traceback -- or be killed by
the kernel without a word. :func:`check_memory` estimates the activations of
the batch from the model's layer shapes, traced on the ``meta`` device (no
memory, no compute), and refuses a run that cannot fit in the device's free
memory (:func:`featurekit.devices.available_memory`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from featurekit.devices import available_memory
from featurekit.errors import ResourceError

__all__ = ["activation_bytes", "check_memory"]


@functools.lru_cache(maxsize=32)
def activation_bytes(model: str, size: int, channels: int = 3, training: bool = False,
                     small_input: bool = False) -> int:
    """Bytes one image takes in a float32 pass of a registry model at ``size`` x ``size``.

    Inference (``training=False``): the input plus the largest module's input
    and output, the peak of a no-grad forward that keeps nothing else.
    Training: every leaf module's output twice (kept for the backward pass, and
    its gradient). An estimate from the output shapes -- a lower bound: kernel
    workspaces, weights and optimiser state come on top. ``small_input``
    traces the small-input stem of fine-tuning.
    """
    from featurekit.models.architecture import make_small_input
    from featurekit.models.building import trace_shapes
    from featurekit.models.registry import build

    with torch.device("meta"):
        # built for its input size: a fixed-size model (a timm ViT's patch embedding) needs it
        net = build(model, weights=None, size=int(size))
        if small_input:
            make_small_input(net, int(channels))
    leaves = [name for name, m in net.named_modules() if name and next(m.children(), None) is None]
    shapes = trace_shapes(net, None if not training else leaves, int(size), int(channels))
    sizes = [math.prod(shape) for shape in shapes.values() if shape]
    first = int(channels) * int(size) ** 2
    if training:
        return 4 * (first + 2 * sum(sizes))
    return 4 * (first + 2 * max(sizes, default=first))


def check_memory(model: str, size: int, batch_size: int, device: Any = "cpu", *, channels: int = 3,
                 training: bool = False, small_input: bool = False, extra: int = 0) -> int:
    """Refuse, before any work, a batch that cannot fit in ``device``'s free memory.

    The estimate is :func:`activation_bytes` x ``batch_size`` + ``extra``
    bytes (e.g. images kept in memory). Returns it.

    Raises
    ------
    ResourceError
        Naming the model, size, batch and memory, and what to lower.
    """
    need = activation_bytes(model, int(size), int(channels), bool(training), bool(small_input)) * int(batch_size) \
        + int(extra)
    free = available_memory(device)
    if free is not None and need > free:
        raise ResourceError(
            f"{'training' if training else 'running'} {model} on batches of {batch_size} image(s) of "
            f"{size}x{size} px needs about {need / 2**30:.1f} GB, more than the {free / 2**30:.1f} GB "
            f"free on {device}: lower --size or --batch-size")
    return need
