"""Outputs are never overwritten silently, are replaced whole, and a failed write leaves no debris."""

import errno
import json

import numpy as np
import pandas as pd
import pytest
import torch

from featurekit.checkpoint import load_checkpoint, save_checkpoint
from featurekit.cli import main
from featurekit.errors import DiskFullError, OutputExistsError
from featurekit.evaluation.results.runfolder import read_run, write_run
from featurekit.io import StagedFolder

torch.set_num_threads(2)


def _rows(score=0.8):
    res = pd.DataFrame([{"feature_set": "a", "classifier": "svm", "kind": "deep", "model": "m", "layer": "l",
                         "layer_index": 3, "n": 4, "n_pos": 2, "protocol": "p", "roc_auc": 0.75,
                         "roc_auc_sd": float("nan"), "roc_auc_ci_lo": 0.5, "roc_auc_ci_hi": 1.0}])
    pred = pd.DataFrame({"id": list("wxyz"), "y_true": [0, 1, 0, 1], "feature_set": "a", "classifier": "svm",
                         "repeat": 0, "fold": [0, 0, 1, 1], "score": [0.1, score, 0.6, 0.4],
                         "threshold": [0.5, 0.5, 0.3, 0.3]})
    return res, pred


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _debris(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture
def old_run(tmp_path):
    """A run folder with comparisons.csv and a report, as 'featurekit evaluate' + 'report' leave it."""
    res, pred = _rows()
    folder = write_run(tmp_path / "run", res, pred, {"seed": 1},
                       comparisons=pd.DataFrame({"a": ["x"], "b": ["y"], "p_value": [0.5]}))
    (folder / "report.html").write_text("<html>old</html>")
    (folder / "report_files").mkdir()
    (folder / "report_files" / "roc.png").write_bytes(b"png")
    return folder


def test_a_non_empty_run_folder_is_refused_unless_overwrite(old_run):
    before = _snapshot(old_run)
    res, pred = _rows(score=0.9)
    with pytest.raises(OutputExistsError, match="--overwrite") as err:
        write_run(old_run, res, pred, {"seed": 2})
    assert str(old_run) in str(err.value)
    assert _snapshot(old_run) == before and _debris(old_run.parent) == []


def test_overwrite_replaces_the_folder_whole(old_run):
    res, pred = _rows(score=0.9)
    write_run(old_run, res, pred, {"seed": 2}, overwrite=True)
    files = set(_snapshot(old_run))
    assert files == {"results.csv", "results.json", "predictions.csv", "provenance.json"}  # nothing old left
    assert read_run(old_run).provenance["seed"] == 2
    assert _debris(old_run.parent) == []


def test_an_empty_or_missing_folder_needs_no_overwrite(tmp_path):
    res, pred = _rows()
    (tmp_path / "empty").mkdir()
    assert write_run(tmp_path / "empty", res, pred, {}).is_dir()
    assert write_run(tmp_path / "a" / "b", res, pred, {}).is_dir()


def test_a_crash_mid_write_leaves_the_old_folder_intact(old_run, monkeypatch):
    import featurekit.evaluation.results.runfolder as rf

    before = _snapshot(old_run)
    calls = []
    real = rf.atomic_write_text

    def dies_on_the_third(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(path, text)

    monkeypatch.setattr(rf, "atomic_write_text", dies_on_the_third)
    res, pred = _rows(score=0.9)
    with pytest.raises(RuntimeError, match="killed"):
        write_run(old_run, res, pred, {"seed": 2}, overwrite=True)
    assert _snapshot(old_run) == before and _debris(old_run.parent) == []


def test_disk_full_is_a_clear_error_and_leaves_no_temporary_file(old_run, monkeypatch):
    import featurekit.io as fio

    before = _snapshot(old_run)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fio.os, "fsync", full)
    res, pred = _rows(score=0.9)
    with pytest.raises(DiskFullError) as err:
        write_run(old_run, res, pred, {"seed": 2}, overwrite=True)
    assert str(old_run) in str(err.value) and ".new-" not in str(err.value)
    monkeypatch.undo()
    assert _snapshot(old_run) == before and _debris(old_run.parent) == []
    assert not list(old_run.parent.rglob("*.tmp*"))


def test_staged_folder_is_removed_when_dropped(tmp_path):
    stage = StagedFolder(tmp_path / "x")
    (stage.path / "f").write_text("1")
    assert _debris(tmp_path)
    del stage
    assert _debris(tmp_path) == [] and not (tmp_path / "x").exists()


def test_checkpoints_are_not_overwritten_silently(tmp_path):
    arch = {"name": "resnet18", "num_classes": 2}
    path = save_checkpoint(tmp_path / "model.pt", arch, {"w": torch.zeros(2)}, {"n": 1})
    with pytest.raises(OutputExistsError, match="model.pt"):
        save_checkpoint(path, arch, {"w": torch.ones(2)}, {"n": 2})
    assert load_checkpoint(path)["meta"]["n"] == 1
    save_checkpoint(path, arch, {"w": torch.ones(2)}, {"n": 2}, overwrite=True)
    assert load_checkpoint(path)["meta"]["n"] == 2 and _debris(tmp_path) == []


# ---------------------------------------------------------------------------- commands

SMALL = ["--model", "resnet18", "--weights", "none", "--small-input", "--size", "28", "--epochs", "1",
         "--batch-size", "8", "--optimizer", "adam", "--scheduler", "none", "--augment", "none", "--quiet"]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("outputs") / "small.npz"
    labels = np.arange(16) % 2
    images = np.clip(rng.normal(80, 20, (16, 28, 28)) + 40 * labels[:, None, None], 0, 255).astype(np.uint8)
    np.savez(path, train_images=images, train_labels=labels)
    return str(path)


def test_finetune_refuses_an_existing_checkpoint_before_training(npz, tmp_path, capsys, monkeypatch):
    import featurekit.finetune.crossval  # noqa: F401  (bound to the real train() before it is patched here)
    import featurekit.finetune.training as training

    out = tmp_path / "model.pt"
    out.write_bytes(b"precious")
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained before refusing"))
    assert main(["finetune", npz, *SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err and "Traceback" not in err
    assert out.read_bytes() == b"precious"


def test_finetune_run_folder_refused_then_replaced_whole(npz, tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "r").mkdir(parents=True)
    (runs / "r" / "report.html").write_text("old")
    argv = ["finetune", npz, "--positive", "1", *SMALL, "--cv", "2", "--n-boot", "20", "--runs-dir", str(runs),
            "--name", "r", "--save-fold-checkpoints"]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err and (runs / "r" / "report.html").is_file()
    assert main(argv + ["--overwrite"]) == 0
    files = set(_snapshot(runs / "r"))
    assert "report.html" not in files and {"results.csv", "checkpoints/r0_f0.pt", "checkpoints/r0_f1.pt"} <= files
    folds = json.loads((runs / "r" / "provenance.json").read_text())["folds"]
    assert all((runs / "r" / "checkpoints").samefile(
        __import__("pathlib").Path(f["checkpoint"]).parent) for f in folds)
    assert _debris(runs) == []


def test_evaluate_refuses_a_non_empty_out_before_reading_data(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.csv").write_text("old")
    rc = main(["evaluate", str(tmp_path / "no-such-data"), "--features", "gabor", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and str(out) in err and "--overwrite" in err
    assert (out / "results.csv").read_text() == "old"


def test_demo_replaces_its_own_folder_but_refuses_another(tmp_path, capsys, monkeypatch):
    from featurekit.cli.demo import earlier_demo

    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert main(["demo", "--out", str(other), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (other / "notes.txt").read_text() == "keep"
    res, pred = _rows()
    demo = write_run(tmp_path / "demo", res, pred, {"demo": True})
    assert earlier_demo(demo) and not earlier_demo(other) and not earlier_demo(tmp_path / "none")
