"""The one device resolver: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` -> a validated device name.

Extraction, fine-tuning and the handcrafted GPU paths all choose their device
here. ``auto`` is CUDA when torch sees a GPU, else the CPU; on a machine
without an NVIDIA driver it answers ``cpu`` without importing torch, so a run
with nothing to compute stays fast.
"""

from __future__ import annotations

import os
import re
from typing import Any

from featurekit.errors import DataError

__all__ = ["resolve_device", "torch_device", "gpu_present"]

_CUDA = re.compile(r"cuda(?::(\d+))?")


def gpu_present() -> bool:
    """Whether an NVIDIA driver is loaded (a cheap check; torch still decides if CUDA works)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def resolve_device(device: Any = "auto") -> str:
    """A validated device name: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device

    Raises
    ------
    DataError
        An unknown name (``"banana"``), or CUDA asked for where torch sees no
        CUDA device (or not that many).
    """
    text = "auto" if device is None else str(device).strip().lower()
    if text == "auto":
        if not gpu_present():
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    m = _CUDA.fullmatch(text)
    if m is None:
        raise DataError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise DataError(f"device {text!r} was asked for, but torch sees no CUDA device (use --device cpu or auto)")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise DataError(f"device {text!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return text


def torch_device(device: Any = "auto"):
    """:func:`resolve_device` as a ``torch.device``."""
    import torch

    return torch.device(resolve_device(device))
