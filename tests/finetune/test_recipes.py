"""Fine-tuning recipes and what they need: defaults that fit the start, the Dropout+Linear head,
early stopping on mean(AUC, accuracy), 28-px inputs kept whole, typed stages, fold-by-fold chaining."""

import json
import shlex

import numpy as np
import pytest
import torch
from conftest import write_medmnist

from featurekit.cli import main
from featurekit.data import load_npz
from featurekit.data.spec import DataSpec
from featurekit.finetune import FinetuneConfig, FinetuneError, cross_validate
from featurekit.finetune.config import BASE_SETTINGS, RECIPES
from featurekit.finetune.pipeline import FinetuneStage, RunOptions, run_stages
from featurekit.models.architecture import HEADS, make_head
from featurekit.models.preprocessing import Preprocessing
from featurekit.studies.plan import stage_command

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")


@pytest.fixture(scope="module")
def npz28(tmp_path_factory):
    return write_medmnist(tmp_path_factory.mktemp("rec") / "small.npz", n=(24, 8, 8))


# ---------------------------------------------------------------------------- recipes
def test_random_start_does_not_get_the_transfer_recipe():
    scratch, transfer = FinetuneConfig(weights="none"), FinetuneConfig(weights="imagenet")
    assert (scratch.recipe, transfer.recipe) == ("scratch", "transfer")
    assert FinetuneConfig(weights="none:seed=3").recipe == "scratch" and FinetuneConfig().recipe == "transfer"
    # the transfer schedule divides the rate by 10 every 7 epochs: 100x lower by epoch 14
    assert (transfer.scheduler, transfer.step_size, transfer.gamma) == ("step", 7, 0.1)
    assert scratch.scheduler != "step" and scratch.augment == ["flip"] and scratch.epochs >= 30


def test_explicit_options_beat_the_recipe_and_every_recipe_is_valid():
    cfg = FinetuneConfig(recipe="breastmnist", lr=0.01, epochs=3)
    assert (cfg.lr, cfg.epochs, cfg.head, cfg.dropout, cfg.monitor, cfg.step_size, cfg.gamma) == \
        (0.01, 3, "dropout_linear", 0.8, "val_auc_acc", 20, 0.7)
    assert cfg.weights == "none" and cfg.small_input and cfg.size == 28
    for name, recipe in RECIPES.items():
        assert set(recipe.settings) <= set(BASE_SETTINGS), name
        c = FinetuneConfig(recipe=name)
        assert c.to_dict()["recipe"] == name and FinetuneConfig.from_dict(c.to_dict()) == c
    with pytest.raises(FinetuneError, match="unknown recipe 'nope'; choose one of transfer, scratch"):
        FinetuneConfig(recipe="nope")


def test_cli_weights_none_records_the_scratch_recipe(npz28, tmp_path):
    assert main(["finetune", str(npz28), "--positive", "1", "--weights", "none", "--small-input", "--size", "28",
                 "--epochs", "1", "--cv", "2", "--runs-dir", str(tmp_path), "--name", "r", "--n-boot", "20",
                 "--quiet"]) == 0
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert prov["options"]["recipe"] == "scratch" and prov["options"]["optimizer"] == "adam"
    assert "--recipe scratch" in prov["command"] or prov["command"].startswith("featurekit finetune")


# ---------------------------------------------------------------------------- heads and monitor
def test_dropout_linear_head():
    assert "dropout_linear" in HEADS
    head = make_head(64, 2, "dropout_linear", dropout=0.8)
    assert isinstance(head[0], torch.nn.Dropout) and head[0].p == 0.8
    assert isinstance(head[1], torch.nn.Linear) and (head[1].in_features, head[1].out_features) == (64, 2)
    assert len(list(head.children())) == 2
    with pytest.raises(Exception, match="unknown head 'conv'"):
        make_head(64, 2, "conv")


