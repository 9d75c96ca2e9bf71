"""Per-layer maps: the same hooks and layer names as the features, cached and verified like them.

Random initialisation only (nothing is downloaded); tiny phantom images with lesion masks.
"""

import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from featurekit.cache import FeatureCache
from featurekit.data.phantom import make_phantom
from featurekit.errors import LayerError
from featurekit.extraction.maps import MAX_SIDE, layer_maps, map_grid
from featurekit.models.weights import load_model

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

SIZE = 80  # mobilenet_v2: features.1 is 40x40 (pooled to 32x32), features.6 10x10, features.14 3x3


@pytest.fixture(scope="module")
def data():
    return make_phantom(n_per_class=3, size=SIZE, seed=1)


def _direct(model, module, x):
    """The layer's output by a hook of our own on the same model."""
    seen = {}
    handle = dict(model.named_modules())[module].register_forward_hook(
        lambda _m, _i, out: seen.setdefault("out", out.detach().clone()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["out"]


def test_mean_and_probe_maps_match_a_direct_computation_with_hooks(data, tmp_path):
    layers = "mobilenet_v2:features.1,features.6,features.14"
    mean = layer_maps(data, layers, "mean", weights="none", size=SIZE, cache=tmp_path / "maps.h5",
                      features_cache=tmp_path / "features.h5")
    probe = layer_maps(data, layers, "probe", weights="none", size=SIZE, cache=tmp_path / "maps.h5",
                       features_cache=tmp_path / "features.h5")
    lm = load_model("mobilenet_v2", "none", size=SIZE)
    x = torch.stack([lm.preprocessing(data.image(i)) for i in range(len(data))])
    gap = FeatureCache(tmp_path / "features.h5")
    for layer in mean.layers:
        act = _direct(lm.model, layer.module, x)
        grid = map_grid(layer)
        assert grid == (min(act.shape[2], MAX_SIDE), min(act.shape[3], MAX_SIDE))
        want = F.adaptive_avg_pool2d(act.mean(dim=1, keepdim=True), grid)[:, 0].numpy()
        got = mean.maps[layer.name]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
        v, b = probe.probe[layer.name]
        cam = torch.einsum("nchw,c->nhw", act.double(), torch.as_tensor(v))
        want_cam = F.adaptive_avg_pool2d(cam[:, None] + b, grid)[:, 0].numpy()
        np.testing.assert_allclose(probe.maps[layer.name], want_cam, rtol=1e-4, atol=1e-5 * np.abs(want_cam).max())
        # the map spreads the probe's score over the positions: its mean is the decision value
        feats = gap.get(f"mobilenet_v2/{layer.name}").astype(np.float64)
        fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats, data.labels == 1)
        np.testing.assert_allclose(cam.mean(dim=(1, 2)).numpy() + b, fitted.decision_function(feats),
                                   rtol=1e-4, atol=1e-4)
    assert mean.maps["features.1"].shape == (6, 32, 32) and mean.maps["features.14"].shape == (6, 3, 3)


def test_lesion_grids_follow_the_model_geometry(data, tmp_path):
    res = layer_maps(data, "mobilenet_v2:features.6", weights="none", size=SIZE, cache=tmp_path / "m.h5")
    lesion = res.lesion["features.6"]
    masks = np.stack([data.mask(i) for i in range(len(data))]).astype(np.float32)
    # the input is already SIZE x SIZE: no resize, so the cells are plain averages of the mask
    want = F.adaptive_avg_pool2d(torch.from_numpy(masks)[:, None], (10, 10))[:, 0].numpy()
    np.testing.assert_allclose(lesion, want, atol=1e-6)


def test_cached_maps_are_reused_and_a_damaged_entry_is_recomputed_not_served(data, tmp_path):
    path = tmp_path / "maps.h5"
    first = layer_maps(data, "mobilenet_v2:features.2,features.6", weights="none", size=SIZE, cache=path)
    assert len(first.computed) == 4 and not first.reused  # two maps and the lesion grids of their two grids
    again = layer_maps(data, "mobilenet_v2:features.2,features.6", weights="none", size=SIZE, cache=path)
    assert not again.computed and len(again.reused) == len(first.computed)
    spec = next(s for s in first.computed if s.key.endswith("features.6/mean"))
    with h5py.File(path, "r+") as f:
        f[f"features/{spec.key}/{spec.entry_id}"][0, :5] = 123.0
    with pytest.raises(Exception, match=spec.entry_id):
        FeatureCache(path).get(spec.key, entry_id=spec.entry_id)
    with pytest.warns(UserWarning, match="damaged"):
        fixed = layer_maps(data, "mobilenet_v2:features.2,features.6", weights="none", size=SIZE, cache=path)
    assert [s.key for s in fixed.computed] == [spec.key]
    for name in ("features.2", "features.6"):
        np.testing.assert_array_equal(fixed.maps[name], first.maps[name])


def test_vit_maps_lie_on_the_patch_grid(tmp_path):
    ds = make_phantom(n_per_class=1, size=64, seed=2)
    res = layer_maps(ds, "timm-vit_tiny_patch16_224:blocks.0,blocks.11", weights="none", size=64,
                     cache=tmp_path / "vit.h5")
    lm = load_model("timm-vit_tiny_patch16_224", "none", size=64)
    x = torch.stack([lm.preprocessing(ds.image(i)) for i in range(len(ds))])
    tokens = _direct(lm.model, "blocks.11", x)
    prefix = res.layers[-1].prefix_tokens
    want = tokens[:, prefix:].mean(dim=2).reshape(2, 4, 4).numpy()
    assert res.maps["blocks.0"].shape == res.maps["blocks.11"].shape == (2, 4, 4)
    np.testing.assert_allclose(res.maps["blocks.11"], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_maps_of_the_input_or_of_two_models_are_refused_before_any_image_is_read(data, tmp_path):
    with pytest.raises(LayerError, match="input"):
        layer_maps(data, "mobilenet_v2:input,features.2", weights="none", size=SIZE, cache=tmp_path / "a.h5")
    with pytest.raises(LayerError, match="one model"):
        layer_maps(data, ["mobilenet_v2:features.2", "resnet18:conv1"], weights="none", size=SIZE,
                   cache=tmp_path / "a.h5")
    with pytest.raises(LayerError, match="kind"):
        layer_maps(data, "mobilenet_v2:features.2", "scorecam", weights="none", size=SIZE, cache=tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_explain_command_writes_the_lesion_energy_and_the_panel_the_report_reads(tmp_path, monkeypatch, capsys):
    from featurekit.cli import main
    from featurekit.evaluation.results.runfolder import read_run
    from featurekit.report.figures import Figure
    from featurekit.report.maps import ENERGY_CSV, EXAMPLES_NPZ, maps_items
    from featurekit.report.tables import Table

    monkeypatch.setenv("FEATUREKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    data = ["phantom", "--positive", "malignant", "--subsample", "12"]
    assert main(["evaluate", *data, "--features", "mobilenet_v2:features.2,features.6", "--weights", "none",
                 "--size", "48", "--classifier", "logreg", "--cv", "2", "--n-boot", "50", "--out", str(run)]) == 0
    capsys.readouterr()
    # other data than the run's (another subsample) is refused, naming the run, before any map is computed
    assert main(["explain", str(run), "phantom", "--positive", "malignant", "--subsample", "10"]) == 2
    assert "not the data of run" in capsys.readouterr().err
    assert not (run / ENERGY_CSV).exists()

    assert main(["explain", str(run), *data, "--n-boot", "50", "--gabor"]) == 0
    assert "4 entries computed" in capsys.readouterr().out  # two maps, two lesion grids (12x12, 6x6)
    energy = pd.read_csv(run / ENERGY_CSV)
    assert set(energy["layer"]) == {"features.2", "features.6", "gabor"}
    assert set(energy["kind"]) == {"probe", "energy"}
    assert energy.loc[energy["layer"] == "gabor", "layer_index"].isna().all()
    assert set(energy["class"]) == {"benign", "malignant", "all"}
    # (NaN: no image of a class has evidence for it anywhere in that layer's map)
    assert energy["lesion_energy"].dropna().between(0, 1).all() and energy["area_fraction"].between(0, 1).all()
    with np.load(run / EXAMPLES_NPZ.format(kind="probe"), allow_pickle=False) as ex:
        assert ex["images"].shape[0] == ex["maps"].shape[1] == len(ex["ids"]) >= 2
        assert set(ex["classes"]) <= {"benign", "malignant"} and list(ex["layers"]) == ["features.2", "features.6"]
    items = maps_items([read_run(run)])
    assert [type(i) for i in items] == [Figure, Table, Figure]
    from featurekit.report.build import build_report

    page = build_report(run).read_text()
    section = page[page.index("Where each layer looks"):page.index("All results")]
    assert section.count("data:image/png;base64") == 2 and "features.6" in section and "gabor" in section
    assert main(["explain", str(run), *data, "--n-boot", "50"]) == 0  # everything cached: nothing computed
    assert "0 entries computed, 4 reused" in capsys.readouterr().out
    # ... and with nothing to compute, no torch is imported (a fresh process: this one has it)
    code = ("import sys; from featurekit.cli import main; "
            f"rc = main(['explain', {str(run)!r}, 'phantom', '--positive', 'malignant', '--subsample', '12', "
            "'--n-boot', '50']); assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_gradcam_of_a_linear_head_on_pooled_features_is_its_class_activation_map(data, tmp_path):
    # MobileNet-V2's head is a linear layer on the mean of features.18: there Grad-CAM = relu(CAM) / (H W)
    res = layer_maps(data, "mobilenet_v2:features.6,features.18", "gradcam", weights="none", size=SIZE,
                     target=7, cache=tmp_path / "g.h5")
    lm = load_model("mobilenet_v2", "none", size=SIZE)
    x = torch.stack([lm.preprocessing(data.image(i)) for i in range(len(data))])
    act = _direct(lm.model, "features.18", x)
    cam = torch.einsum("nchw,c->nhw", act, lm.model.classifier[1].weight[7].detach())
    want = F.relu(cam).numpy() / (act.shape[2] * act.shape[3])
    assert res.maps["features.18"].shape == want.shape and want.max() > 0
    np.testing.assert_allclose(res.maps["features.18"], want, rtol=1e-4, atol=1e-5 * want.max())
    assert (res.maps["features.6"] >= 0).all() and res.maps["features.6"].max() > 0
    # without a head trained for the data's classes there is no class to explain: refused, not guessed
    with pytest.raises(LayerError, match="fine-tuned checkpoint"):
        layer_maps(data, "mobilenet_v2:features.18", "gradcam", weights="none", size=SIZE, cache=tmp_path / "g.h5")


def test_gradcam_of_a_finetuned_checkpoint_explains_each_images_own_class(tmp_path):
    from featurekit.finetune import FinetuneConfig, finetune

    ds = make_phantom(n_per_class=4, size=32, seed=3)
    cfg = FinetuneConfig(model="resnet18", weights="none", small_input=True, size=32, epochs=1, batch_size=8,
                         optimizer="adam", lr=1e-3, scheduler="none", augment="flip", val_fraction=0.25,
                         patience=0, device="cpu")
    finetune(ds, cfg, out=tmp_path / "ft.pt", progress=False)
    res = layer_maps(ds, "resnet18:conv5_block2_out", "gradcam", weights=str(tmp_path / "ft.pt"),
                     cache=tmp_path / "g.h5")
    lm = load_model("resnet18", str(tmp_path / "ft.pt"))
    x = torch.stack([lm.preprocessing(ds.image(i)) for i in range(len(ds))])
    act = _direct(lm.model, res.layers[0].module, x)
    head = [m for m in lm.model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.detach()
    own = head[torch.as_tensor(np.array(ds.labels))]  # the checkpoint's classes are the data's, in the same order
    want = F.relu(torch.einsum("nchw,nc->nhw", act, own)).numpy() / (act.shape[2] * act.shape[3])
    np.testing.assert_allclose(res.maps["conv5_block2_out"], want, rtol=1e-4, atol=1e-5 * want.max())


def test_gabor_energy_on_the_lesion_is_the_handcrafted_counterpart(tmp_path):
    from featurekit.data.dataset import Dataset
    from featurekit.evaluation.stats.lesion_energy import lesion_energy
    from featurekit.extraction.texture_maps import GRID, cell_means, gabor_maps

    size, lesion = 96, np.zeros((96, 96), bool)
    lesion[24:72, 24:72] = True  # a quarter of the image, on cell edges of the 32 x 32 grid
    stripes = (127 + 100 * np.sin(2 * np.pi * 0.25 * np.arange(size)))[None, :].repeat(size, 0)
    inside = np.where(lesion, stripes, 127).astype(np.uint8)   # texture on the lesion only
    outside = np.where(lesion, 127, stripes).astype(np.uint8)  # texture around it only
    ds = Dataset.from_arrays(np.stack([inside, outside]), [0, 1], ["benign", "malignant"],
                             masks=np.stack([lesion, lesion]), positive="malignant", name="stripes")
    res = gabor_maps(ds, frequencies=[0.25], orientations=4, cache=tmp_path / "maps.h5")
    assert res.maps["gabor"].shape == (2, *GRID) and len(res.computed) == 2
    np.testing.assert_allclose(res.lesion["gabor"], np.stack([cell_means(lesion)] * 2))
    score = lesion_energy(res.maps["gabor"], res.lesion["gabor"])
    assert score[0] > 0.9 and score[1] < 0.1  # the filter's reach blurs the edge a little, both ways
    again = gabor_maps(ds, frequencies=[0.25], orientations=4, cache=tmp_path / "maps.h5")
    assert not again.computed and len(again.reused) == 2
    np.testing.assert_array_equal(again.maps["gabor"], res.maps["gabor"])
