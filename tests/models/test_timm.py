"""timm models and vision transformers: names, layer tables, exact one-pass extraction, token pooling,
weights bound to preprocessing, fine-tuning, and the layer-wise report across model sources.

Random initialisation and files the tests write: nothing is downloaded (the hub lookup of a pretrained
tag reads a hub cache folder the test builds; the offline case is simulated).
"""

import json
import shutil

import numpy as np
import pytest
import torch
import torchvision
from conftest import random_dataset

from featurekit.cache import FeatureCache
from featurekit.cli import main
from featurekit.errors import LayerError, WeightsError
from featurekit.extraction.activations import ActivationExtractor
from featurekit.extraction.pipeline import extract
from featurekit.extraction.pooling import POOLS, layer_dim, pool_map, pooled_dim
from featurekit.models import get_spec, layer_table, resolve_spec, timm_weights
from featurekit.models.registry import table_for_model
from featurekit.models.torchvision_models import SPECS
from featurekit.models.weights import file_sha256, load_model, resolve_model
from featurekit.specs import Weights

torch.set_num_threads(2)

VIT = "timm-vit_tiny_patch16_224"
# torch's no-op notices when a file is checked against a meta-device model
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")


def _batch(n=2, size=64, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _close(got, want, name=""):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def vit32():
    """ViT-Ti/16 for 32 px input (a 2x2 patch grid), random weights; tests must not modify it."""
    return load_model(VIT, "none", size=32)


# ---------------------------------------------------------------------------- names and tables


def test_timm_name_round_trips_through_specs_cache_keys_and_feature_tokens(tmp_path):
    name = "timm-vit_tiny_patch16_224.augreg_in21k"
    model, layers, table = resolve_spec(f"{name}:blocks.0-blocks.1,norm", size=32)
    assert model == name and [layer.name for layer in layers] == ["blocks.0", "blocks.1", "norm"]
    assert get_spec(name.upper()).name == name  # names are case-insensitive, as torchvision's

    ds = random_dataset(n=6, size=40)
    result = extract(ds, [f"{name}:blocks.1,norm"], weights="none", size=32, pool="cls",
                     cache=tmp_path / "c.h5", progress=False, num_workers=0, device="cpu")
    keys = {s.key for s in result.specs}
    assert keys == {f"{name}/blocks.1", f"{name}/norm"}
    cache = FeatureCache(tmp_path / "c.h5")
    assert keys <= set(cache.keys())

    from featurekit.evaluation.estimators.featuresets import resolve_feature_sets
    from featurekit.orchestration import layer_keys
    from featurekit.specs import LayerSpec

    resolved = layer_keys([LayerSpec.parse(f"{name}:blocks.1")], cache)  # from the cache alone, no model built
    assert resolved == {f"{name}:blocks.1": [f"{name}/blocks.1"]}
    assert result.layer_keys == {f"{name}:blocks.1,norm": [f"{name}/blocks.1", f"{name}/norm"]}
    sets, infos = resolve_feature_sets([f"{name}:blocks.1", f"{name}/norm"],
                                       [f"{name}:blocks.1+{name}/norm"], cache=cache, layer_keys=resolved)
    assert [s.name for s in sets] == [f"{name}/blocks.1", f"{name}/norm", f"{name}/blocks.1+{name}/norm"]
    assert [(s.model, s.layer, s.layer_index) for s in sets[:2]] == [(name, "blocks.1", 2.0), (name, "norm", 13.0)]
    info = infos[f"{name}/norm"]
    assert info["pool"] == "cls" and info["last_layer_index"] == 13
    np.testing.assert_array_equal(cache.get(f"{name}/norm"), result.get(f"{name}/norm"))


def test_unknown_timm_names_and_tags_list_what_exists():
    with pytest.raises(LayerError, match="timm-vit_tiny_patch16_224"):
        get_spec("timm-vit_tiny_patch16_22")
    with pytest.raises(LayerError, match="augreg_in21k_ft_in1k"):
        get_spec("timm-vit_tiny_patch16_224.bogus_tag")
    with pytest.raises(LayerError, match="timm-"):
        get_spec("vit_tiny_patch16_224")  # not a torchvision name: the message says how timm models are named


def test_tables_from_what_timm_declares():
    vit = layer_table(VIT, 64)
    assert vit.names == ["input"] + [f"blocks.{i}" for i in range(12)] + ["norm"]
    block = vit.get("blocks.4")
    assert (block.layout, block.shape, block.prefix_tokens, block.class_token) == ("tokens", (17, 192), 1, True)
    convnext = layer_table("timm-convnext_atto", 64)
    assert convnext.names == ["input", "stages.0", "stages.1", "stages.2", "stages.3"]  # identity norm_pre adds nothing
    assert convnext.get("stages.2").shape == (160, 4, 4) and convnext.get("stages.2").layout == "chw"
    effnet = layer_table("timm-efficientnet_b0", 64)
    assert effnet.names == ["input", "blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6", "bn2"]
    assert effnet.get("bn2").shape == (1280, 2, 2)
    swin = layer_table("timm-swin_tiny_patch4_window7_224", 64)
    assert swin.names == ["input", "layers.0", "layers.1", "layers.2", "layers.3", "norm"]
    assert swin.get("layers.1").layout == "hwc" and swin.get("layers.1").shape == (8, 8, 192)


def test_prefix_tokens_registers_and_models_without_class_token():
    dino = layer_table("timm-vit_small_patch14_reg4_dinov2", 28)
    layer = dino.get("blocks.3")
    assert (layer.shape, layer.prefix_tokens, layer.class_token) == ((9, 384), 5, True)  # cls + 4 registers + 2x2
    gap_vit = layer_table("timm-vit_medium_patch16_reg4_gap_256", 32)
    no_cls = gap_vit.get("blocks.2")
    assert (no_cls.prefix_tokens, no_cls.class_token) == (4, False)
    assert layer_dim(no_cls, "mean") == 512
    with pytest.raises(LayerError, match=r"blocks\.2.*no class token.*mean"):
        layer_dim(no_cls, "cls")
    with pytest.raises(LayerError, match=r"stages\.1.*feature map has no class token"):
        layer_dim(layer_table("timm-convnext_atto", 64).get("stages.1"), "clsmean")
    with pytest.raises(LayerError, match="no class token"):  # Swin: channels-last maps, no class token
        layer_dim(layer_table("timm-swin_tiny_patch4_window7_224", 64).get("norm"), "cls")


def test_layers_command_prints_timm_table(capsys):
    assert main(["layers", "timm-convnext_atto", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "timm-convnext_atto at 64x64" in out and "stages.2  160x4x4" in out
    assert main(["layers", VIT, "--size", "32", "--pool", "clsmean"]) == 0
    out = capsys.readouterr().out
    assert "5x192 tokens (cls + 4 patches)" in out and "384" in out
    assert main(["layers", "timm-nonexistent_net"]) == 2
    assert "unknown timm model" in capsys.readouterr().err


# ---------------------------------------------------------------------------- one pass, exact


def test_vit_layers_equal_direct_forward_for_every_token_pool(vit32):
    lm = vit32
    m, x = lm.model, _batch(3, 32)
    layers = lm.table.select("blocks.*,norm")
    with torch.no_grad():  # the direct forward, written out
        h = m._pos_embed(m.patch_embed(x))
        direct = {}
        for i, block in enumerate(m.blocks):
            h = block(h)
            direct[f"blocks.{i}"] = h
        direct["norm"] = m.norm(h)
        inter = m.forward_intermediates(x, norm=False, intermediates_only=True, return_prefix_tokens=True)
    for i, (spatial, prefix) in enumerate(inter):  # timm's own declared intermediates agree with it
        _close(torch.cat([prefix, spatial.flatten(2).transpose(1, 2)], 1), direct[f"blocks.{i}"], f"blocks.{i}")
    for pool in ("cls", "mean", "clsmean", "gap", "gmp", "spp", "none"):
        with ActivationExtractor(m, layers, pool) as ex:
            got = ex(x)
        for layer in layers:
            t = direct[layer.name]
            patches = t[:, 1:]
            grid = patches.transpose(1, 2).reshape(3, 192, 2, 2)
            want = {"cls": t[:, 0], "mean": patches.mean(1), "gap": patches.mean(1), "gmp": patches.amax(1),
                    "clsmean": torch.cat([t[:, 0], patches.mean(1)], 1), "none": t.flatten(1),
                    "spp": torch.cat([torch.nn.functional.adaptive_max_pool2d(grid, k).flatten(1)
                                      for k in (1, 2, 4)], 1)}[pool]
            assert got[layer.name].shape[1] == layer_dim(layer, pool)
            _close(got[layer.name], want, f"{layer.name} {pool}")


def test_convnext_stages_equal_direct_forward():
    lm = load_model("timm-convnext_atto", "none", size=64)
    m, x = lm.model, _batch()
    layers = lm.table.select("stages.*")
    with ActivationExtractor(m, layers, "gapgmp") as ex:
        got = ex(x)
    with torch.no_grad():
        h = m.stem(x)
        for i, stage in enumerate(m.stages):
            h = stage(h)
            _close(got[f"stages.{i}"], torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1), f"stages.{i}")


def test_efficientnet_blocks_and_head_conv_equal_direct_forward():
    lm = load_model("timm-efficientnet_b0", "none", size=64)
    m, x = lm.model, _batch()
    with ActivationExtractor(m, lm.table.select("1-6"), "gap") as ex:
        got = ex(x)
    with torch.no_grad():
        h = m.bn1(m.conv_stem(x))
        for i, block in enumerate(m.blocks):
            h = block(h)
            if f"blocks.{i}" in got:
                _close(got[f"blocks.{i}"], h.mean((2, 3)), f"blocks.{i}")
        _close(got["bn2"], m.bn2(m.conv_head(h)).mean((2, 3)), "bn2")
    assert len(got) == 6


def test_extraction_stops_after_the_deepest_block(vit32):
    calls = []
    handles = [vit32.model.blocks[3].register_forward_hook(lambda *a: calls.append("blocks.3")),
               vit32.model.norm.register_forward_hook(lambda *a: calls.append("norm"))]
    with ActivationExtractor(vit32.model, vit32.table.select("blocks.2"), "cls") as ex:
        ex(_batch(1, 32))
    for h in handles:
        h.remove()
    assert calls == []


def test_torchvision_vit_and_swin_get_blocks_and_norm():
    vit_table = layer_table("vit_b_16")
    assert vit_table.names[1] == "blocks.0" and vit_table.names[-2:] == ["blocks.11", "norm"]
    assert vit_table.get("norm").module == "encoder.ln" and vit_table.get("blocks.3").shape == (197, 768)
    assert layer_table("swin_t").get("layers.3").module == "features.7"
    # the same rules on small torchvision transformers, and extraction equal to their direct forward
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                               hidden_dim=32, mlp_dim=64).eval()
    table = table_for_model(vit, SPECS["vit_b_16"], 32)
    assert table.names == ["input", "blocks.0", "blocks.1", "norm"] and table.get("blocks.1").class_token
    x = _batch(2, 32)
    with ActivationExtractor(vit, table.select("blocks.*,norm"), "clsmean") as ex:
        got = ex(x)
    with torch.no_grad():
        h = vit._process_input(x)
        h = torch.cat([vit.class_token.expand(2, -1, -1), h], 1) + vit.encoder.pos_embedding
        for i, layer in enumerate(vit.encoder.layers):
            h = layer(h)
            _close(got[f"blocks.{i}"], torch.cat([h[:, 0], h[:, 1:].mean(1)], 1), f"blocks.{i}")
        _close(got["norm"], torch.cat([vit.encoder.ln(h)[:, 0], vit.encoder.ln(h)[:, 1:].mean(1)], 1))
    swin = torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 1],
                                              window_size=[2, 2]).eval()
    table = table_for_model(swin, SPECS["swin_t"], 32)
    assert table.names == ["input", "layers.0", "layers.1", "norm"]
    assert table.get("layers.1").layout == "hwc" and table.get("layers.1").shape == (4, 4, 32)
    with ActivationExtractor(swin, table.select("layers.1"), "spp") as ex:
        got = ex(x)["layers.1"]
    with torch.no_grad():
        want = swin.features(x).permute(0, 3, 1, 2)
    _close(got, torch.cat([torch.nn.functional.adaptive_max_pool2d(want, k).flatten(1) for k in (1, 2, 4)], 1))


