"""ResNet layer names in Keras' convention (He et al., CVPR 2016).

``conv1_relu`` (stem), ``pool1`` (stem max-pool), then one name per residual
block: ``conv{stage}_block{k}_out`` is the output of torchvision's
``layer{stage-1}.{k-1}`` (stages 2-5), and ``avg_pool``. ResNet-50 has 16
bottleneck outputs ``conv2_block1_out ... conv5_block3_out``; ResNet-18 has 8
basic blocks. The rule reads the block counts off the model, so ResNet-34/101/152,
ResNeXt and Wide ResNets follow it too.
"""

from torch import nn


def keras_names(model: nn.Module) -> list[tuple[str, str]]:
    names = [("conv1_relu", "relu"), ("pool1", "maxpool")]
    for stage in range(1, 5):
        for k in range(len(getattr(model, f"layer{stage}"))):
            names.append((f"conv{stage + 1}_block{k + 1}_out", f"layer{stage}.{k}"))
    names.append(("avg_pool", "avgpool"))
    return names