def test_monitor_mean_of_auc_and_accuracy_picks_the_best_epoch(npz28):
    from featurekit.finetune import finetune

    cfg = FinetuneConfig(model="resnet18", recipe="breastmnist", epochs=3, batch_size=8, patience=0, lr=0.01)
    result = finetune(load_npz(npz28, positive="1"), cfg, progress=False)
    hist = result.train.history
    for h in hist:
        assert 0 <= h["val_acc"] <= 1
        assert h["val_auc_acc"] == pytest.approx((h["val_auc"] + h["val_acc"]) / 2, rel=1e-12)
    best = max(hist, key=lambda h: (h["val_auc_acc"], -h["epoch"]))
    assert result.train.best_epoch == best["epoch"] and result.meta["metrics"]["monitor"] == "val_auc_acc"
    head = result.model.fc
    assert isinstance(head, torch.nn.Sequential) and head[0].p == 0.8


# ---------------------------------------------------------------------------- 28 px
@pytest.mark.parametrize("mode", ["crop", "squash"])
def test_an_image_at_the_input_size_passes_unchanged(mode):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    img[0, :] = 255  # the border must survive
    pre = Preprocessing.from_weights(None, 224, size=28, mode=mode, channels=1)
    assert pre.resize == 32  # the weights' resize/crop ratio is kept for larger images
    x = pre(img)
    expected = (img.astype(np.float32) / 255 - pre.mean[0]) / pre.std[0]
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-6, atol=1e-6)
    bigger = pre(rng.integers(0, 256, (40, 56), dtype=np.uint8))
    assert tuple(bigger.shape) == (1, 28, 28)


# ---------------------------------------------------------------------------- typed stages, fold-wise chaining
def _stage(npz, name, tmp_path, **kw):
    cfg = dict(model="resnet18", recipe="breastmnist", epochs=1, batch_size=8)
    run = dict(cv="2", runs_dir=str(tmp_path), run_name=name, n_boot=20)
    cfg.update(kw.pop("config", {}))
    run.update(kw.pop("run", {}))
    return FinetuneStage(DataSpec(str(npz), positive="1"), FinetuneConfig(**cfg), RunOptions(**run), name)


def test_second_fine_tuning_continues_fold_by_fold_on_the_same_folds_only(npz28, tmp_path):
    first = _stage(npz28, "first", tmp_path, run={"save_fold_checkpoints": True})
    second = _stage(npz28, "second", tmp_path, config={"weights": "{stage:first}", "balance": "oversample"})
    argv = shlex.split(stage_command(second))
    assert argv[argv.index("--weights") + 1] == "{stage:first}"
    outcomes = run_stages([first, second], progress=False)
    prov = json.loads((outcomes[1].run_dir / "provenance.json").read_text())
    first_prov = json.loads((outcomes[0].run_dir / "provenance.json").read_text())
    assert prov["weights"] == "folds:first"
    for a, b in zip(prov["folds"], first_prov["folds"]):
        assert a["test_ids_sha256"] == b["test_ids_sha256"]
        assert a["init_weights"] == str(tmp_path / "first" / "checkpoints" / f"r{b['repeat']}_f{b['fold']}.pt")
    # other folds (another seed) would train on images the earlier models were tested on: refused
    other = _stage(npz28, "third", tmp_path, config={"weights": str(tmp_path / "first"), "seed": 5})
    with pytest.raises(FinetuneError, match="test images differ"):
        run_stages([other], progress=False)
    fewer = _stage(npz28, "fourth", tmp_path, config={"weights": str(tmp_path / "first")}, run={"cv": "3"})
    with pytest.raises(FinetuneError, match="no fold checkpoint r0_f2.pt|test images differ"):
        run_stages([fewer], progress=False)
    with pytest.raises(FinetuneError, match="holds no fold checkpoints"):
        cross_validate(load_npz(npz28, positive="1"), FinetuneConfig(recipe="breastmnist", weights=str(tmp_path)),
                       "2", progress=False)
