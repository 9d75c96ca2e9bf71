"""``featurekit finetune`` / ``featurekit predict`` / pipelines from the command line."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from featurekit.checkpoint import load_checkpoint
from featurekit.cli import main
from featurekit.data import load_npz
from featurekit.models.weights import file_sha256

torch.set_num_threads(2)

# torch's no-op notices when a checkpoint is validated on the meta device (featurekit.models.weights)
pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

SMALL = ["--model", "resnet18", "--weights", "none", "--small-input", "--size", "28", "--epochs", "1",
         "--batch-size", "8", "--optimizer", "adam", "--scheduler", "none", "--augment", "flip", "--quiet"]


def write_npz(path, n=(16, 8, 8), classes=2, seed=0, size=28):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, m in zip(("train", "val", "test"), n):
        labels = np.arange(m) % classes
        images = rng.normal(80, 20, (m, size, size)) + 40 * labels[:, None, None]
        arrays[f"{split}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("cli") / "small.npz")


def test_finetune_cv_writes_run_folder(npz, tmp_path):
    rc = main(["finetune", npz, "--positive", "1", *SMALL, "--cv", "2", "--runs-dir", str(tmp_path),
               "--name", "cv2", "--n-boot", "50", "--freeze-until", "conv2_block2_out"])
    assert rc == 0
    run = tmp_path / "cv2"
    for name in ("results.csv", "results.json", "predictions.csv", "provenance.json", "training_curves.csv",
                 "training_curves.png"):
        assert (run / name).is_file(), name
    rows = pd.read_csv(run / "results.csv")
    assert rows.loc[0, "feature_set"] == "finetune:resnet18" and rows.loc[0, "kind"] == "finetuned"
    assert rows.loc[0, "n"] == 32 and rows.loc[0, "protocol"] == "stratified 2-fold"
    prov = json.loads((run / "provenance.json").read_text())
    assert "--cv 2" in prov["command"] and "--freeze-until conv2_block2_out" in prov["command"]
    assert prov["options"]["freeze_until"] == "conv2_block2_out" and prov["options"]["small_input"] is True
    assert prov["dataset"]["counts"] == {"0": 16, "1": 16}


def test_single_run_then_predict_and_extract(npz, tmp_path, capsys):
    ckpt = tmp_path / "model.pt"
    assert main(["finetune", npz, "--positive", "1", *SMALL, "--head", "mlp", "--hidden", "16",
                 "--out", str(ckpt)]) == 0
    assert ckpt.is_file() and (tmp_path / "model_training_curves.csv").is_file()
    meta = load_checkpoint(ckpt)["meta"]
    assert meta["metrics"]["split"] == "predefined" and meta["metrics"]["n_test"] == 8

    out = tmp_path / "pred.csv"
    assert main(["predict", str(ckpt), npz, "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["id", "true_label", "p_0", "p_1", "predicted", "y_true"]
    assert len(table) == 32
    np.testing.assert_allclose(table[["p_0", "p_1"]].sum(axis=1), 1.0, rtol=1e-5)

    cache = tmp_path / "feats.h5"
    assert main(["extract", npz, "--weights", str(ckpt), "--layers", "resnet18:conv5_*", "--cache", str(cache),
                 "--workers", "0", "--device", "cpu", "--quiet"]) == 0
    assert cache.is_file()


def test_pipeline_chains_two_stages(tmp_path):
    three = write_npz(tmp_path / "three.npz", n=(12, 6, 6), classes=3, seed=1)
    two = write_npz(tmp_path / "two.npz", seed=2)
    spec = {
        "variables": {"out": str(tmp_path / "out")},
        "defaults": {"model": "resnet18", "weights": "none", "small_input": True, "size": 28, "epochs": 1,
                     "batch_size": 8, "optimizer": "adam", "scheduler": "none", "augment": "none", "progress": False},
        "stages": [
            {"name": "first", "data": three, "positive": "2", "out": "{out}/s1.pt"},
            {"name": "second", "data": two, "positive": "1", "weights": "{previous}", "cv": "predefined",
             "runs_dir": "{out}", "run_name": "second", "n_boot": 50, "save_fold_checkpoints": True},
        ],
    }
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps(spec))
    assert main(["finetune", "--pipeline", str(path), "--quiet"]) == 0
    s1 = tmp_path / "out" / "s1.pt"
    assert load_checkpoint(s1)["arch"]["num_classes"] == 3
    prov = json.loads((tmp_path / "out" / "second" / "provenance.json").read_text())
    assert prov["weights_sha256"] == file_sha256(s1) and prov["head"] == "new"
    assert [s["stage"] for s in prov["lineage"]] == [1]
    assert prov["lineage"][0]["dataset_fingerprint"] == load_npz(three).fingerprint()
    fold = load_checkpoint(tmp_path / "out" / "second" / "checkpoints" / "r0_f0.pt")["meta"]["lineage"]
    assert [s["stage"] for s in fold] == [1, 2] and fold[1]["init_weights_sha256"] == file_sha256(s1)


def test_cli_errors_name_the_file_or_layer(npz, tmp_path, capsys):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(os.urandom(300))
    assert main(["predict", str(bad), npz]) == 2
    assert "corrupt.pt" in capsys.readouterr().err
    assert main(["finetune", npz, "--positive", "1", *SMALL, "--weights", str(bad)]) == 2
    assert "corrupt.pt" in capsys.readouterr().err
    assert main(["finetune", npz, "--positive", "1", *SMALL, "--freeze-until", "block9_pool",
                 "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "block9_pool" in err and "conv5_block2_out" in err  # the valid layers are listed
    assert main(["finetune", npz, *SMALL, "--cv", "2"]) == 2  # no positive class
    assert "positive" in capsys.readouterr().err
    assert main(["finetune", "--pipeline", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


# ---------------------------------------------------------------------------- outputs refused before the work
def _no_training(monkeypatch):
    import featurekit.finetune.training as training

    def refuse(*a, **k):
        raise AssertionError("training started although the output was going to be refused")

    monkeypatch.setattr(training, "finetune", refuse)


def test_finetune_out_that_is_a_folder_is_refused_before_training(npz, tmp_path, monkeypatch, capsys):
    _no_training(monkeypatch)
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "keep.txt").write_text("x")
    for folder, extra in ((empty, []), (full, ["--overwrite"])):
        assert main(["finetune", npz, "--positive", "1", *SMALL, "--out", str(folder), *extra]) == 2
        err = capsys.readouterr().err
        assert f"checkpoint {folder} is a folder" in err and "Traceback" not in err
    assert (full / "keep.txt").read_text() == "x"


def test_predict_out_is_never_overwritten_silently(npz, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    out.write_text("earlier table\n")
    # refused before the checkpoint is even read (it does not exist)
    assert main(["predict", str(tmp_path / "missing.pt"), npz, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"prediction table {out} already exists" in err and "--overwrite" in err
    assert out.read_text() == "earlier table\n"
    assert main(["predict", str(tmp_path / "missing.pt"), npz, "--out", str(tmp_path), "--overwrite"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_full_disk_while_saving_a_checkpoint_keeps_the_old_one(npz, tmp_path, monkeypatch, capsys):
    import errno

    import featurekit.io

    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"the previous checkpoint")

    class FullDisk:
        """A file on a full disk: every write fails as the OS reports it."""

        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(featurekit.io, "open", lambda *a, **k: FullDisk(open(*a, **k)), raising=False)
    rc = main(["finetune", npz, "--positive", "1", *SMALL, "--out", str(ckpt), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"no space left on the device holding {tmp_path}" in err and "MB needed" in err
    assert ckpt.read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary file left


def test_numbers_that_are_not_finite_are_refused_before_training(npz, tmp_path, monkeypatch, capsys):
    _no_training(monkeypatch)
    for flag, value in (("--lr", "inf"), ("--dropout", "nan"), ("--momentum", "inf")):
        with pytest.raises(SystemExit) as info:  # a usage error of the command line
            main(["finetune", npz, "--positive", "1", *SMALL, flag, value, "--out", str(tmp_path / "m.pt")])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"{flag[2:]} takes a finite number, got {value!r}" in err and "Traceback" not in err
    from featurekit.finetune.config import FinetuneConfig
    from featurekit.finetune.errors import FinetuneError

    with pytest.raises(FinetuneError, match="epochs must be an integer, got 2.5"):
        FinetuneConfig(epochs=2.5)
