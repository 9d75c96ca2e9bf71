"""Pooling of layer outputs -- feature maps and token sequences -- to feature vectors.

Feature maps, ``(N, C, H, W)`` (or channels-last ``(N, H, W, C)``, as Swin
blocks output them, which is permuted first):

=========  ===============================================================
``gap``    global average pooling: mean over H, W -> C values (default)
``gmp``    global max pooling -> C values
``gapgmp`` both, concatenated [gap, gmp] -> 2C values
``spp``    spatial pyramid max pooling (He et al., ECCV 2014) on 1x1, 2x2
           and 4x4 grids (adaptive bins), concatenated level by level,
           each level channel-major -> 21C values
``none``   the full map, flattened C-major (C*H*W values; large)
``mean``   the same as ``gap`` (the mean of the map's positions)
=========  ===============================================================

Token sequences ``(N, L, D)`` of vision transformers (Dosovitskiy et al., ICLR
2021): ``L`` tokens, the first ``prefix_tokens`` of them not image patches
(class token, DeiT's distillation token, register tokens -- Darcet et al.,
ICLR 2024), the rest the patch grid in row-major order:

===========  =============================================================
``cls``      the class token (token 0) -> D values
``mean``     the mean of the patch tokens (prefix tokens excluded) -> D
``clsmean``  both, concatenated [cls, mean] -> 2D values
``gap``      = ``mean``: the patch tokens are the spatial grid
``gmp``      max over the patch tokens -> D
``gapgmp``   [mean, max] of the patch tokens -> 2D
``spp``      the pyramid of the patch tokens laid out on their square grid
``none``     every token, prefix tokens included, flattened token-major (L*D)
===========  =============================================================

``cls`` and ``clsmean`` need a class token: asked of a feature map, or of a
transformer without one (Swin, ViTs pooled by averaging such as
``vit_*_reg4_gap_*``), they raise :class:`~featurekit.errors.LayerError`
naming the layer -- never a silent substitute.
"""

from __future__ import annotations

import math

from featurekit.errors import LayerError
from featurekit.specs import POOLS

TOKEN_POOLS = ("cls", "mean", "clsmean")
LAYOUTS = ("chw", "hwc", "tokens")
SPP_LEVELS = (1, 2, 4)
# Above this many values per image a full-map cache gets large; warn the user.
LARGE_DIM = 100_000


def check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise LayerError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}")
    return pool


def _grid(n_patches: int) -> int | None:
    side = math.isqrt(max(int(n_patches), 0))
    return side if side * side == n_patches and side > 0 else None


def pooled_dim(shape: tuple[int, ...], pool: str, layout: str = "chw", prefix_tokens: int = 0,
               class_token: bool = False) -> int:
    """Feature dimension of one layer output (``shape`` without the batch axis) after pooling.

    Raises
    ------
    LayerError
        A pooling the output cannot give: a class token of a map or of tokens
        without one, a pyramid of tokens that do not form a square grid.
    """
    check_pool(pool)
    if layout not in LAYOUTS:
        raise LayerError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    if layout == "tokens":
        n_tokens, width = int(shape[0]), int(shape[-1])
        if pool in ("cls", "clsmean") and not class_token:
            extra = f" ({prefix_tokens} non-patch tokens, none a class token)" if prefix_tokens else ""
            raise LayerError(f"these tokens have no class token{extra}, so --pool {pool} is not defined; "
                             "use mean (the mean of the patch tokens), gap, gmp, gapgmp or spp")
        if pool == "spp" and _grid(n_tokens - prefix_tokens) is None:
            raise LayerError(f"{n_tokens - prefix_tokens} patch tokens do not form a square grid: "
                             "--pool spp is not defined for them")
        if pool == "none":
            return n_tokens * width
        channels = width
    else:
        if pool in ("cls", "clsmean"):
            raise LayerError(f"a {'x'.join(map(str, shape))} feature map has no class token, so --pool {pool} "
                             "is not defined; use gap (= mean), gmp, gapgmp or spp")
        channels = int(shape[0] if layout == "chw" else shape[-1])
        if pool == "none":
            return int(math.prod(shape))
    return {"gap": channels, "gmp": channels, "mean": channels, "cls": channels, "gapgmp": 2 * channels,
            "clsmean": 2 * channels, "spp": channels * sum(level * level for level in SPP_LEVELS)}[pool]


def layer_dim(layer, pool: str, model: str = "") -> int:
    """:func:`pooled_dim` of a table :class:`~featurekit.models.layers.Layer`; errors name the layer."""
    try:
        return pooled_dim(layer.shape, pool, **layer.form)
    except LayerError as exc:
        where = f"{model}:{layer.name}" if model else layer.name
        raise LayerError(f"layer {where} ({layer.describe_shape()}): {exc}") from None


def _pool_spatial(x, pool: str):
    """``(N, C, H, W)`` -> ``(N, D)`` for the map pools."""
    import torch
    import torch.nn.functional as F

    if pool in ("gap", "mean"):
        return x.mean(dim=(2, 3))
    if pool == "gmp":
        return x.amax(dim=(2, 3))
    if pool == "gapgmp":
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
    if pool == "spp":
        return torch.cat([F.adaptive_max_pool2d(x, level).flatten(1) for level in SPP_LEVELS], dim=1)
    if pool == "none":
        return x.flatten(1).clone()
    check_pool(pool)
    raise LayerError(f"a feature map has no class token: --pool {pool} is not defined for it")


def _pool_tokens(x, pool: str, prefix_tokens: int, class_token: bool):
    """``(N, L, D)`` -> ``(N, D')`` for the token pools (see the module docstring)."""
    import torch

    if pool == "none":
        return x.flatten(1).clone()
    if pool in ("cls", "clsmean") and not class_token:
        raise LayerError(f"these tokens have no class token: --pool {pool} is not defined for them")
    patches = x[:, prefix_tokens:]
    if pool == "cls":
        return x[:, 0].clone()
    if pool in ("mean", "gap"):
        return patches.mean(dim=1)
    if pool == "clsmean":
        return torch.cat([x[:, 0], patches.mean(dim=1)], dim=1)
    if pool == "gmp":
        return patches.amax(dim=1)
    if pool == "gapgmp":
        return torch.cat([patches.mean(dim=1), patches.amax(dim=1)], dim=1)
    side = _grid(patches.shape[1])
    if side is None:
        raise LayerError(f"{patches.shape[1]} patch tokens do not form a square grid: --pool {pool} is not defined")
    grid = patches.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)
    return _pool_spatial(grid, pool)


def pool_map(x, pool: str, layout: str = "chw", prefix_tokens: int = 0, class_token: bool = False):
    """Pool a batch of layer outputs to ``(N, D)`` (float32, detached).

    ``x`` is ``(N, C, H, W)`` (``layout="chw"``), ``(N, H, W, C)``
    (``"hwc"``) or ``(N, L, D)`` (``"tokens"``, the first ``prefix_tokens``
    not patches, token 0 a class token when ``class_token``). An output that
    is already a vector ``(N, D)`` (e.g. an avgpool+flatten) is returned as is.
    """
    x = x.detach()
    if x.dim() == 2:
        return x.float()
    if layout == "tokens":
        out = _pool_tokens(x, pool, int(prefix_tokens), bool(class_token))
    else:
        out = _pool_spatial(x.permute(0, 3, 1, 2) if layout == "hwc" else x, pool)
    return out.float()
