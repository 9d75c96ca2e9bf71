"""VGG layer names in Keras' convention (Simonyan & Zisserman, ICLR 2015).

The CAD papers index VGG layers the Keras way: ``0 input, 1 block1_conv1 ...
18 block5_pool`` for VGG16. A Keras conv layer includes its ReLU, so
``blockX_convY`` is the output of the torchvision ReLU that follows the conv
(``features.1, 3, 6, ...``), and ``blockX_pool`` the max-pool output. The
names are derived from the module sequence, so VGG11/13/16/19 and the ``_bn``
variants share one rule (BatchNorm sits between conv and ReLU and has no name
of its own).
"""

from torch import nn


def keras_names(model: nn.Module) -> list[tuple[str, str]]:
    """``[(name, module path)]`` for every conv block and pool of a torchvision VGG."""
    names = []
    block, conv = 1, 0
    features = model.get_submodule("features")
    for i, module in enumerate(features.children()):
        if isinstance(module, nn.Conv2d):
            conv += 1
        elif isinstance(module, nn.ReLU):
            names.append((f"block{block}_conv{conv}", f"features.{i}"))
        elif isinstance(module, nn.MaxPool2d):
            names.append((f"block{block}_pool", f"features.{i}"))
            block, conv = block + 1, 0
    return names
