"""Resize/normalise on the model's device, autocast precision choices: the CPU runs the same code as CUDA.

Tolerance of the device path against the host path: both compute the same
float32 operations (``uint8 / 255`` as a true division, the same antialiased
resize, crop, normalisation), so they agree to float32 rounding: a few ulp
(~1.2e-7 relative) of inputs bounded by (1 - 0.406) / 0.225 ~ 2.7 -> 1e-5
absolute leaves a 30x margin. The features of one float32 forward of
(nearly) equal inputs are held to the usual 1e-5.
"""

import numpy as np
import pytest
import torch
from conftest import random_dataset

from featurekit import devices
from featurekit.data.dataset import Dataset
from featurekit.data.sources import ArrayImages
from featurekit.devices import amp_choice, resolve_precision, resolve_preprocess
from featurekit.errors import DataError, ResourceError
from featurekit.extraction.decode import stack_of
from featurekit.extraction.device_preprocess import DeviceFeed
from featurekit.extraction.featurizers import default_workers
from featurekit.extraction.memo import request_key
from featurekit.extraction.pipeline import extract
from featurekit.models.preprocessing import Preprocessing
from featurekit.options import OptionError
from featurekit.specs import Weights

torch.set_num_threads(2)
INPUT_ATOL = 1e-5


def _mixed_images(seed=0):
    """Gray and RGB uint8 of several shapes, a 16-bit and a float image, one already at the input size."""
    rng = np.random.default_rng(seed)
    return [
        (rng.random((40, 52)) * 255).astype(np.uint8),
        (rng.random((60, 45, 3)) * 255).astype(np.uint8),
        (rng.random((40, 52)) * 255).astype(np.uint8),
        (rng.random((50, 50)) * 65535).astype(np.uint16),
        rng.random((33, 70)).astype(np.float32),
        (rng.random((32, 32, 3)) * 255).astype(np.uint8),
        (rng.random((60, 45, 3)) * 255).astype(np.uint8),
    ]


def _device_batch(pre, images):
    feed = DeviceFeed(pre, torch.device("cpu"))
    xs = feed.stack([feed(im) for im in images])  # what the workers hand over: a list
    assert isinstance(xs, list)
    return xs, feed.to_device(xs)


@pytest.mark.parametrize("mode", ["crop", "squash"])
@pytest.mark.parametrize("channels", [3, 1])
def test_device_half_equals_host_transform(mode, channels):
    pre = Preprocessing(size=32, resize=36, mode=mode, channels=channels,
                        mean=(0.5,) if channels == 1 else (0.485, 0.456, 0.406),
                        std=(0.25,) if channels == 1 else (0.229, 0.224, 0.225))
    images = _mixed_images()
    xs, got = _device_batch(pre, images)
    want = torch.stack([pre(im) for im in images])
    assert got.shape == want.shape == (len(images), channels, 32, 32)
    torch.testing.assert_close(got, want, rtol=0, atol=INPUT_ATOL)
    assert {x.dtype for x in xs} == {torch.uint8, torch.float32}  # uint8 travels as it is
    # one shape only: the whole batch is one group
    same = [images[1], images[6]]
    torch.testing.assert_close(_device_batch(pre, same)[1], torch.stack([pre(im) for im in same]),
                               rtol=0, atol=INPUT_ATOL)


def test_feed_keeps_uint8_and_sends_the_rest_through_the_host_half():
    pre = Preprocessing(size=32, resize=36)
    feed = DeviceFeed(pre, torch.device("cpu"))
    rgb = np.zeros((5, 6, 3), np.uint8)
    assert feed(rgb).dtype == torch.uint8 and feed(rgb).shape == (3, 5, 6)
    assert feed(np.zeros((5, 6), np.uint16)).dtype == torch.float32
    gray_model = DeviceFeed(Preprocessing(size=32, resize=36, mean=(0.5,), std=(0.25,), channels=1), "cpu")
    assert gray_model(rgb).shape == (1, 5, 6)  # to_gray on the host, float
    assert stack_of(feed) is DeviceFeed.stack and stack_of(pre) is torch.stack


