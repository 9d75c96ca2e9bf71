"""Fine-tuning: real ImageNet MobileNet-V2 on BUSI, two-stage transfer, small-input ResNet-18, errors.

Everything is small (12-40 images, 28-64 px, 2-4 epochs) so the file runs in
about a minute on two CPU cores.
"""

import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_medmnist

from featurekit.checkpoint import load_checkpoint, save_checkpoint
from featurekit.data import load_dataset, load_mias, load_npz
from featurekit.errors import FeaturekitError, LayerError, WeightsError
from featurekit.evaluation.stats.metrics import METRICS
from featurekit.finetune import (
    FinetuneConfig,
    HeadMismatchError,
    Predictor,
    carve_validation,
    cross_validate,
    finetune,
    freeze,
    set_train_mode,
    starting_point,
)
from featurekit.finetune.augment import BaseImages, View
from featurekit.finetune.freezing import resolve_frozen_modules
from featurekit.finetune.results import CURVE_COLUMNS, PREDICTION_COLUMNS
from featurekit.models.weights import file_sha256, load_model

torch.set_num_threads(2)

# torch's no-op notices when a checkpoint is validated on the meta device (featurekit.models.weights)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _torch_home(torch_home):
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(torch_home)
    yield
    if old is None:
        os.environ.pop("TORCH_HOME", None)
    else:
        os.environ["TORCH_HOME"] = old


def _first_per_class(ds, k):
    idx = np.concatenate([np.flatnonzero(ds.labels == c)[:k] for c in range(len(ds.class_names))])
    return ds.subset(np.sort(idx))


@pytest.fixture(scope="module")
def busi_dataset12(busi_dir):
    ds = load_dataset(busi_dir, classes=["benign", "malignant"], positive="malignant")
    return _first_per_class(ds, 6)


@pytest.fixture(scope="module")
def mias12(mias_dir):
    return _first_per_class(load_mias(mias_dir), 4)  # benign, malignant, normal: 4 films each


@pytest.fixture(scope="module")
def npz28(tmp_path_factory):
    return write_medmnist(tmp_path_factory.mktemp("npz") / "breastmnist_like.npz")


def _small_resnet(**kw):
    # on the CPU: training there is bitwise deterministic in one process, which the equality tests rely on
    base = dict(model="resnet18", weights="none", small_input=True, size=28, epochs=2, batch_size=8,
                optimizer="adam", lr=1e-3, scheduler="none", augment="flip", val_fraction=0.25, patience=0,
                device="cpu")
    return FinetuneConfig(**{**base, **kw})


def _probs(model, pre, ds):
    x = torch.stack([pre(ds.image(i)) for i in range(len(ds))])
    with torch.no_grad():
        return torch.softmax(model.eval()(x), 1)


# ---------------------------------------------------------------------------- real weights on BUSI
@pytest.fixture(scope="module")
def mnv2_busi(busi_dataset12, tmp_path_factory):
    cfg = FinetuneConfig(model="mobilenet_v2", weights="imagenet", size=64, epochs=4, batch_size=12,
                         optimizer="adam", lr=1e-3, scheduler="none", augment="none", freeze_until="features.6",
                         val_fraction=0.25, patience=0, monitor="val_auc")
    ckpt = tmp_path_factory.mktemp("mnv2") / "busi_mnv2.pt"
    result = finetune(busi_dataset12, cfg, out=ckpt, progress=False)
    return cfg, result, ckpt


def test_training_loss_decreases(mnv2_busi):
    _, result, _ = mnv2_busi
    losses = [h["train_loss"] for h in result.train.history]
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    assert all(np.isfinite(h["val_loss"]) for h in result.train.history)


def test_frozen_parameters_and_batchnorm_statistics_unchanged(mnv2_busi):
    _, result, _ = mnv2_busi
    imagenet = load_model("mobilenet_v2", "imagenet").model.state_dict()
    tuned = result.model.state_dict()
    frozen = result.train.frozen
    assert frozen.layers == ["features.6"] and frozen.batchnorms
    frozen_keys = [k for k in tuned if k.startswith(tuple(f"features.{i}." for i in range(7)))]
    assert any(k.endswith("running_mean") for k in frozen_keys)
    for k in frozen_keys:  # weights, biases, running_mean/var, num_batches_tracked
        assert torch.equal(tuned[k], imagenet[k]), k
    changed = [k for k in tuned if k.startswith("features.7.") and not torch.equal(tuned[k], imagenet[k])]
    assert changed, "layers after the frozen part should have trained"
    assert any(k.endswith("running_mean") for k in changed), "unfrozen BatchNorm statistics should update"


