"""A fine-tuning option unset after construction, and where a stage writes its outputs."""

import pytest
import torch

from featurekit.data.spec import DataSpec
from featurekit.finetune import FinetuneConfig, FinetuneError
from featurekit.finetune.pipeline import FinetuneStage, RunOptions, stage_outputs
from featurekit.finetune.training import _optimizer, _scheduler


@pytest.mark.parametrize("name", ["lr", "patience", "val_fraction", "dropout", "epochs", "crop_scale", "augment"])
def test_an_option_set_to_none_after_construction_is_refused_by_name(name):
    cfg = FinetuneConfig(weights="none")
    setattr(cfg, name, None)
    with pytest.raises(FinetuneError, match=f"option {name} is unset"):
        cfg.validate()


@pytest.mark.parametrize("build, name", [(_optimizer, "momentum"), (_optimizer, "weight_decay"),
                                         (_scheduler, "step_size"), (_scheduler, "gamma")])
def test_training_refuses_an_unset_option_by_name_before_torch_sees_it(build, name):
    cfg = FinetuneConfig(weights="none", optimizer="sgd", scheduler="step")
    setattr(cfg, name, None)
    params = [torch.nn.Parameter(torch.zeros(2))]
    target = params if build is _optimizer else torch.optim.SGD(params, lr=0.1)
    with pytest.raises(FinetuneError, match=f"option {name} is unset"):
        build(cfg, target)


def test_an_empty_out_is_no_out_the_run_folder_holds_the_checkpoint():
    config = FinetuneConfig(model="resnet18", weights="none")
    for out in (None, ""):
        stage = FinetuneStage(DataSpec("phantom"), config, RunOptions(out=out, runs_dir="runs"))
        folder, ckpt = stage_outputs(stage, "phantom")
        assert folder is not None and folder.parent.name == "runs" and ckpt == folder / "model.pt"
    stage = FinetuneStage(DataSpec("phantom"), config, RunOptions(out="m.pt"))
    assert stage_outputs(stage, "phantom")[1].name == "m.pt"
    assert stage_outputs(FinetuneStage(DataSpec("phantom"), config, RunOptions(cv="5")), None) == (None, None)