def _mixed_dataset():
    rng = np.random.default_rng(3)
    arrays = [(rng.random((4, 40, 52)) * 255).astype(np.uint8),
              (rng.random((3, 60, 45, 3)) * 255).astype(np.uint8)]
    n = sum(len(a) for a in arrays)
    return Dataset([f"m{i}" for i in range(n)], np.arange(n) % 2, ["benign", "malignant"], ArrayImages(arrays),
                   positive="malignant", name="mixed", source="memory:mixed")


def test_extract_device_preprocess_same_entries_and_values(tmp_path):
    ds = _mixed_dataset()
    kw = dict(weights="none", size=32, batch_size=4, num_workers=0, progress=False, device="cpu")
    layers = ["resnet18:conv3_block2_out,conv5_block2_out"]
    host = extract(ds, layers, cache=tmp_path / "host.h5", **kw)
    dev = extract(ds, layers, cache=tmp_path / "dev.h5", preprocess="device", **kw)
    assert [s.entry_id for s in host.computed] == [s.entry_id for s in dev.computed]  # same computation
    for spec in host.computed:
        np.testing.assert_allclose(dev.get(spec.key), host.get(spec.key), rtol=1e-5, atol=1e-5)
    again = extract(ds, layers, cache=tmp_path / "host.h5", preprocess="device", **kw)
    assert not again.computed  # the host path's entries serve the device path


