"""Inception-v3 layer names in Keras' convention (Szegedy et al., CVPR 2016).

``mixed0 ... mixed10`` are the outputs of torchvision's ``Mixed_5b, 5c, 5d,
6a, 6b, 6c, 6d, 6e, 7a, 7b, 7c``. The stem's last pool is ``pool2`` and the
global pool ``avg_pool``. The model's native input is 299 px; torchvision's
ImageNet weights set ``transform_input=True`` (re-normalising to the Google
mean/std inside ``forward``), which the hooks see as part of the model. The
auxiliary head runs only in training mode and is never extracted.
"""

from torch import nn

_MIXED = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
          "Mixed_7a", "Mixed_7b", "Mixed_7c"]


def keras_names(model: nn.Module) -> list[tuple[str, str]]:
    names = [("pool2", "maxpool2")]
    names += [(f"mixed{i}", module) for i, module in enumerate(_MIXED)]
    names.append(("avg_pool", "avgpool"))
    return names
