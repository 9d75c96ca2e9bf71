"""Layer tables and the layer spec grammar."""

import pytest

from featurekit.errors import LayerError
from featurekit.models import layer_table, resolve_spec
from featurekit.specs import split_layer_spec

VGG16_KERAS = ["input", "block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2",
               "block2_pool", "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool", "block4_conv1",
               "block4_conv2", "block4_conv3", "block4_pool", "block5_conv1", "block5_conv2", "block5_conv3",
               "block5_pool"]
VGG16_MODULES = [1, 3, 4, 6, 8, 9, 11, 13, 15, 16, 18, 20, 22, 23, 25, 27, 29, 30]


def test_vgg16_table_is_keras_indexed():
    table = layer_table("vgg16")
    assert table.names == VGG16_KERAS
    assert [layer.module for layer in table][1:] == [f"features.{i}" for i in VGG16_MODULES]
    assert table.get("block4_pool").shape == (512, 14, 14)
    assert table.get(17).name == "block5_conv3"


def test_vgg16_8_17_is_ten_layers_with_pools():
    model, layers, _ = resolve_spec("vgg16:8-17")
    assert model == "vgg16"
    assert [layer.name for layer in layers] == VGG16_KERAS[8:18]
    assert "block3_pool" in [layer.name for layer in layers] and len(layers) == 10


def test_vgg19_has_four_convs_in_block3():
    names = layer_table("vgg19").names
    assert "block3_conv4" in names and "block5_conv4" in names and names[-1] == "block5_pool"


def test_resnet_tables():
    r50 = layer_table("resnet50")
    blocks = [layer for layer in r50 if layer.name.endswith("_out")]
    assert len(blocks) == 16
    assert blocks[0].name == "conv2_block1_out" and blocks[0].module == "layer1.0"
    assert r50.get("conv4_block6_out").module == "layer3.5"
    assert r50.get("conv5_block3_out").shape == (2048, 7, 7)
    assert {"conv1_relu", "pool1", "avg_pool"} <= set(r50.names)
    r18 = layer_table("resnet18")
    assert len([n for n in r18.names if n.endswith("_out")]) == 8
    assert r18.get("conv5_block2_out").module == "layer4.1"


def test_inception_mixed_blocks():
    table = layer_table("inception_v3")
    assert table.input_size == 299
    mods = [table.get(f"mixed{i}").module for i in range(11)]
    assert mods == ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
    assert table.get("mixed10").shape == (2048, 8, 8)
    assert "AuxLogits" not in [layer.module for layer in table]


def test_generic_table_for_any_torchvision_model():
    table = layer_table("densenet121", 64)
    assert table.names[1] == "features.conv0"
    assert "features.denseblock4" in table.names
    assert not any(n.startswith("classifier") for n in table.names)
    mobilenet = layer_table("mobilenet_v2")
    assert [f"features.{i}" for i in range(19)] == mobilenet.names[1:20]


def test_size_changes_shapes():
    assert layer_table("vgg16", 64).get("block5_conv3").shape == (512, 4, 4)


@pytest.mark.parametrize("spec, expected", [
    ("vgg16:block4_pool", ["block4_pool"]),
    ("resnet50:conv4_block6_out,conv5_block3_out", ["conv4_block6_out", "conv5_block3_out"]),
    ("resnet50:conv5_*", ["conv5_block1_out", "conv5_block2_out", "conv5_block3_out"]),
    ("inception_v3:mixed0-mixed2", ["mixed0", "mixed1", "mixed2"]),
    ("vgg16:17,8,block5_conv3", ["block3_conv2", "block5_conv3"]),
    ("VGG16:block1_conv1-block1_pool", ["block1_conv1", "block1_conv2", "block1_pool"]),
])
def test_spec_grammar(spec, expected):
    assert [layer.name for layer in resolve_spec(spec)[1]] == expected


@pytest.mark.parametrize("spec, message", [
    ("vgg16:block9_conv1", "valid layers: 0:input"),
    ("vgg16:40", "out of range"),
    ("vgg16:17-8", "empty layer range"),
    ("vgg16:conv9_*", "matches no layer"),
    ("vgg16", "expected MODEL:LAYERS"),
    ("notamodel:1", "unknown model 'notamodel'"),
    ("vgg16:8,,9", "empty layer selector"),
])
def test_bad_specs_are_clear(spec, message):
    with pytest.raises(LayerError, match=message):
        resolve_spec(spec)


def test_split_layer_spec():
    assert split_layer_spec(" resnet50 : conv5_* ") == ("resnet50", "conv5_*")


def test_unknown_layer_lists_valid_names():
    with pytest.raises(LayerError) as err:
        resolve_spec("resnet18:conv9_block1_out")
    assert "conv5_block2_out" in str(err.value) and "avg_pool" in str(err.value)