def test_device_preprocess_skips_a_bad_image_in_the_shared_decode_pass(tmp_path):
    """A batch with an undecodable PNG is redone image by image: device inputs are lists, sliced."""
    from PIL import Image

    from featurekit.data import load_dataset

    rng = np.random.default_rng(5)
    for cls in ("benign", "malignant"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for k in range(3):
            shape = (40 + 4 * k, 52) if cls == "benign" else (60, 45, 3)
            Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(tmp_path / "data" / cls / f"{k}.png")
    bad = tmp_path / "data" / "benign" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated: readable bytes, no image
    ds = load_dataset(tmp_path / "data", classes=["benign", "malignant"])
    kw = dict(weights="none", size=32, batch_size=4, num_workers=0, progress=False, device="cpu", on_error="skip")
    both = extract(ds, ["resnet18:conv3_block2_out"], ["glcm"], cache=tmp_path / "d.h5", preprocess="device", **kw)
    host = extract(ds, ["resnet18:conv3_block2_out"], cache=tmp_path / "h.h5", **kw)
    assert list(both.skipped) == list(host.skipped) == ["benign/1"]
    key = "resnet18/conv3_block2_out"
    np.testing.assert_allclose(both.get(key), host.get(key), rtol=1e-5, atol=1e-5)


def test_extract_device_preprocess_with_worker_processes(tmp_path):
    """The uint8 groups cross the DataLoader's process boundary."""
    ds = random_dataset(n=6, size=40)
    kw = dict(weights="none", size=32, batch_size=3, progress=False, device="cpu")
    host = extract(ds, ["resnet18:conv2_block2_out"], cache=tmp_path / "h.h5", num_workers=0, **kw)
    dev = extract(ds, ["resnet18:conv2_block2_out"], cache=tmp_path / "d.h5", num_workers=2, preprocess="device", **kw)
    key = "resnet18/conv2_block2_out"
    np.testing.assert_allclose(dev.get(key), host.get(key), rtol=1e-5, atol=1e-5)


def test_bf16_autocast_recorded_and_applied_on_cpu(tmp_path):
    ds = random_dataset(n=4, size=40)
    kw = dict(weights="none", size=32, batch_size=4, num_workers=0, progress=False, device="cpu")
    f32 = extract(ds, ["resnet18:conv4_block2_out"], cache=tmp_path / "a.h5", **kw)
    bf16 = extract(ds, ["resnet18:conv4_block2_out"], cache=tmp_path / "b.h5", amp="bf16", **kw)
    assert f32.computed[0].params["precision"] == "float32"  # auto on the CPU: as before
    assert bf16.computed[0].params["precision"] == "amp-bf16"
    assert bf16.computed[0].entry_id != f32.computed[0].entry_id
    a, b = f32.get("resnet18/conv4_block2_out"), bf16.get("resnet18/conv4_block2_out")
    assert not np.array_equal(a, b)  # autocast ran
    # bfloat16 keeps 8 mantissa bits (2^-9 relative per rounding), accumulations stay float32:
    # a few roundings per layer over ~12 layers stay well inside 2^-4 of the features' norm
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 2 ** -4


def test_precision_rules_on_cpu():
    assert resolve_precision(True, "cpu") == "float32"
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision(False, "cpu") == resolve_precision("none", "cpu") == "float32"
    assert resolve_precision("bf16", "cpu") == "amp-bf16"
    assert resolve_precision("float16", "cpu") == "amp-fp16"
    with pytest.raises(DataError, match="unknown amp 'fp8'"):
        amp_choice("fp8")


def test_precision_rules_on_cuda(monkeypatch):
    """The CUDA branch of resolve_precision, run on the CPU with a device that says it is CUDA."""
    monkeypatch.setattr(devices, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision(True, "cuda") == "amp-fp16"  # the default, as before
    assert resolve_precision("bf16", "cuda") == "amp-bf16"
    assert resolve_preprocess("auto", "cuda") == "device"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ResourceError, match="V100 has no bfloat16: use --amp fp16"):
        resolve_precision("bf16", "cuda")


def test_preprocess_choices(tmp_path):
    assert resolve_preprocess("auto", "cpu") == "host"
    assert resolve_preprocess("device", "cpu") == "device"
    with pytest.raises(DataError, match="unknown preprocess 'gpu'"):
        resolve_preprocess("gpu", "cpu")
    with pytest.raises(OptionError, match="preprocess must be one of"):  # before anything is read or built
        extract(random_dataset(n=2), ["resnet18:all"], cache=tmp_path / "c.h5", weights="none", preprocess="gpu")
    assert not (tmp_path / "c.h5").exists()


def test_request_key_tells_precisions_apart_and_keeps_old_keys():
    def key(amp):
        return request_key("resnet18", ["all"], Weights.parse("none"), size=32, mode="crop", pool="gap",
                           dtype="float32", device="auto", amp=amp)

    assert key(True) == key("auto") and key(False) == key("none")
    assert '"amp":true' in key(True).replace(" ", "")  # the key written before bf16 existed
    assert len({key(True), key(False), key("bf16"), key("fp16")}) == 4


def test_default_workers_use_every_core_for_a_gpu(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert default_workers(cuda=True) == 15
    assert default_workers(cuda=False) == 4


def test_cli_amp_and_no_amp():
    from featurekit.cli import build_parser

    parser = build_parser()
    base = ["extract", "phantom", "--layers", "resnet18:all"]
    assert parser.parse_args(base).amp == "auto"
    assert parser.parse_args(base + ["--no-amp"]).amp == "none"  # the same as --amp none
    assert parser.parse_args(base + ["--amp", "bf16"]).amp == "bf16"
    assert parser.parse_args(base + ["--preprocess", "device"]).preprocess == "device"
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--amp", "fp8"])


def test_study_extract_step_takes_amp_and_preprocess():
    from featurekit.studies.steps import OPTIONS, StudyError, build_step

    opts = {**OPTIONS["extract"], "data": "phantom", "layers": ["resnet18:all"]}
    step = build_step("extract", "x", {**opts, "amp": "bf16", "preprocess": "device"}, "study")
    assert step.options["amp"] == "bf16" and step.options["preprocess"] == "device"
    assert build_step("extract", "x", {**opts, "amp": "none"}, "study").options["amp"] == "none"
    with pytest.raises(StudyError, match="amp"):
        build_step("extract", "x", {**opts, "amp": "fp8"}, "study")
