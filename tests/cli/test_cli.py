"""The command line: thin layer over the API, clear errors, help with examples."""

import json

import numpy as np
import pytest
from conftest import copy_busi

from featurekit.cache import FeatureCache
from featurekit.cli import main


@pytest.fixture
def busi_copy8(busi_dir, tmp_path):
    """A copy of 4 benign + 4 malignant BUSI images with their masks (names with spaces kept)."""
    return copy_busi(busi_dir, tmp_path / "busi", {"benign": [1, 2, 3, 100], "malignant": [1, 2, 3, 4]})


def test_layers_command(capsys):
    assert main(["layers", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "17     block5_conv3  features.29" in out and "block4_pool" in out


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["layers", "vgg17"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'vgg17'" in err and "vgg16" in err


@pytest.mark.parametrize("command", ["extract", "layers", "cache", "demo"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_extract_then_cache_commands(busi_copy8, tmp_path, capsys):
    cache = tmp_path / "busi.h5"
    args = ["extract", str(busi_copy8), "--classes", "benign,malignant", "--positive", "malignant",
            "--roi", "mask", "--layers", "resnet18:conv5_*", "--layers", "resnet18:pool1", "--weights", "none",
            "--size", "48", "--cache", str(cache), "--workers", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "random init: NOT pretrained" in out and out.count("computed") == 3
    assert main(args + ["--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert FeatureCache(cache).get("resnet18/conv5_block2_out").shape == (8, 512)
    assert main(["cache", "info", str(cache), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == 8 and info["class_names"] == ["benign", "malignant"]
    assert {e["key"] for e in info["entries"]} == {"resnet18/conv5_block1_out", "resnet18/conv5_block2_out",
                                                   "resnet18/pool1"}
    assert main(["cache", "ls", str(tmp_path)]) == 0
    assert "busi.h5" in capsys.readouterr().out
    assert main(["cache", "rm", str(cache), "--key", "resnet18/pool1"]) == 0
    assert FeatureCache(cache).keys() == ["resnet18/conv5_block1_out", "resnet18/conv5_block2_out"]


def test_extract_unknown_layer(busi_copy8, capsys):
    assert main(["extract", str(busi_copy8), "--layers", "vgg16:block9_conv9", "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert "unknown layer 'block9_conv9'" in err and "block5_conv3" in err


def test_extract_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["extract", str(tmp_path / "empty"), "--layers", "resnet18:pool1", "--weights", "none"]) == 2
    assert "empty" in capsys.readouterr().err


def test_extract_corrupt_image_names_the_file(busi_copy8, tmp_path, capsys):
    bad = busi_copy8 / "benign" / "benign (2).png"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated PNG
    code = main(["extract", str(busi_copy8), "--classes", "benign,malignant", "--layers", "resnet18:pool1",
                 "--weights", "none", "--size", "32", "--cache", str(tmp_path / "c.h5"), "--workers", "1",
                 "--quiet"])
    assert code == 2
    assert "benign (2).png" in capsys.readouterr().err


def test_extract_phantom_offline(tmp_path, capsys):
    assert main(["extract", "phantom", "--layers", "resnet18:avg_pool", "--weights", "none", "--size", "32",
                 "--cache", str(tmp_path / "p.h5"), "--workers", "0", "--quiet"]) == 0
    X = FeatureCache(tmp_path / "p.h5").get("resnet18/avg_pool")
    assert X.shape[1] == 512 and np.isfinite(X).all()


def test_extract_handcrafted_and_cnn_in_one_cache(busi_copy8, tmp_path, capsys):
    cache = tmp_path / "busi.h5"
    assert main(["extract", str(busi_copy8), "--classes", "benign,malignant", "--roi", "mask",
                 "--handcrafted", "gabor,glcm,haar", "--layers", "resnet18:avg_pool", "--weights", "none",
                 "--size", "32", "--cache", str(cache), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "gabor" in out and "glcm" in out and "haar" in out
    fc = FeatureCache(cache)
    assert fc.keys() == ["gabor", "glcm", "haar", "resnet18/avg_pool"]
    assert fc.get("gabor").shape == (8, 64) and fc.get("haar").shape == (8, 2763)
    assert fc.feature_names("gabor")[:2] == ["gabor_f0.5_t0_mean", "gabor_f0.5_t0_var"]
    assert "glcm_Contrast_d1" in fc.feature_names("glcm")
    (entry,) = fc.entries("glcm")
    assert entry.params["quant_range"] == "roi" and entry.params["empty_mask"] == "whole"
    # the cached rows equal the transformer applied to the same ROI images and masks
    from featurekit.data import load_dataset
    from featurekit.handcrafted import GLCMFeatures

    ds = load_dataset(busi_copy8, classes=["benign", "malignant"], roi="mask")
    direct = GLCMFeatures(empty_mask="whole").featurize([ds.image(i) for i in range(8)],
                                                        [ds.mask(i) for i in range(8)])
    np.testing.assert_allclose(fc.get("glcm"), direct, rtol=1e-6)