def test_pooled_dim_matches_pool_map_for_every_layout_and_pool():
    x = torch.randn(2, 21, 8)  # cls + 4 registers + a 4x4 grid
    forms = {"tokens": (x, dict(layout="tokens", prefix_tokens=5, class_token=True)),
             "chw": (torch.randn(2, 8, 4, 4), dict(layout="chw")),
             "hwc": (torch.randn(2, 4, 4, 8), dict(layout="hwc"))}
    for _, (t, form) in forms.items():
        for pool in POOLS:
            if pool in ("cls", "clsmean") and form["layout"] != "tokens":
                with pytest.raises(LayerError):
                    pooled_dim(tuple(t.shape[1:]), pool, **form)
                continue
            assert pool_map(t, pool, **form).shape == (2, pooled_dim(tuple(t.shape[1:]), pool, **form)), pool
    torch.testing.assert_close(pool_map(x, "mean", **forms["tokens"][1]), x[:, 5:].mean(1))  # registers excluded
    hwc = forms["hwc"][0]
    for pool in ("gap", "spp", "none"):
        torch.testing.assert_close(pool_map(hwc, pool, layout="hwc"), pool_map(hwc.permute(0, 3, 1, 2), pool))
    with pytest.raises(LayerError, match="square grid"):
        pooled_dim((7, 8), "spp", layout="tokens", prefix_tokens=1, class_token=True)


