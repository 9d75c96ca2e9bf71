"""Features cached with ImageNet weights are served without the weights file; another file is never served them.

The weights file is one written here in torchvision's hub layout (a random state_dict under the name that
carries its own sha256, as ``tests/_weights_helpers.py`` writes it), and downloads fail: the machine is
offline.
"""

import hashlib
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from _weights_helpers import write_fake_imagenet
from conftest import random_dataset

from featurekit.cache import FeatureCache
from featurekit.errors import WeightsError
from featurekit.extraction.pipeline import extract
from featurekit.orchestration import evaluate_features

SPEC = "mobilenet_v2:features.18"
KEY = "mobilenet_v2/features.18"
KW = dict(weights="imagenet", size=32, batch_size=4, num_workers=0, progress=False)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no network: an absent weights file cannot be downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch"


def _other_file(path, state, monkeypatch):
    """Another mobilenet_v2 weights file (``state`` with one weight changed), under the name carrying its sha256."""
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 1
    tmp = path.with_name("tmp.pth")
    torch.save(state, tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    other = tmp.rename(path.with_name(f"mobilenet_v2-{sha[:8]}.pth"))
    weights = torchvision.models.get_model_weights("mobilenet_v2").DEFAULT
    monkeypatch.setattr(weights.value, "url", f"https://download.pytorch.org/models/{other.name}")
    return other


def test_cached_features_need_no_weights_file(offline, tmp_path, monkeypatch):
    ds = random_dataset(8, 32)
    cache = tmp_path / "c.h5"
    path, _ = write_fake_imagenet(offline, "mobilenet_v2", monkeypatch)
    first = extract(ds, [SPEC], cache=cache, **KW)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [s.attrs["weights_sha256"] for s in first.computed] == [sha]
    state = torch.load(path, weights_only=True)
    path.unlink()

    # the layer spec resolves against what the cache recorded: its rows, nothing computed (nor downloadable)
    again = extract(ds, [SPEC], cache=cache, **KW)
    assert not again.computed and [s.entry_id for s in again.reused] == [s.entry_id for s in first.computed]
    ev = evaluate_features(ds, [SPEC], cache=cache, classifiers=["logreg"], cv="2", n_boot=50,
                           **{k: v for k, v in KW.items() if k != "num_workers"})
    assert len(ev.results) == 1
    assert len(FeatureCache(cache).entries()) == 1

    # rows the cache lacks still need the file: the offline error, not rows of another model
    with pytest.raises(WeightsError, match="not available offline"):
        extract(random_dataset(8, 32, seed=1), [SPEC], cache=tmp_path / "other.h5", **KW)

    # another file present: its own sha256, its own entry -- the old rows are not served for it
    _other_file(path, state, monkeypatch)
    third = extract(ds, [SPEC], cache=cache, **KW)
    assert len(third.computed) == 1 and third.computed[0].attrs["weights_sha256"] != sha
    assert not np.array_equal(third.get(KEY), first.get(KEY))
