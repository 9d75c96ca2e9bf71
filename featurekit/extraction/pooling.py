"""Pooling of (N, C, H, W) activation maps to feature vectors.

=========  ===============================================================
``gap``    global average pooling: mean over H, W -> C values (default)
``gmp``    global max pooling -> C values
``gapgmp`` both, concatenated [gap, gmp] -> 2C values
``spp``    spatial pyramid max pooling (He et al., ECCV 2014) on 1x1, 2x2
           and 4x4 grids (adaptive bins), concatenated level by level,
           each level channel-major -> 21C values
``none``   the full map, flattened C-major (C*H*W values; large)
=========  ===============================================================
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from featurekit.errors import LayerError

POOLS = ("gap", "gmp", "gapgmp", "spp", "none")
SPP_LEVELS = (1, 2, 4)
# Above this many values per image a full-map cache gets large; warn the user.
LARGE_DIM = 100_000


def check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise LayerError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}")
    return pool


def pooled_dim(shape: tuple[int, ...], pool: str) -> int:
    """Feature dimension of a ``(C, H, W)`` map after pooling."""
    check_pool(pool)
    channels = int(shape[0])
    return {
        "gap": channels,
        "gmp": channels,
        "gapgmp": 2 * channels,
        "spp": channels * sum(level * level for level in SPP_LEVELS),
        "none": int(math.prod(shape)),
    }[pool]


def pool_map(x: torch.Tensor, pool: str) -> torch.Tensor:
    """Pool an ``(N, C, H, W)`` tensor to ``(N, D)`` (float32, detached)."""
    x = x.detach()
    if x.dim() == 2:  # already a vector (e.g. an avgpool+flatten output)
        return x.float()
    if pool == "gap":
        out = x.mean(dim=(2, 3))
    elif pool == "gmp":
        out = x.amax(dim=(2, 3))
    elif pool == "gapgmp":
        out = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
    elif pool == "spp":
        out = torch.cat([F.adaptive_max_pool2d(x, level).flatten(1) for level in SPP_LEVELS], dim=1)
    elif pool == "none":
        out = x.flatten(1).clone()
    else:
        check_pool(pool)
    return out.float()