def test_frozen_batchnorm_stays_in_eval_mode(busi_dataset12):
    cfg = FinetuneConfig(model="mobilenet_v2", weights="imagenet", size=64, freeze_until="features.3")
    start = starting_point(cfg, busi_dataset12.class_names)
    frozen = freeze(start.model, start.table, cfg.freeze_until)
    set_train_mode(start.model, frozen)
    bn = dict(start.model.named_modules())
    assert not bn["features.0.1"].training and not bn["features.3.conv.3"].training
    assert bn["features.4.conv.0.1"].training and start.model.training
    assert not start.model.features[0][0].weight.requires_grad
    assert start.model.features[4].conv[0][0].weight.requires_grad


def test_checkpoint_reload_gives_identical_predictions(mnv2_busi, busi_dataset12):
    cfg, result, ckpt = mnv2_busi
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    meta = raw["meta"]
    for key in ("preprocessing", "class_names", "positive", "layer_table", "training", "metrics", "lineage",
                "history", "state_sha256"):
        assert key in meta, key
    assert meta["class_names"] == ["benign", "malignant"] and meta["positive"] == "malignant"
    assert raw["arch"]["name"] == "mobilenet_v2" and raw["arch"]["num_classes"] == 2
    assert [r["name"] for r in meta["layer_table"]][:3] == ["input", "features.0", "features.1"]
    assert meta["training"]["freeze_until"] == "features.6"
    before = _probs(result.model, result.preprocessing, busi_dataset12)
    lm = load_model("mobilenet_v2", str(ckpt))
    after = _probs(lm.model, lm.preprocessing, busi_dataset12)
    assert torch.equal(before, after)
    assert lm.table.names == [r["name"] for r in meta["layer_table"]]
    table = Predictor.load(ckpt).predict(busi_dataset12, device="cpu")  # CPU float32, as `before` (no AMP)
    assert list(table.columns) == ["id", "true_label", "p_benign", "p_malignant", "predicted", "y_true"]
    # other batches than `before`: float32 convolutions blocked differently, ~1e-6 on the logits
    np.testing.assert_allclose(table[["p_benign", "p_malignant"]].to_numpy(), before.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- two-stage transfer
def test_two_stage_mias_to_busi_records_lineage(mias12, busi_dataset12, tmp_path):
    stage1 = FinetuneConfig(model="mobilenet_v2", weights="imagenet", size=64, epochs=2, batch_size=12,
                            optimizer="adam", lr=1e-3, scheduler="none", augment="flip", freeze_until="features.6",
                            patience=0)
    ck1 = tmp_path / "stage1_mias.pt"
    r1 = finetune(mias12, stage1, out=ck1, progress=False)
    assert r1.arch["num_classes"] == 3 and r1.meta["class_names"] == ["benign", "malignant", "normal"]

    stage2 = stage1.replace(weights=str(ck1), freeze_until="features.3")
    ck2 = tmp_path / "stage2_busi.pt"
    r2 = finetune(busi_dataset12, stage2, out=ck2, progress=False)
    assert r2.start.head == "new" and r2.arch["num_classes"] == 2
    lineage = load_checkpoint(ck2)["meta"]["lineage"]
    assert [s["stage"] for s in lineage] == [1, 2]
    assert lineage[0]["dataset_fingerprint"] == mias12.fingerprint()
    assert lineage[0]["init_weights"].startswith("imagenet") and lineage[0]["class_names"] == mias12.class_names
    assert lineage[1]["dataset_fingerprint"] == busi_dataset12.fingerprint()
    assert lineage[1]["init_weights_sha256"] == file_sha256(ck1)
    assert lineage[1]["init_weights"] == f"file:{ck1.name}" and lineage[1]["head"] == "new"
    # the stage-1 backbone is what stage 2 started from: its frozen part is still stage 1's
    s1 = load_checkpoint(ck1)["state_dict"]
    s2 = r2.model.state_dict()
    assert torch.equal(s2["features.2.conv.0.0.weight"], s1["features.2.conv.0.0.weight"])

    # same class names: the stage-1 head is kept (auto); asking to keep it for 2 classes fails
    busi3 = _first_per_class(load_dataset(busi_dataset12.source), 2)
    kept = starting_point(stage1.replace(weights=str(ck1)), busi3.class_names)
    assert kept.head == "kept"
    assert torch.equal(kept.model.classifier[1].weight, s1["classifier.1.weight"])
    with pytest.raises(HeadMismatchError, match="stage1_mias.pt"):
        starting_point(stage1.replace(weights=str(ck1), head_policy="keep"), busi_dataset12.class_names)


# ---------------------------------------------------------------------------- small input, CV, extraction
def test_small_input_resnet18_cv_run_folder(npz28, tmp_path):
    ds = load_npz(npz28, positive="1")
    cfg = _small_resnet(freeze="conv2_*", epochs=1)
    res = cross_validate(ds, cfg, "predefined", out=tmp_path / "run", n_boot=200, keep_estimators=True,
                         progress=False, command="test")
    run = tmp_path / "run"
    assert res.run_dir == run and res.folds[0]["checkpoint"].endswith("r0_f0.pt")
    assert list(res.estimators) == [(0, 0)]  # the fold's model kept, as evaluation's keep_estimators
    saved = load_checkpoint(run / "checkpoints" / "r0_f0.pt")["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in res.estimators[(0, 0)].state_dict().items())
    for name in ("results.csv", "results.json", "predictions.csv", "provenance.json", "training_curves.csv",
                 "training_curves.png"):
        assert (run / name).is_file(), name
    rows = pd.read_csv(run / "results.csv")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["feature_set"] == "finetune:resnet18" and row["classifier"] == "finetuned"
    assert row["kind"] == "finetuned" and row["model"] == "resnet18" and row["protocol"] == "predefined split"
    assert row["n"] == 8 and row["n_pos"] == 4
    for m in METRICS:
        for col in (m, f"{m}_sd", f"{m}_ci_lo", f"{m}_ci_hi"):
            assert col in rows.columns, col
        if m not in ("roc_auc", "pr_auc"):
            assert f"{m}_youden" in rows.columns and f"{m}_youden_ci_hi" in rows.columns
    preds = pd.read_csv(run / "predictions.csv")
    assert list(preds.columns) == PREDICTION_COLUMNS
    assert sorted(preds["id"]) == [f"test/{i:04d}" for i in range(8)]
    assert set(preds["y_true"]) == {0, 1} and preds["threshold"].nunique() == 1
    curves = pd.read_csv(run / "training_curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS and set(curves["split"]) == {"train", "val"}
    import json

    prov = json.loads((run / "provenance.json").read_text())
    assert prov["dataset"]["fingerprint"] == ds.fingerprint() and prov["positive"] == "1"
    assert prov["cv"] == "predefined" and prov["protocol"] == "predefined split"
    assert prov["seed"] == 0 and prov["command"] == "test" and prov["validation"] == "predefined val"
    assert prov["weights"] == "none:seed=0" and len(prov["weights_sha256"]) == 64
    assert "torch" in prov["versions"] and prov["folds"][0]["threshold_on"] == "val"
    assert prov["folds"][0]["n_val"] == 8 and prov["folds"][0]["n_train"] == 24
    # the fold checkpoint: small-input stem, 1 channel, loads in extraction with its layer table
    ckpt = run / "checkpoints" / "r0_f0.pt"
    arch = load_checkpoint(ckpt)["arch"]
    assert arch["small_input"] and arch["in_chans"] == 1
    lm = load_model("resnet18", str(ckpt))
    assert lm.model.conv1.kernel_size == (3, 3) and lm.model.conv1.in_channels == 1
    assert lm.preprocessing.channels == 1 and lm.preprocessing.size == 28
    assert lm.table.get("conv5_block2_out").shape == (512, 4, 4)


def test_extract_features_from_finetuned_mlp_checkpoint(npz28, tmp_path):
    from featurekit.extraction.activations import ActivationExtractor
    from featurekit.extraction.pipeline import extract

    ds = load_npz(npz28, positive="1")
    res = finetune(ds, _small_resnet(head="mlp", hidden=32, dropout=0.3, epochs=1), out=tmp_path / "mlp.pt",
                   progress=False)
    assert res.meta["metrics"]["n_test"] == 8 and "test" in res.meta["metrics"]
    arch = load_checkpoint(tmp_path / "mlp.pt")["arch"]
    assert arch["head"] == "mlp" and arch["hidden"] == 32 and arch["dropout"] == 0.3
    out = extract(ds, ["resnet18:conv5_*"], weights=str(tmp_path / "mlp.pt"), cache=tmp_path / "feats.h5",
                  progress=False, num_workers=0, device="cpu")
    feats = out.get("resnet18/conv5_block2_out")
    assert feats.shape == (len(ds), 512)
    lm = out.models["resnet18"]
    assert lm.weights == "file:mlp.pt"
    x = torch.stack([lm.preprocessing(ds.image(i)) for i in range(4)])
    with ActivationExtractor(res.model, [lm.table.get("conv5_block2_out")], "gap") as ex:
        want = ex(x)["conv5_block2_out"].numpy()
    np.testing.assert_allclose(feats[:4], want, rtol=1e-4, atol=1e-5)


def test_kfold_cv_validation_is_carved_from_training_fold(npz28, tmp_path):
    ds = load_npz(npz28, split="train", positive="1")
    res = cross_validate(ds, _small_resnet(epochs=1), "2", n_boot=50, progress=False)
    preds = res.predictions
    assert sorted(preds["id"]) == sorted(ds.ids)  # every image tested once in the repeat
    assert preds.groupby("fold")["threshold"].nunique().max() == 1
    for f in res.folds:
        assert f["n_train"] + f["n_val"] + f["n_test"] == len(ds) and f["n_val"] > 0
    assert len(res.rows) == 1 and res.rows.iloc[0]["n_folds"] == 2
    assert len(res.curves) == 2 * 2  # 2 folds x 1 epoch x (train, val)


def test_carve_validation_is_stratified_and_disjoint():
    labels = np.array([0] * 30 + [1] * 10)
    rows = np.arange(5, 40)
    tr, va = carve_validation(labels, rows, 0.2, seed=3)
    assert set(tr) | set(va) == set(rows) and not set(tr) & set(va)
    assert set(np.unique(labels[va])) == {0, 1}
    tr2, va2 = carve_validation(labels, rows, 0.2, seed=3)
    assert np.array_equal(va, va2)
    groups = np.repeat(np.arange(20), 2)
    tr, va = carve_validation(labels, np.arange(40), 0.25, seed=0, groups=groups)
    assert not set(groups[tr]) & set(groups[va])


def test_run_folder_reads_back_and_rows_recompute_from_predictions(tmp_path, npz28):
    from featurekit.evaluation.results.runfolder import read_run
    from featurekit.evaluation.results.summary import summarise_predictions

    ds = load_npz(npz28, split="train", positive="1")
    res = cross_validate(ds, _small_resnet(epochs=1), "2", out=tmp_path / "r", n_boot=100, progress=False)
    run = read_run(tmp_path / "r")
    assert len(run.predictions) == len(res.predictions) == len(ds)
    assert run.results.iloc[0]["kind"] == "finetuned" and run.training_curves is not None
    again = summarise_predictions(run.predictions, protocol=run.results.iloc[0]["protocol"], n_boot=100)
    for col in ("roc_auc", "roc_auc_ci_lo", "accuracy_youden", "balanced_accuracy_sd"):
        a, b = run.results.iloc[0][col], again.iloc[0][col]
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b), col
    assert run.provenance["protocol"] == "stratified 2-fold" and run.provenance["positive"] == "1"


def test_freeze_until_includes_stem_and_list_freezes_only_the_layers():
    lm = load_model("resnet18", "none", size=32)
    mods, names = resolve_frozen_modules(lm.model, lm.table, until="conv2_block2_out")
    assert {"conv1", "bn1", "layer1.0.conv1", "layer1.1.bn2"} <= set(mods)
    assert not any(m.startswith("layer2") for m in mods)
    mods, names = resolve_frozen_modules(lm.model, lm.table, layers="conv2_*,conv3_block1_out")
    assert "conv1" not in mods and "layer2.0.downsample.1" in mods and "layer2.1.conv1" not in mods
    assert names == ["conv2_block1_out", "conv2_block2_out", "conv3_block1_out"]
    mods, _ = resolve_frozen_modules(lm.model, lm.table, until="input")
    assert mods == []


def test_frozen_list_batchnorm_statistics_bit_identical_resnet(npz28):
    ds = load_npz(npz28, split="train", positive="1")
    cfg = _small_resnet(freeze="conv2_*", epochs=1)
    start = starting_point(cfg, ds.class_names)
    before = {k: v.clone() for k, v in start.model.state_dict().items()}
    res = finetune(ds, cfg, progress=False)
    after = res.model.state_dict()
    for k in before:
        if k.startswith("layer1."):
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # not frozen: moved
    assert not torch.equal(before["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])


def test_same_seed_same_weights(npz28):
    ds = load_npz(npz28, split=["val", "test"], positive="1")
    cfg = _small_resnet(epochs=1, augment="flip,rotate,translate,brightness,contrast,crop", balance="oversample")
    a = finetune(ds, cfg, progress=False).model.state_dict()
    b = finetune(ds, cfg, progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = finetune(ds, cfg.replace(seed=1), progress=False).model.state_dict()
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_augmentation_only_in_training_view(npz28):
    from featurekit.finetune.augment import build_augment

    ds = load_npz(npz28, split="test")
    cfg = _small_resnet(augment="flip,rotate,translate,brightness,contrast,crop")
    start = starting_point(cfg, ds.class_names)
    base = BaseImages(ds, start.preprocessing)
    plain = View(base, np.arange(len(ds)), ds.labels)
    x0, _, _ = plain[0]
    want = start.preprocessing(ds.image(0))
    torch.testing.assert_close(x0, want, atol=2e-3, rtol=0)  # float16 cache
    aug = View(base, np.arange(len(ds)), ds.labels, build_augment(cfg, 28))
    torch.manual_seed(0)
    assert not torch.equal(aug[0][0], x0)


# ---------------------------------------------------------------------------- errors
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/featurekit_pwned",))


def test_bad_checkpoint_files_give_clear_errors(tmp_path, busi_dataset12):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"format": "featurekit-checkpoint", "x": _Evil()}, fh)
    evil_zip = tmp_path / "evil_zip.pt"
    torch.save({"format": "featurekit-checkpoint", "x": _Evil()}, evil_zip)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"name": "resnet18", "num_classes": 2}, {"w": torch.zeros(2)}, {"class_names": ["a", "b"]})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    missing = tmp_path / "missing.pt"
    for path in (garbage, evil, evil_zip, truncated, missing):
        with pytest.raises(WeightsError, match=path.name):
            Predictor.load(path)
        with pytest.raises(WeightsError, match=path.name):
            starting_point(FinetuneConfig(model="resnet18", weights=str(path)), ["a", "b"])
    assert not os.path.exists("/tmp/featurekit_pwned")


def test_head_and_class_count_mismatches(npz28, tmp_path):
    ds = load_npz(npz28, split="train", positive="1")
    res = finetune(ds, _small_resnet(epochs=1), out=tmp_path / "two.pt", progress=False)
    # a 3-class dataset cannot be predicted by a 2-class checkpoint
    three = load_npz(write_medmnist(tmp_path / "three.npz", n=(6, 3, 3), classes=3))
    with pytest.raises(HeadMismatchError, match="two.pt"):
        Predictor.load(tmp_path / "two.pt").predict(three)
    with pytest.raises(HeadMismatchError, match="two.pt"):
        starting_point(_small_resnet(weights=str(tmp_path / "two.pt"), head_policy="keep"), three.class_names)
    # new head is fine
    sp = starting_point(_small_resnet(weights=str(tmp_path / "two.pt")), three.class_names)
    assert sp.head == "new" and sp.model.fc.out_features == 3
    # an arch that says 5 classes over a 2-class state_dict
    ck = load_checkpoint(tmp_path / "two.pt")
    save_checkpoint(tmp_path / "lying.pt", {**ck["arch"], "num_classes": 5}, ck["state_dict"], ck["meta"])
    with pytest.raises(WeightsError, match="lying.pt.*fc"):
        load_model("resnet18", str(tmp_path / "lying.pt"))
    with pytest.raises(WeightsError, match="lying.pt"):
        Predictor.load(tmp_path / "lying.pt")
    # the backbone cannot change between stages
    with pytest.raises(FeaturekitError, match="1-channel|3-channel|channel"):
        starting_point(_small_resnet(weights=str(tmp_path / "two.pt"), in_chans=3), ds.class_names)
    assert res.meta["lineage"][0]["stage"] == 1


def test_unknown_freeze_layer_names_the_layer(busi_dataset12):
    with pytest.raises(LayerError, match="conv9_block1_out"):
        finetune(busi_dataset12, FinetuneConfig(model="resnet18", weights="none", size=32, epochs=1,
                                        freeze_until="conv9_block1_out"), progress=False)
    start = starting_point(FinetuneConfig(model="resnet18", weights="none", size=32), busi_dataset12.class_names)
    with pytest.raises(LayerError, match="nothing_like_this_\\*"):
        freeze(start.model, start.table, layers="nothing_like_this_*")
    with pytest.raises(LayerError, match="99"):
        freeze(start.model, start.table, until="99")
    with pytest.raises(LayerError, match="no parameters"):
        freeze(start.model, start.table, layers="pool1")


def test_config_rejects_bad_options():
    from featurekit.finetune import FinetuneError

    with pytest.raises(FinetuneError, match="optimizer"):
        FinetuneConfig(optimizer="rmsprop")
    with pytest.raises(FinetuneError, match="augmentation"):
        FinetuneConfig(augment="flip,warp")
    with pytest.raises(FinetuneError, match="small-input"):
        FinetuneConfig(in_chans=1)
    with pytest.raises(FinetuneError, match="size"):
        starting_point(FinetuneConfig(weights="none", small_input=True), ["a", "b"])
