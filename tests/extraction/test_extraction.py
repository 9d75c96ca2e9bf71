"""Per-layer activations equal a direct torchvision forward of the mapped module."""

import hashlib

import numpy as np
import pytest
import torch
import torchvision
from _weights_helpers import write_fake_imagenet

from featurekit.extraction.activations import ActivationExtractor
from featurekit.extraction.pipeline import extract
from featurekit.extraction.pooling import pool_map, pooled_dim
from featurekit.models.layers import Layer
from featurekit.models.weights import load_model

torch.set_num_threads(2)


def _batch(n=3, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def _gap(t):
    return t.mean(dim=(2, 3)).numpy()


def test_vgg16_layers_8_to_17_equal_direct_forward():
    lm = load_model("vgg16", "none", size=64)
    table = lm.table
    layers = table.select("8-17")
    x = _batch()
    with ActivationExtractor(lm.model, layers, "gap") as ex:
        got = ex(x)
    features = lm.model.features
    for layer in layers:
        k = int(layer.module.split(".")[1])
        with torch.no_grad():
            want = _gap(features[: k + 1](x))
        np.testing.assert_allclose(got[layer.name].numpy(), want, rtol=1e-5, atol=1e-5, err_msg=layer.name)


def test_hooks_see_conv_output_before_inplace_relu():
    """features.28 is a conv followed by ReLU(inplace=True): its pooled output must keep negatives."""
    lm = load_model("vgg16", "none", size=32)
    conv = Layer(99, "pre_relu", "features.28", (512, 2, 2))
    x = _batch(2, 32)
    with ActivationExtractor(lm.model, [conv], "gmp") as ex:
        got = ex(x)["pre_relu"].numpy()
    with torch.no_grad():
        want = lm.model.features[:29](x).amax(dim=(2, 3)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (got < 0).any(), "pre-ReLU maxima should include negative channels for random weights"


def test_resnet50_blocks_equal_direct_forward():
    lm = load_model("resnet50", "none", size=64)
    m = lm.model
    layers = [layer for layer in lm.table if layer.name.endswith("_out")]
    x = _batch(2)
    with ActivationExtractor(m, layers, "gap") as ex:
        got = ex(x)
    with torch.no_grad():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        for stage in range(1, 5):
            for k, block in enumerate(getattr(m, f"layer{stage}")):
                h = block(h)
                name = f"conv{stage + 1}_block{k + 1}_out"
                np.testing.assert_allclose(got[name].numpy(), _gap(h), rtol=1e-5, atol=1e-5, err_msg=name)


def _inception_direct(m, x):
    """Inception-v3 forward written out, including transform_input."""
    outs = {}
    with torch.no_grad():
        h = m._transform_input(x)
        for name in ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                     "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]:
            h = getattr(m, name)(h)
            outs[name] = _gap(h)
    return outs


def test_inception_mixed_blocks_equal_direct_forward():
    lm = load_model("inception_v3", "none", size=107)
    layers = lm.table.select("mixed0-mixed10")
    x = _batch(2, 107)
    with ActivationExtractor(lm.model, layers, "gap") as ex:
        got = ex(x)
    want = _inception_direct(lm.model, x)
    for layer in layers:
        np.testing.assert_allclose(got[layer.name].numpy(), want[layer.module], rtol=1e-5, atol=1e-5)


def test_extraction_stops_after_deepest_layer():
    lm = load_model("resnet18", "none", size=32)
    calls = []
    lm.model.fc.register_forward_hook(lambda *a: calls.append("fc"))
    lm.model.layer4.register_forward_hook(lambda *a: calls.append("layer4"))
    with ActivationExtractor(lm.model, lm.table.select("conv3_block2_out"), "gap") as ex:
        ex(_batch(1, 32))
    assert calls == []


def test_batchnorm_in_eval_mode_batch_independent():
    lm = load_model("resnet18", "none", size=32)
    lm.model.train()  # the extractor must put it back in eval mode
    x = _batch(4, 32)
    layers = lm.table.select("conv5_block2_out")
    with ActivationExtractor(lm.model, layers, "gap") as ex:
        full = ex(x)["conv5_block2_out"]
        single = torch.cat([ex(x[i : i + 1])["conv5_block2_out"] for i in range(4)])
    assert not lm.model.training
    torch.testing.assert_close(full, single, rtol=1e-5, atol=1e-5)


def test_pooling_variants():
    x = torch.randn(2, 3, 8, 8)
    assert pool_map(x, "gap").shape == (2, 3)
    torch.testing.assert_close(pool_map(x, "gmp"), x.amax(dim=(2, 3)))
    both = pool_map(x, "gapgmp")
    torch.testing.assert_close(both[:, 3:], x.amax(dim=(2, 3)))
    spp = pool_map(x, "spp")
    assert spp.shape == (2, pooled_dim((3, 8, 8), "spp")) == (2, 63)
    torch.testing.assert_close(spp[:, :3], x.amax(dim=(2, 3)))
    torch.testing.assert_close(spp[:, 3:15].reshape(2, 3, 4)[:, :, 0], x[:, :, :4, :4].amax(dim=(2, 3)))
    assert pool_map(x, "none").shape == (2, 192)


def test_mobilenet_v2_real_imagenet_weights(torch_home, monkeypatch, tiny_dataset, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    lm = load_model("mobilenet_v2", "imagenet", size=96)
    assert lm.weights == "imagenet:IMAGENET1K_V1"
    assert lm.weights_sha256.startswith("b0353104")
    assert lm.preprocessing.mean == (0.485, 0.456, 0.406)
    # the real weights: the classifier predicts with confident logits on a real-like input
    sd = torchvision.models.mobilenet_v2().state_dict()
    assert lm.model.state_dict()["features.0.0.weight"].shape == sd["features.0.0.weight"].shape
    result = extract(tiny_dataset, ["mobilenet_v2:features.3,features.14,features.18"], cache=tmp_path / "c.h5",
                     weights="imagenet", size=96, batch_size=5, num_workers=0, progress=False,
                     device="cpu")  # float32 like the direct forward (CUDA would use AMP float16)
    x = torch.stack([lm.preprocessing(tiny_dataset.image(i)) for i in range(len(tiny_dataset))])
    with torch.no_grad():
        h = x
        direct = {}
        for k, block in enumerate(lm.model.features):
            h = block(h)
            direct[f"features.{k}"] = _gap(h)
    for name in ("features.3", "features.14", "features.18"):
        np.testing.assert_allclose(result.get(f"mobilenet_v2/{name}"), direct[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_name, spec, kwargs", [
    ("vgg16", "vgg16:block3_conv2,block5_conv3", {}),
    ("resnet50", "resnet50:conv4_block6_out", {}),
    ("inception_v3", "inception_v3:mixed2,mixed7", {"init_weights": True, "aux_logits": True}),
])
def test_imagenet_loading_path_with_written_checkpoint(tmp_path, monkeypatch, model_name, spec, kwargs):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path, reference = write_fake_imagenet(tmp_path, model_name, monkeypatch, **kwargs)
    lm = load_model(model_name, "imagenet", size=96 if model_name != "inception_v3" else 139)
    assert lm.weights_path == str(path)
    assert lm.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(lm.model.state_dict()[key], value)
    if model_name == "inception_v3":
        assert lm.model.transform_input, "torchvision's ImageNet Inception-v3 re-normalises its input"
        layers = lm.table.select("mixed2,mixed7")
        x = _batch(1, 139)
        with ActivationExtractor(lm.model, layers, "gap") as ex:
            got = ex(x)
        want = _inception_direct(lm.model, x)
        np.testing.assert_allclose(got["mixed7"].numpy(), want["Mixed_6e"], rtol=1e-5, atol=1e-5)


def test_imagenet_offline_error_names_file_and_folder(tmp_path, monkeypatch):
    from urllib.error import URLError

    from featurekit.errors import WeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as err:
        load_model("resnet18", "imagenet")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_state_dict_path_with_other_head(tmp_path):
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=2)
    path = tmp_path / "r18.pth"
    torch.save(model.state_dict(), path)
    lm = load_model("resnet18", str(path), size=32)
    torch.testing.assert_close(lm.model.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    assert lm.weights == "file:r18.pth"


def test_bad_weights_files(tmp_path):
    from featurekit.errors import WeightsError

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="corrupt.pth"):
        load_model("resnet18", str(corrupt))
    other = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, other)
    with pytest.raises(WeightsError, match="does not fit resnet18"):
        load_model("resnet18", str(other))
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("resnet18", str(tmp_path / "missing.pth"))


def test_malicious_pickle_is_refused(tmp_path):
    import pickle

    from featurekit.errors import WeightsError

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": Evil()}, fh)
    with pytest.raises(WeightsError, match="evil.pth"):
        load_model("resnet18", str(path))


def test_random_weights_are_seeded_and_labelled():
    a = load_model("resnet18", "none", seed=1, size=32)
    b = load_model("resnet18", "none", seed=1, size=32)
    c = load_model("resnet18", "none", seed=2, size=32)
    assert a.weights == "none:seed=1" and a.weights_sha256 == b.weights_sha256 != c.weights_sha256


def test_preprocessing_rules():
    from featurekit.models.preprocessing import Preprocessing

    pre = Preprocessing.from_weights(None, 224, size=112)
    assert (pre.size, pre.resize) == (112, 128)
    gray8 = np.full((40, 60), 255, np.uint8)
    x = pre(gray8)
    assert x.shape == (3, 112, 112)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), (1 - np.array(pre.mean)) / np.array(pre.std), rtol=1e-5)
    gray16 = np.full((40, 60), 65535, np.uint16)
    torch.testing.assert_close(pre(gray16), x)
    squash = Preprocessing(32, 32, mode="squash")
    assert squash(np.zeros((10, 50, 3), np.uint8)).shape == (3, 32, 32)
