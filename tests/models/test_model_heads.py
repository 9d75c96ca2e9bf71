"""Head replacement (torchvision's last linear layer, a model that resets its own head) and the small-input stem."""

import pytest
import torch
from torch import nn

from featurekit.errors import LayerError
from featurekit.models.architecture import make_small_input, replace_head


class _WithAux(nn.Module):
    """Inception's shape of heads: an auxiliary classifier before the main one."""

    def __init__(self):
        super().__init__()
        self.AuxLogits = nn.Linear(4, 10)
        self.aux_logits = True
        self.fc = nn.Linear(6, 10)


class _ResetsOwnHead(nn.Module):
    """timm's interface: ``reset_classifier(n)`` and ``pretrained_cfg["classifier"]``."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(5, 1000)
        self.pretrained_cfg = {"classifier": "head"}

    def reset_classifier(self, num_classes):
        self.head = nn.Linear(5, num_classes)


class _ResNetLike(nn.Module):
    def __init__(self, conv1):
        super().__init__()
        self.conv1, self.maxpool, self.layer1 = conv1, nn.MaxPool2d(2), nn.Identity()


def test_the_auxiliary_head_is_dropped_and_the_last_linear_layer_replaced():
    model = replace_head(_WithAux(), 3, "linear")
    assert model.AuxLogits is None and model.aux_logits is False
    assert isinstance(model.fc, nn.Linear) and (model.fc.in_features, model.fc.out_features) == (6, 3)


def test_a_model_that_resets_its_own_head_gets_the_mlp_at_its_classifier_path():
    model = replace_head(_ResetsOwnHead(), 3, "mlp", hidden=8, dropout=0.5)
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 8), (8, 3)]


def test_the_small_input_stem_sums_the_centre_of_the_old_kernel_for_one_channel():
    old = nn.Conv2d(3, 4, kernel_size=7, stride=2, padding=3, bias=False)
    want = old.weight.detach()[:, :, 2:5, 2:5].sum(dim=1, keepdim=True)
    model = make_small_input(_ResNetLike(old), in_chans=1, adapt_pretrained=True)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.in_channels == 1
    torch.testing.assert_close(model.conv1.weight.detach(), want)


def test_the_small_input_stem_refuses_a_conv1_that_is_no_convolution():
    with pytest.raises(LayerError, match="conv1 is a Sequential"):
        make_small_input(_ResNetLike(nn.Sequential(nn.Conv2d(3, 4, 7))), in_chans=3)