def test_cls_pool_of_a_cnn_fails_before_any_image_is_read(tmp_path):
    ds = random_dataset(n=4)
    with pytest.raises(LayerError, match=r"timm-convnext_atto:stages\.3.*no class token"):
        extract(ds, ["timm-convnext_atto:stages.3"], weights="none", size=32, pool="cls",
                cache=tmp_path / "c.h5", progress=False, num_workers=0, device="cpu")
    assert not (tmp_path / "c.h5").exists()


# ---------------------------------------------------------------------------- weights and preprocessing


def test_preprocessing_comes_from_the_pretrained_config_and_is_recorded(tmp_path):
    vit = resolve_model("timm-vit_tiny_patch16_224.augreg_in21k", "none", size=32)
    assert vit.preprocessing.mean == (0.5, 0.5, 0.5) and vit.preprocessing.interpolation == "bicubic"
    assert vit.preprocessing.resize == 35  # floor(32 / crop_pct 0.9)
    conv = resolve_model("timm-convnext_atto", "none")
    assert conv.preprocessing.size == 224 and conv.preprocessing.resize == 256  # crop_pct 0.875
    assert conv.preprocessing.mean == (0.485, 0.456, 0.406)
    ds = random_dataset(n=4)
    res = extract(ds, ["timm-convnext_atto:stages.1"], weights="none", size=32, cache=tmp_path / "c.h5",
                  progress=False, num_workers=0, device="cpu")
    entry = FeatureCache(tmp_path / "c.h5").find("timm-convnext_atto/stages.1")
    params = entry.params
    assert params["preprocessing"]["resize"] == 36 and params["preprocessing"]["interpolation"] == "bicubic"
    assert params["weights"] == "none:seed=0" and "+timm-" in params["init"] and params["pool"] == "gap"
    assert res.specs[0].dim == 80


