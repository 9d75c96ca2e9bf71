"""No code runs from a weights file, on any path; a hub file is ImageNet only when its hash says so.

Each test writes a pickle whose ``__reduce__`` would create a marker file
under the name a load path expects, and checks that the path refuses it with
a :class:`WeightsError` naming the file, and that the marker never appears.
"""

import hashlib
import pickle

import numpy as np
import pytest
import torch
import torchvision

from featurekit.checkpoint import load_checkpoint, load_weights_file, save_checkpoint
from featurekit.cli import main
from featurekit.errors import WeightsError
from featurekit.models.weights import hash_prefix, load_model, resolve_model

torch.set_num_threads(2)


class _Payload:
    """Unpickling this creates ``marker`` (through ``open``): code run from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


FORMATS = ["legacy", "zip", "pickle"]


def evil_file(path, marker, fmt="legacy"):
    """A crafted weights file in torch's legacy (non-zip) format, its zip format, or a bare pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"features.0.0.weight": _Payload(marker)}
    if fmt == "pickle":
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A temporary TORCH_HOME; returns its hub checkpoints folder and MobileNet-V2's V1 weights enum."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder, torchvision.models.get_model_weights("mobilenet_v2").IMAGENET1K_V1


def test_hash_prefix_follows_torchvision_names():
    assert hash_prefix("mobilenet_v2-b0353104.pth") == "b0353104"
    assert hash_prefix("/x/inception_v3_google-0cc3c7bd.pth") == "0cc3c7bd"
    assert hash_prefix("mine.pth") is None and hash_prefix("resnet18-final.pth") is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_crafted_hub_file_runs_no_code(hub, tmp_path, monkeypatch, fmt):
    """The issue's case: a crafted file under the hub name. Even when its name carries its own hash
    (so the hash rule lets it through), the safe loader refuses it."""
    folder, v1 = hub
    marker = tmp_path / "MARKER"
    tmp = evil_file(folder / "tmp.pth", marker, fmt)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = tmp.rename(folder / f"mobilenet_v2-{sha[:8]}.pth")
    monkeypatch.setattr(v1.value, "url", f"https://download.pytorch.org/models/{path.name}")
    with pytest.raises(WeightsError, match=path.name) as err:
        load_model("mobilenet_v2", "imagenet:IMAGENET1K_V1", size=32)
    assert "never unpickles" in str(err.value) and "weights_only=False" not in str(err.value)
    assert not marker.exists()


def test_crafted_file_under_the_real_hub_name_is_refused_by_its_hash(hub, tmp_path):
    folder, _ = hub
    marker = tmp_path / "MARKER"
    path = evil_file(folder / "mobilenet_v2-b0353104.pth", marker)
    with pytest.raises(WeightsError, match="b0353104") as err:
        load_model("mobilenet_v2", "imagenet", size=32)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_random_weights_under_the_imagenet_name_are_never_recorded_as_imagenet(hub):
    folder, _ = hub
    torch.manual_seed(0)
    path = folder / "mobilenet_v2-b0353104.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(WeightsError) as err:
        resolve_model("mobilenet_v2", "imagenet", size=32)
    message = str(err.value)
    assert str(path) in message and "starts with b0353104" in message and found[:8] in message
    assert "--weights" in message  # what to do: delete it, or use it as a plain file
    # as a plain file it loads, and is recorded as what it is
    ref = resolve_model("mobilenet_v2", str(path), size=32)
    assert ref.weights == "file:mobilenet_v2-b0353104.pth" and ref.weights_sha256 == found


def test_the_real_imagenet_file_still_loads(torch_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    ref = resolve_model("mobilenet_v2", "imagenet", size=32)
    assert ref.weights == "imagenet:IMAGENET1K_V1" and ref.weights_sha256.startswith("b0353104")


@pytest.mark.parametrize("fmt", FORMATS)
def test_weights_file_runs_no_code(tmp_path, fmt):
    marker = tmp_path / "MARKER"
    path = evil_file(tmp_path / "w.pth", marker, fmt)
    with pytest.raises(WeightsError, match="w.pth"):
        load_model("resnet18", str(path), size=32)
    with pytest.raises(WeightsError, match="w.pth"):
        load_weights_file(path, mmap=True)
    assert not marker.exists()


def _crafted_checkpoint(tmp_path, marker):
    """A featurekit checkpoint of a real small model whose meta hides the payload."""
    model = torchvision.models.resnet18(num_classes=2)
    good = save_checkpoint(tmp_path / "good.pt", {"name": "resnet18", "num_classes": 2}, model.state_dict(),
                           {"class_names": ["0", "1"]})
    obj = torch.load(good, weights_only=True)
    obj["meta"]["class_names"] = _Payload(marker)
    path = tmp_path / "model.pt"
    torch.save(obj, path)
    return path


def test_checkpoint_paths_run_no_code(tmp_path):
    from featurekit.finetune import FinetuneConfig
    from featurekit.finetune.modeling import starting_point
    from featurekit.finetune.predict import Predictor

    marker = tmp_path / "MARKER"
    path = _crafted_checkpoint(tmp_path, marker)
    with pytest.raises(WeightsError, match="model.pt"):
        load_checkpoint(path)
    with pytest.raises(WeightsError, match="model.pt"):
        Predictor.load(path)  # featurekit predict
    with pytest.raises(WeightsError, match="model.pt"):  # finetune --weights / pipeline stages
        starting_point(FinetuneConfig(model="resnet18", weights=str(path), size=32), ["0", "1"])
    assert not marker.exists()


def test_cli_predict_and_finetune_refuse_crafted_files_without_traceback(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    path = _crafted_checkpoint(tmp_path, marker)
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, train_images=rng.integers(0, 255, (8, 28, 28), dtype=np.uint8),
             train_labels=np.arange(8) % 2)
    assert main(["predict", str(path), str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and "Traceback" not in err
    pipeline = tmp_path / "p.json"
    pipeline.write_text('{"stages": [{"name": "s", "data": "%s", "model": "resnet18", "weights": "%s", '
                        '"size": 28, "epochs": 1, "out": "%s"}]}' % (data, path, tmp_path / "o.pt"))
    assert main(["finetune", "--pipeline", str(pipeline), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "o.pt").exists()


def test_checkpoint_with_a_flipped_weight_bit_is_refused_on_every_load_path(tmp_path):
    """A checkpoint is used only when its weights hash to the state_sha256 it recorded."""
    from featurekit.checkpoint import state_dict_sha256
    from featurekit.finetune import FinetuneConfig
    from featurekit.finetune.modeling import starting_point
    from featurekit.finetune.predict import Predictor

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2)
    sha = state_dict_sha256(model.state_dict())
    path = save_checkpoint(tmp_path / "model.pt", {"name": "resnet18", "num_classes": 2}, model.state_dict(),
                           {"class_names": ["0", "1"], "state_sha256": sha, "lineage": [{"state_sha256": sha}]})
    assert load_checkpoint(path)["meta"]["state_sha256"] == sha  # intact: loads
    weight = model.state_dict()["layer1.0.conv1.weight"].numpy().tobytes()
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(weight)
    assert at > 0
    raw[at + 101] ^= 0x01  # one bit of one float32 weight
    path.write_bytes(bytes(raw))
    for load in (lambda: load_checkpoint(path), lambda: load_weights_file(path), lambda: Predictor.load(path),
                 lambda: starting_point(FinetuneConfig(model="resnet18", weights=str(path), size=32), ["0", "1"])):
        with pytest.raises(WeightsError, match=r"model\.pt: its weights do not match the state_sha256"):
            load()
