"""Weights files the tests write: what torchvision would download, made offline."""
import hashlib

import torch
import torchvision


def write_fake_imagenet(torch_home, model_name, monkeypatch, **kwargs):
    """A random state_dict in a temporary TORCH_HOME under the name torchvision would give a file
    with its sha256: the weights' URL is pointed at that name, so the hash rule holds."""
    weights = torchvision.models.get_model_weights(model_name).DEFAULT
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    model = torchvision.models.get_model(model_name, weights=None, **kwargs)
    tmp = folder / "tmp.pth"
    torch.save(model.state_dict(), tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = tmp.rename(folder / f"{model_name}-{sha[:8]}.pth")
    monkeypatch.setattr(weights.value, "url", f"https://download.pytorch.org/models/{path.name}")
    return path, model
