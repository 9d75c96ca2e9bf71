"""Layer names of torchvision's vision transformers, aligned with timm's.

* ViT (Dosovitskiy et al., ICLR 2021; ``vit_b_16`` ...): the encoder layers
  are ``blocks.0 ... blocks.{depth-1}`` (``encoder.layers.encoder_layer_N``)
  and the final LayerNorm is ``norm`` (``encoder.ln``) -- the names timm uses
  for its ViTs, so ``vit_b_16:blocks.8`` and
  ``timm-vit_base_patch16_224:blocks.8`` are the same point of the same
  architecture. Outputs are ``(L, D)`` tokens, the class token first.
* Swin (Liu et al., ICCV 2021; ``swin_t`` ... ``swin_v2_b``): the four
  stages are ``layers.0 ... layers.3`` (``features.1, 3, 5, 7``: the output of
  each stage's blocks, the patch merging before them included, as timm's
  ``layers.N``) and the final LayerNorm is ``norm``. Outputs are channels-last ``(H, W, C)``
  maps; Swin has no class token.
"""

from torch import nn

VIT_TOKENS = {"layout": "tokens", "prefix_tokens": 1, "class_token": True}
CHANNELS_LAST = {"layout": "hwc"}


def vit_names(model: nn.Module) -> list[tuple[str, str, dict]]:
    """``[(name, module path, layout)]`` of a torchvision ``VisionTransformer``."""
    depth = len(list(model.get_submodule("encoder.layers").children()))
    names = [(f"blocks.{i}", f"encoder.layers.encoder_layer_{i}", VIT_TOKENS) for i in range(depth)]
    return names + [("norm", "encoder.ln", VIT_TOKENS)]


def swin_names(model: nn.Module) -> list[tuple[str, str, dict]]:
    """``[(name, module path, layout)]`` of a torchvision ``SwinTransformer`` (v1 and v2)."""
    stages = [name for name, module in model.get_submodule("features").named_children()
              if name != "0" and isinstance(module, nn.Sequential)]
    names = [(f"layers.{k}", f"features.{i}", CHANNELS_LAST) for k, i in enumerate(stages)]
    return names + [("norm", "norm", CHANNELS_LAST)]
