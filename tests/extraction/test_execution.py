"""Execution settings fail upfront with a clear error: device, workers, memory of a batch."""

import numpy as np
import pytest
import torch

from featurekit.cli import main
from featurekit.devices import check_workers, resolve_device
from featurekit.errors import DataError, ResourceError
from featurekit.models.memory import activation_bytes, check_memory

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("execution") / "small.npz"
    np.savez(path, train_images=rng.integers(0, 255, (8, 28, 28), dtype=np.uint8), train_labels=np.arange(8) % 2)
    return str(path)


def test_unknown_or_absent_devices_are_clear_errors():
    with pytest.raises(DataError, match=r"unknown device 'banana': use auto, cpu, cuda or cuda:N"):
        resolve_device("banana")
    absent = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    with pytest.raises(DataError, match="CUDA device"):
        resolve_device(absent)
    assert resolve_device("cpu") == "cpu"


def test_worker_counts():
    assert check_workers(0) == 0 and check_workers(3) == 3
    for bad in (-2, 1.5, "two"):
        with pytest.raises(ResourceError, match="integer >= 0"):
            check_workers(bad)


@pytest.mark.parametrize("command", ["extract", "finetune", "predict"])
def test_cli_negative_workers_is_an_argparse_error(command, npz, tmp_path, capsys):
    argv = {"extract": ["extract", npz, "--handcrafted", "gabor"],
            "finetune": ["finetune", npz],
            "predict": ["predict", str(tmp_path / "model.pt"), npz]}[command]
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--workers", "-2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and ">= 0, got -2" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["extract", "finetune"])
def test_cli_unknown_device_lists_valid_devices(command, npz, tmp_path, capsys):
    argv = {"extract": ["extract", npz, "--layers", "resnet18:pool1", "--weights", "none", "--size", "32",
                        "--cache", str(tmp_path / "c.h5")],
            "finetune": ["finetune", npz, "--model", "resnet18", "--weights", "none", "--size", "32",
                         "--out", str(tmp_path / "m.pt")]}[command]
    assert main(argv + ["--device", "banana", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'banana': use auto, cpu, cuda or cuda:N" in err and "Traceback" not in err


def test_activation_estimate_follows_the_layer_shapes():
    # resnet18 at 224: the input (3 x 224^2) and the largest output, conv1's 64 x 112^2, in and out
    assert activation_bytes("resnet18", 224) == 4 * (3 * 224 ** 2 + 2 * 64 * 112 ** 2)
    assert activation_bytes("resnet18", 224, training=True) > 5 * activation_bytes("resnet18", 224)
    # the small-input stem keeps the full resolution: 64 x 28^2 where the ImageNet stem has 64 x 14^2
    assert activation_bytes("resnet18", 28, 1, small_input=True) == 4 * (28 ** 2 + 2 * 64 * 28 ** 2)
    assert check_memory("resnet18", 224, 16, "cpu") < 2 ** 30  # ordinary settings pass


def test_input_size_whose_batch_cannot_fit_fails_upfront(npz, tmp_path, capsys):
    from featurekit.data import load_npz
    from featurekit.extraction.pipeline import extract

    with pytest.raises(ResourceError, match=r"batches of 4 image\(s\) of 20000x20000 px needs about \d+.* GB.*"
                                          r"lower --size or --batch-size"):
        extract(load_npz(npz), ["resnet18:pool1"], cache=tmp_path / "c.h5", weights="none", size=20000,
                batch_size=4, progress=False)
    for argv in (["extract", npz, "--layers", "resnet18:pool1", "--cache", str(tmp_path / "c2.h5")],
                 ["finetune", npz, "--model", "resnet18", "--out", str(tmp_path / "m.pt")]):
        assert main(argv + ["--weights", "none", "--size", "20000", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "20000x20000 px" in err and "lower --size" in err and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


def test_prediction_checks_its_batch_against_free_memory(tmp_path, monkeypatch):
    import featurekit.models.memory as memory
    from featurekit.data import Dataset
    from featurekit.data.sources import ArrayImages
    from featurekit.finetune import FinetuneConfig, finetune
    from featurekit.finetune.predict import Predictor

    images = np.random.default_rng(1).integers(0, 255, (8, 28, 28), dtype=np.uint8)
    ds = Dataset([f"i{k}" for k in range(8)], np.arange(8) % 2, ["a", "b"], ArrayImages([images]), positive="b")
    cfg = FinetuneConfig(model="resnet18", weights="none", small_input=True, size=28, epochs=1, batch_size=4,
                         augment=[], val_fraction=0.25)
    ckpt = finetune(ds, cfg, out=tmp_path / "m.pt", progress=False).checkpoint
    predictor = Predictor.load(ckpt)
    assert predictor.predict_proba(ds, batch_size=4).shape == (8, 2)
    monkeypatch.setattr(memory, "available_memory", lambda device: 1000)
    with pytest.raises(ResourceError, match=r"more than the 0\.0 GB free on cpu"):
        predictor.predict_proba(ds, batch_size=4, device="cpu")