def test_random_init_is_seeded():
    a = load_model("timm-convnext_atto", "none", seed=1, size=32)
    b = load_model("timm-convnext_atto", "none", seed=1, size=32)
    c = load_model("timm-convnext_atto", "none", seed=2, size=32)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256


@pytest.fixture(scope="module")
def convnext_state():
    torch.manual_seed(5)
    import timm

    return timm.create_model("convnext_atto", num_classes=7).state_dict()


def test_local_safetensors_and_pth_files_load_exactly(convnext_state, tmp_path):
    from safetensors.torch import save_file

    st = tmp_path / "convnext.safetensors"
    save_file(convnext_state, str(st))
    pth = tmp_path / "convnext.pth"
    torch.save(convnext_state, pth)
    for path in (st, pth):
        lm = load_model("timm-convnext_atto", str(path), size=32)
        assert lm.weights == f"file:{path.name}" and lm.weights_sha256 == file_sha256(path)
        state = lm.model.state_dict()
        assert set(state) == set(convnext_state)  # the file's 7-class head is kept
        for k, v in convnext_state.items():
            assert torch.equal(state[k], v), k


def test_unsafe_or_unfitting_files_are_refused(convnext_state, tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        torch.save({"state_dict": convnext_state, "hook": print}, fh)
    with pytest.raises(WeightsError, match="evil.pth"):
        load_model("timm-convnext_atto", str(evil))
    wrong = tmp_path / "wrong.pth"
    torch.save(convnext_state, wrong)
    with pytest.raises(WeightsError, match=r"wrong\.pth does not fit timm-efficientnet_b0"):
        resolve_model("timm-efficientnet_b0", str(wrong))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(WeightsError, match="cut.safetensors"):
        resolve_model("timm-convnext_atto", str(truncated))
    with pytest.raises(WeightsError, match=r"tag 'd2_in1k', not 'in22k'.*timm-convnext_atto\.TAG"):
        resolve_model("timm-convnext_atto", "imagenet:in22k")


@pytest.fixture
def fake_hub(convnext_state, tmp_path, monkeypatch):
    """A Hugging Face hub cache holding timm's convnext_atto.d2_in1k (random values), downloads forbidden."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    state = {k: v for k, v in convnext_state.items() if not k.startswith("head.fc.")}
    state["head.fc.weight"], state["head.fc.bias"] = torch.zeros(1000, 320), torch.arange(1000.0)
    repo = tmp_path / "hub" / "models--timm--convnext_atto.d2_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    file = repo / "snapshots" / "abc123" / "model.safetensors"
    save_file(state, str(file))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(timm_weights, "_download", lambda *a: pytest.fail("nothing may be downloaded"))
    return file, state


def test_pretrained_tag_is_read_from_the_hub_cache(fake_hub):
    file, state = fake_hub
    repo = file.parents[2]
    lm = load_model("timm-convnext_atto", "imagenet", size=32)
    assert lm.weights == "imagenet:d2_in1k" and Weights.imagenet().matches(lm.weights)
    assert resolve_model("timm-convnext_atto", "imagenet:d2_in1k").weights_sha256 == lm.weights_sha256
    assert lm.weights_sha256 == file_sha256(repo / "snapshots" / "abc123" / "model.safetensors")
    assert torch.equal(lm.model.state_dict()["stages.2.blocks.0.conv_dw.weight"],
                       state["stages.2.blocks.0.conv_dw.weight"])
    assert torch.equal(lm.model.head.fc.bias, state["head.fc.bias"])


def test_a_changed_hub_file_is_never_served_from_the_cache(fake_hub, tmp_path):
    from safetensors.torch import save_file

    file, state = fake_hub
    ds = random_dataset(n=4)
    run = dict(weights="imagenet", size=32, cache=tmp_path / "c.h5", progress=False, num_workers=0, device="cpu")
    first = extract(ds, ["timm-convnext_atto:stages.1"], **run)
    again = extract(ds, ["timm-convnext_atto:stages.1"], **run)
    assert again.reused and not again.computed  # a fully cached run (answered from the resolution memo)
    key = "stages.1.blocks.0.mlp.fc1.weight"
    state[key] = state[key] + torch.randn(state[key].shape, generator=torch.Generator().manual_seed(1))
    save_file(state, str(file))  # the hub cache now holds other weights for the same tag
    changed = extract(ds, ["timm-convnext_atto:stages.1"], **run)
    assert changed.computed and changed.computed[0].entry_id != first.specs[0].entry_id
    assert not np.allclose(changed.get("timm-convnext_atto/stages.1"), first.get("timm-convnext_atto/stages.1"))


def test_missing_pretrained_file_offline_names_file_and_folder(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(timm_weights, "_hub_online", lambda: False)
    monkeypatch.setattr(timm_weights, "_download", lambda *a: pytest.fail("offline: nothing may be downloaded"))
    with pytest.raises(WeightsError) as err:
        resolve_model("timm-vit_tiny_patch16_224.augreg_in21k", "imagenet")
    msg = str(err.value)
    assert "model.safetensors" in msg and "timm/vit_tiny_patch16_224.augreg_in21k" in msg
    assert str(tmp_path / "empty" / "models--timm--vit_tiny_patch16_224.augreg_in21k") in msg


# ---------------------------------------------------------------------------- fine-tuning


def test_finetune_timm_head_through_reset_classifier_and_freezing_by_layer_names(tmp_path, vit32):
    import copy

    from featurekit.finetune import FinetuneConfig, finetune, freeze, starting_point
    from featurekit.models.architecture import set_head

    ds = random_dataset(n=16, size=40)
    cfg = FinetuneConfig(model="timm-convnext_atto", weights="none", size=32, epochs=1, batch_size=8,
                         optimizer="adam", lr=1e-2, scheduler="none", augment="none", val_fraction=0.25,
                         patience=0, freeze_until="stages.1", head="mlp", hidden=16)
    start = starting_point(cfg, ds.class_names)
    head = start.model.head
    assert head.norm.normalized_shape == (320,)  # timm's reset keeps pooling and norm, the MLP replaces fc
    assert isinstance(head.fc, torch.nn.Sequential) and head.fc[-1].out_features == 2
    before = {k: v.clone() for k, v in start.model.state_dict().items()}
    res = finetune(ds, cfg, out=tmp_path / "cnx.pt", progress=False)
    after = res.model.state_dict()
    frozen = [k for k in after if k.startswith(("stem.", "stages.0.", "stages.1."))]
    assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)
    assert not all(torch.equal(after[k], before[k]) for k in after if k.startswith("stages.3."))
    lm = load_model("timm-convnext_atto", str(tmp_path / "cnx.pt"))  # the checkpoint rebuilds exactly
    x = _batch(3, 32)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x), res.model.eval()(x), rtol=1e-6, atol=1e-6)
    vit = set_head(copy.deepcopy(vit32.model), VIT, 3)
    assert vit.head.out_features == 3 and vit.head.in_features == 192
    fr = freeze(vit, vit32.table, "blocks.1")
    assert {"cls_token", "pos_embed"} <= set(fr.parameters)  # held by the model itself, used before blocks.1
    assert vit.blocks[2].attn.qkv.weight.requires_grad and not vit.blocks[1].mlp.fc1.weight.requires_grad


# ---------------------------------------------------------------------------- report: one table, one figure


def test_busi_evaluate_timm_vit_and_torchvision_cnn_in_one_table_and_figure(busi_dir, tmp_path):
    from featurekit.evaluation.results.runfolder import read_runs
    from featurekit.report.build import relative_depth

    root = tmp_path / "busi"
    for cls in ("benign", "malignant"):
        (root / cls).mkdir(parents=True)
        for k in range(1, 13):
            for f in busi_dir.joinpath(cls).glob(f"{cls} ({k})*.png"):
                shutil.copy(f, root / cls / f.name)
    run = tmp_path / "run"
    code = main(["evaluate", str(root), "--classes", "benign,malignant", "--positive", "malignant",
                 "--roi", "mask", "--features", f"{VIT}:blocks.5,norm", "--features", "resnet18:conv3_block2_out",
                 "--features", "resnet18:avg_pool", "--classifier", "logreg", "--cv", "3", "--n-boot", "100",
                 "--youden", "train",
                 "--weights", "none", "--size", "32", "--pool", "mean", "--cache", str(tmp_path / "busi.h5"),
                 "--out", str(run), "--quiet"])
    assert code == 0
    folders, results, _ = read_runs([run])
    assert set(results["feature_set"]) == {f"{VIT}/blocks.5", f"{VIT}/norm", "resnet18/conv3_block2_out",
                                           "resnet18/avg_pool", "selected"}
    assert (results["n"] == 24).all() and results["roc_auc"].notna().all()
    depth = dict(zip(results["feature_set"], relative_depth(results, folders)))
    assert depth[f"{VIT}/norm"] == 1.0 and depth["resnet18/avg_pool"] == 1.0
    assert depth[f"{VIT}/blocks.5"] == pytest.approx(6 / 13)
    assert depth["resnet18/conv3_block2_out"] == pytest.approx(layer_table("resnet18").get(
        "conv3_block2_out").index / (len(layer_table("resnet18")) - 1))
    entries = json.loads((run / "provenance.json").read_text())["entries"]
    assert {e["pool"] for e in entries} == {"mean"}
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert f"{VIT}/blocks.5" in md and "resnet18/avg_pool" in md
    assert f"First row: {VIT}, resnet18 on one relative-depth axis" in md \
        or f"First row: resnet18, {VIT} on one relative-depth axis" in md
    assert "RANDOM weights" in md


def test_relative_depth_unknown_for_entries_without_table_size():
    import pandas as pd

    from featurekit.report.build import relative_depth

    class Run:
        name = "r"
        provenance = {"entries": [{"model": "a", "last_layer_index": 4}, {"model": "b"}]}

    rows = pd.DataFrame({"model": ["a", "a", "b", ""], "layer_index": [2, 4, 3, np.nan], "run": "r"})
    out = relative_depth(rows, [Run()]).to_numpy()
    assert out[0] == 0.5 and out[1] == 1.0 and np.isnan(out[2]) and np.isnan(out[3])
