"""The device resolver: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` -> a validated device name.

Also what a device offers a run: its free memory (:func:`available_memory`),
the mixed precision it runs (:func:`resolve_precision`), where the images are
resized and normalised (:func:`resolve_preprocess`), the check of a
DataLoader worker count (:func:`check_workers`), and the resolution of a
parallel job count (:func:`resolve_jobs`) against the cores this process may
use (:func:`cpu_cores`).

Extraction, fine-tuning and the handcrafted GPU paths all choose their device
here. ``auto`` is CUDA when torch sees a GPU, else the CPU; on a machine
without an NVIDIA driver it answers ``cpu`` without importing torch, so a run
with nothing to compute stays fast.
"""

from __future__ import annotations

import os
import re
from typing import Any

from featurekit.errors import DataError, ResourceError

__all__ = ["resolve_device", "torch_device", "gpu_present", "check_workers", "cpu_cores", "resolve_jobs",
           "available_memory",
           "AMP_CHOICES", "amp_choice", "resolve_precision", "PREPROCESS_CHOICES", "resolve_preprocess"]

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


#: ``amp`` choices: auto = float16 autocast on CUDA, float32 elsewhere (the default)
AMP_CHOICES = ("auto", "fp16", "bf16", "none")
_PRECISION = {"fp16": "amp-fp16", "bf16": "amp-bf16", "none": "float32"}


def amp_choice(amp: Any = True) -> str:
    """``amp`` as one of :data:`AMP_CHOICES`: ``True`` is ``"auto"``, ``False``/``None`` is ``"none"``.

    Raises
    ------
    DataError
        Anything else (``"fp8"``).
    """
    if amp is True or amp is False or amp is None:
        return "auto" if amp else "none"
    text = str(amp).strip().lower()
    text = {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "off": "none", "float32": "none"}.get(text, text)
    if text not in AMP_CHOICES:
        raise DataError(f"unknown amp {amp!r}: use {', '.join(AMP_CHOICES)}")
    return text


def resolve_precision(amp: Any, device: Any) -> str:
    """The precision a forward pass runs in on ``device``: ``"float32"``, ``"amp-fp16"`` or ``"amp-bf16"``.

    ``auto`` (``amp=True``) is float16 autocast on CUDA and float32 elsewhere;
    an explicit ``fp16``/``bf16`` is honoured on CPU too (torch autocasts there;
    bfloat16 is fast on CPUs with AVX-512 BF16/AMX, slow but exact to its
    precision elsewhere). ``bf16`` on a GPU without bfloat16 (before Ampere) is
    refused rather than silently run in another precision.

    Raises
    ------
    ResourceError
        bf16 on a CUDA device that does not support it.
    """
    choice = amp_choice(amp)
    name = resolve_device(device)
    if choice == "auto":
        return "amp-fp16" if name.startswith("cuda") else "float32"
    if choice == "bf16" and name.startswith("cuda"):
        import torch

        if not torch.cuda.is_bf16_supported(including_emulation=False):
            raise ResourceError(f"{torch.cuda.get_device_name(torch.device(name))} has no bfloat16: "
                                f"use --amp fp16 (or none)")
    return _PRECISION[choice]


#: where resize / normalisation run: host (DataLoader workers), device (the model's), auto (device on CUDA)
PREPROCESS_CHOICES = ("host", "device", "auto")


def resolve_preprocess(preprocess: Any, device: Any) -> str:
    """``"host"`` or ``"device"`` (:mod:`featurekit.extraction.device_preprocess`): ``auto`` is the device
    on CUDA, the host on the CPU.

    Raises
    ------
    DataError
        An unknown choice.
    """
    text = str(preprocess).strip().lower()
    if text not in PREPROCESS_CHOICES:
        raise DataError(f"unknown preprocess {preprocess!r}: use {', '.join(PREPROCESS_CHOICES)}")
    if text == "auto":
        return "device" if resolve_device(device).startswith("cuda") else "host"
    return text


def check_workers(num_workers) -> int:
    """A DataLoader worker count: an integer >= 0 (0 = decode in the main process).

    Raises
    ------
    ResourceError
    """
    try:
        n = int(num_workers)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or n != num_workers:
        raise ResourceError(f"the number of workers must be an integer >= 0 (0 = no worker processes), "
                            f"got {num_workers!r}")
    return n


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def resolve_jobs(n_jobs: Any, what: str = "n_jobs") -> int:
    """A parallel job count, as scikit-learn reads ``n_jobs``, capped at the cores there are.

    ``None`` is 1; ``N >= 1`` is N; ``-1`` is every core, ``-2`` all but one, and
    so on; ``0`` is an error, as in scikit-learn. More jobs than cores
    (:func:`cpu_cores`) only adds processes that wait for a core -- each with its
    own copy of the data -- so the count is capped there, with a warning saying
    so. ``what`` names the setting in messages (``"--jobs"``).

    Raises
    ------
    ResourceError
        Not an integer, 0, or fewer than 1 job once negative counts are read.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        try:
            n = int(str(n_jobs).strip())
        except ValueError:
            raise ResourceError(f"{what} must be an integer (-1 = every core), got {n_jobs!r}") from None
    else:
        n = n_jobs
    cores = cpu_cores()
    if n == 0:
        raise ResourceError(f"{what}=0 runs nothing: give a number of parallel jobs >= 1, or -1 for every core "
                            f"({cores} here), as scikit-learn's n_jobs")
    jobs = n if n > 0 else cores + 1 + n
    if jobs < 1:
        raise ResourceError(f"{what}={n} leaves no core to run on ({cores} here; -1 = every core)")
    if jobs > cores:
        import warnings

        warnings.warn(f"{what}={n}: this machine has {cores} core(s) for this process; running {cores} "
                      "parallel jobs (more would only wait for a core, each holding its own copy of the data)",
                      UserWarning, stacklevel=2)
        jobs = cores
    return jobs


def available_memory(device: Any = "cpu") -> int | None:
    """Free memory of a device in bytes (CUDA: free device memory; CPU: ``MemAvailable``), None if unknown."""
    name = resolve_device(device)
    if name.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(name))[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None
