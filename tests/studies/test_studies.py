"""``featurekit run``: study files, validation, profiles and overrides, resumability, the shipped studies.

The shipped studies' ``quick`` profiles run end to end on tiny subsets of BUSI / mini-MIAS (and a
synthetic npz of BreastMNIST's shape), shrunk further with ``--set`` so the file stays within a few
minutes on two CPU cores.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_medmnist

from featurekit.cli import build_parser, main
from featurekit.options import COMMANDS
from featurekit.studies import load_study, plan_status, plan_study, shipped_studies
from featurekit.studies.steps import OPTIONS, StudyError

pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

REPO = Path(__file__).resolve().parents[2]
STUDIES = ("resnet_transfer_ultrasound", "handcrafted_vs_cnn", "two_stage_transfer", "four_networks_mammography",
           "breastmnist_resnet18")
# the smallest settings every study accepts: seconds per step on a CPU
TINY = ["subsample=16", "size=32", "epochs=1", "n_boot=50", "batch_size=8", "progress=false"]  # + cache=TMP


@pytest.fixture(scope="module")
def breastmnist(tmp_path_factory):
    """A synthetic npz of BreastMNIST's shape: 28 x 28 uint8, 546 / 78 / 156 images."""
    return write_medmnist(tmp_path_factory.mktemp("bmnist") / "breastmnist.npz", n=(546, 78, 156))


def _sets(items):
    return [x for item in items for x in ("--set", item)]


# ---------------------------------------------------------------------------- the shipped studies
def test_the_five_studies_are_shipped():
    assert set(STUDIES) <= set(shipped_studies())
    assert not (REPO / "pipelines" / "two_stage_transfer.json").exists()  # folded into study 3


@pytest.mark.parametrize("name", STUDIES)
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_every_shipped_study_validates_with_dry_run(name, profile, shared, breastmnist, capsys):
    study = load_study(name)
    assert {"quick", "paper"} <= set(study.profiles) and study.paper and study.paper.reported
    sets = [f"shared={shared}"] + ([f"breastmnist={breastmnist}"] if "breastmnist" in study.variables else [])
    rc = main(["run", name, "--profile", profile, "--dry-run", *_sets(sets)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"profile: {profile}" in out and "problems" not in out
    plan = plan_study(study, profile, sets)
    running = [s for s in plan.steps if not s.skipped]
    assert running and running[-1].kind == "report" and running[-1].step.runs
    for s in running:
        for st in s.stages:
            assert st.command.startswith("featurekit finetune ") and st.command in out
    if profile == "quick":  # the stand-in is said plainly
        assert any("MobileNet-V2" in t for t in plan.substitutions) or name == "breastmnist_resnet18"


def test_dry_run_imports_no_torch(shared):
    code = ("import sys; from featurekit.cli import main; "
            f"rc = main(['run', 'two_stage_transfer', '--dry-run', '--set', 'shared={shared}']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr


def test_option_names_and_defaults_are_the_commands():
    """A step's options are its command's options, with the command's defaults."""
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    not_options = {"help", "pipeline", "overrides", "dry_run"}
    for kind in ("extract", "evaluate", "finetune", "report"):
        actions: dict = {}
        for a in subs[kind]._actions:  # an option's own flag first, then its other spellings (--no-amp)
            if a.dest not in not_options:
                actions.setdefault(a.dest, a)
        assert set(actions) == set(OPTIONS[kind]), kind
        declared = COMMANDS.get(kind)
        for dest, action in actions.items():
            default = action.default
            if dest == "data" or (action.nargs == "+" and default is None):
                continue
            if declared is not None and dest in declared:  # the CLI and the step resolve to the same value
                assert declared.resolve({dest: default})[dest] == declared.resolve({dest: OPTIONS[kind][dest]})[dest]
                continue
            if dest in ("layers", "features", "fuse", "classifier", "handcrafted", "runs"):
                assert OPTIONS[kind][dest] == [] and default in ([], None), (kind, dest)
            else:
                assert OPTIONS[kind][dest] == default, (kind, dest, default)


# ---------------------------------------------------------------------------- validation
def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


SMALL_STUDY = """
[study]
name = "small"
default_profile = "quick"
[variables]
images = {{ help = "a MedMNIST-style npz" }}
[paper]
data = "someone else's images"
[[paper.reported]]
label = "their net"
ours = ["first"]
accuracy = 0.9
roc_auc = 0.95
[profiles.quick]
substitutions = ["network: a small ResNet-18"]
set = {{ epochs = 1 }}
[[steps]]
name = "first"
kind = "finetune"
data = "{{images}}"
classes = "0,1"
positive = "1"
model = "resnet18"
recipe = "breastmnist"
batch_size = 8
cv = "2"
n_boot = 50
progress = false
[[steps]]
name = "report"
kind = "report"
{extra}
"""


def test_unknown_keys_list_the_valid_ones(tmp_path, capsys):
    bad = _write(tmp_path, SMALL_STUDY.format(extra="").replace('cv = "2"', 'cv = "2"\nlearning_rate = 0.1'))
    with pytest.raises(StudyError, match=r"unknown key\(s\) learning_rate; valid keys: .*\blr\b"):
        load_study(bad)
    good = _write(tmp_path, SMALL_STUDY.format(extra=""), "good.toml")
    assert main(["run", str(good), "--dry-run", "--set", "images=x.npz", "--set", "learnig_rate=3"]) == 2
    err = capsys.readouterr().err
    assert "'learnig_rate' is neither a variable nor an option" in err and "epochs" in err and "images" in err
    with pytest.raises(StudyError, match="has no option 'epoch'; valid: .*epochs"):
        plan_study(load_study(good), overrides=["images=x.npz", "first.epoch=2"])
    with pytest.raises(StudyError, match="no profile 'papr'; profiles: quick"):
        plan_study(load_study(good), profile="papr")
    with pytest.raises(StudyError, match="not a fraction"):
        text = SMALL_STUDY.format(extra="").replace("accuracy = 0.9", "accuracy = 93.9")
        load_study(_write(tmp_path, text, "p.toml"))
    with pytest.raises(StudyError, match="recipe must be|unknown recipe 'nope'"):
        plan_study(load_study(good), overrides=["images=x.npz", "recipe=nope"])


def test_missing_data_names_the_variable_to_set(tmp_path, capsys):
    study = _write(tmp_path, SMALL_STUDY.format(extra=""))
    assert main(["run", str(study)]) == 2
    err = capsys.readouterr().err
    assert "variable 'images' is not set: --set images=PATH (a MedMNIST-style npz)" in err
    assert main(["run", str(study), "--set", f"images={tmp_path / 'nowhere.npz'}"]) == 2
    err = capsys.readouterr().err
    assert "nowhere.npz does not exist: set the variable 'images'" in err
    # a shipped study too
    assert main(["run", "breastmnist_resnet18", "--dry-run"]) == 2
    assert "--set breastmnist=PATH" in capsys.readouterr().out


def test_profile_then_set_then_scopes(tmp_path):
    text = SMALL_STUDY.format(extra="""
[[steps]]
name = "chain"
kind = "finetune"
data = "{images}"
model = "resnet18"
recipe = "breastmnist"
epochs = 5
  [[steps.stages]]
  name = "one"
  out = "{out}/one.pt"
  lr = 0.01
  [[steps.stages]]
  name = "two"
  weights = "{stage:one}"
  cv = "2"
""")
    study = load_study(_write(tmp_path, text))
    plan = plan_study(study, overrides=["images=x.npz", "out=/tmp/o"])
    first = plan.steps[0].stages[0].stage
    one, two = (st.stage for st in plan.steps[2].stages)
    assert first.config.epochs == 1 and one.config.epochs == 1  # the profile's unscoped value beats the file's
    assert one.config.lr == 0.01 and two.config.lr == 0.001       # a stage's value; else the recipe's
    assert two.config.weights == "/tmp/o/one.pt" and first.run.runs_dir == "/tmp/o"
    plan = plan_study(study, overrides=["images=x.npz", "epochs=3", "chain.epochs=4", "two.epochs=6",
                                        "first.skip=true", "chain.two.lr=0.5"])
    one, two = (st.stage for st in plan.steps[2].stages)
    assert (one.config.epochs, two.config.epochs, two.config.lr) == (4, 6, 0.5)
    assert plan.steps[0].skipped
    assert [str(p) for p in plan.steps[1].step.runs] == [str(plan.steps[2].stages[1].outputs[0])]
    h1 = plan_study(study, overrides=["images=x.npz", "one.lr=0.02"]).steps[2].stages
    h0 = plan_study(study, overrides=["images=x.npz"]).steps[2].stages
    assert h1[0].hash != h0[0].hash and h1[1].hash != h0[1].hash  # a changed first stage changes what follows
    with pytest.raises(StudyError, match="'two' starts from 'one', but stage 'one' is cross-validated.*"
                                         "save_fold_checkpoints"):
        plan_study(study, overrides=["images=x.npz", "one.cv=2"])
    with pytest.raises(StudyError, match=r"\{stage:none\} names no earlier stage"):
        plan_study(study, overrides=["images=x.npz", "two.weights={stage:none}"])


# ---------------------------------------------------------------------------- resumability
def test_finished_steps_are_reused_and_changes_rerun(tmp_path, capsys):
    npz = write_medmnist(tmp_path / "data.npz", n=(16, 8, 8))
    study = _write(tmp_path, SMALL_STUDY.format(extra=""))
    args = ["run", str(study), *_sets([f"images={npz}", f"out={tmp_path / 'out'}"])]
    assert main(args) == 0
    results = tmp_path / "out" / "first" / "results.csv"
    marker = json.loads((tmp_path / "out" / "first" / "study-step.json").read_text())
    stamp = results.stat().st_mtime_ns
    report = (tmp_path / "out" / "report.md").read_text()
    assert "paper: reported on other data (someone else's images)" in report and "network: a small ResNet-18" in report
    capsys.readouterr()

    assert main(args) == 0  # nothing changed: reused, not recomputed
    out = capsys.readouterr().out
    assert "first (finetune): done" in out and "reused" in out and results.stat().st_mtime_ns == stamp
    assert plan_status(plan_study(load_study(study), overrides=[f"images={npz}", f"out={tmp_path / 'out'}"])) \
        == {"first": "done"}

    assert main(args + ["--set", "first.seed=1"]) == 0  # another configuration: runs again
    assert "configuration changed" in capsys.readouterr().out and results.stat().st_mtime_ns != stamp
    stamp = results.stat().st_mtime_ns

    arrays = dict(np.load(npz))
    arrays["test_images"][0, 0, 0] ^= 1  # one pixel of the data changes
    np.savez(npz, **arrays)
    assert main(args + ["--set", "first.seed=1"]) == 0
    assert "the data changed" in capsys.readouterr().out and results.stat().st_mtime_ns != stamp
    assert json.loads((tmp_path / "out" / "first" / "study-step.json").read_text())["hash"] != marker["hash"]


# ---------------------------------------------------------------------------- the quick profiles end to end
def _check_report(out: Path, study: str):
    md = (out / "report.md").read_text()
    assert "## Beside the paper" in md and "paper: reported on other data" in md
    paper = load_study(study).paper
    table = md.split("## Beside the paper")[1].split("## ")[0]
    for ref in paper.reported:
        assert ref["label"] in table
    ours = [ln for ln in table.splitlines() if ln.startswith("| ours: ")]
    assert ours and all("[" in ln for ln in ours)  # our rows carry confidence intervals
    assert "Substitutions made in this study (quick profile)" in md
    runs = json.loads((out / "study-run.json").read_text())["steps"]
    assert runs and all(r["status"] in ("ran", "skipped", "reused") for r in runs)
    return md


def test_quick_studies_on_busi_subsets(shared, torch_home, tmp_path, monkeypatch):
    """Studies 1 and 3: the quick profile on 16-image BUSI / mini-MIAS subsets."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    for study, extra in (("resnet_transfer_ultrasound", ["subsample=40"]),  # a 30 % test part with 2+ per class
                         ("two_stage_transfer", ["ultrasound_mobilenet_v2.cv=2", "one_stage_mobilenet_v2.cv=2"])):
        out = tmp_path / study
        rc = main(["run", study, "--profile", "quick",
                   *_sets([f"shared={shared}", f"out={out}", *TINY, *extra])])
        assert rc == 0
        md = _check_report(out, study)
        assert "MobileNet-V2 (ImageNet weights in shared/torch" in md
    prov = json.loads((tmp_path / "two_stage_transfer" / "ultrasound_mobilenet_v2" / "provenance.json").read_text())
    assert [s["stage"] for s in prov["lineage"]] == [1] and prov["head"] == "kept"


def test_quick_studies_on_mias_and_handcrafted(shared, torch_home, tmp_path, monkeypatch):
    """Studies 2 and 4: evaluate + fold-wise second transfer on BUSI; frozen backbone on mini-MIAS.

    40 images and logistic regression: the SVM's probability calibration needs 5 images of each class in the
    inner folds of each training fold."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    out2 = tmp_path / "s2"
    rc = main(["run", "handcrafted_vs_cnn", "--profile", "quick",
               *_sets([f"shared={shared}", f"out={out2}", *TINY, "subsample=40", "cv=2",
                       "features.handcrafted=gabor,haar", 'compare.classifiers=["logreg"]',
                       f"cache={tmp_path / 'features.h5'}",
                       'compare.features=["gabor", "haar", "mobilenet_v2:features.14-features.18"]',
                       'compare.fuse=["mobilenet_v2:features.18+gabor"]',
                       'features.layers=["mobilenet_v2:features.14-features.18"]'])])
    assert rc == 0
    md = _check_report(out2, "handcrafted_vs_cnn")
    assert "Layer-wise performance" in md and "mobilenet_v2/features.18+gabor" in md
    second = json.loads((out2 / "mobilenet_v2_second" / "provenance.json").read_text())
    cad = json.loads((out2 / "mobilenet_v2_cad" / "provenance.json").read_text())
    for a, b in zip(second["folds"], cad["folds"]):  # fold by fold, from the same fold's model
        assert a["test_ids_sha256"] == b["test_ids_sha256"] and a["init_weights"].endswith(
            f"r{b['repeat']}_f{b['fold']}.pt")
    out4 = tmp_path / "s4"
    assert main(["run", "four_networks_mammography", *_sets([f"shared={shared}", f"out={out4}", *TINY,
                                                               "subsample=24", "cv=2"])]) == 0
    _check_report(out4, "four_networks_mammography")
    prov = json.loads((out4 / "mobilenet_v2" / "provenance.json").read_text())
    assert prov["options"]["recipe"] == "mammo-frozen" and prov["options"]["head"] == "mlp"


def test_quick_breastmnist_study(breastmnist, tmp_path):
    out = tmp_path / "s5"
    assert main(["run", "breastmnist_resnet18", *_sets([f"breastmnist={breastmnist}", f"out={out}", "subsample=60",
                                                         "epochs=1", "n_boot=50", "progress=false"])]) == 0
    md = _check_report(out, "breastmnist_resnet18")
    assert "MedMNIST v2 baseline ResNet-18 (28), test split" in md
    prov = json.loads((out / "resnet18_test_split" / "provenance.json").read_text())
    opts = prov["options"]
    assert (opts["recipe"], opts["head"], opts["dropout"], opts["monitor"], opts["size"]) == \
        ("breastmnist", "dropout_linear", 0.8, "val_auc_acc", 28)
    assert prov["protocol"].startswith("predefined")
    pred = pd.read_csv(out / "resnet18_test_split" / "predictions.csv")
    assert 0 < len(pred) < 60  # scored on the test part of the subsample only


def test_a_stage_after_a_rerun_stage_runs_again(tmp_path):
    """Markers record when the stages a stage starts from finished: a re-run upstream invalidates it."""
    from featurekit.studies.execute import _reusable, _write_marker

    npz = write_medmnist(tmp_path / "d.npz", n=(8, 4, 4))
    text = SMALL_STUDY.format(extra="""
[[steps]]
name = "chain"
kind = "finetune"
data = "{images}"
recipe = "breastmnist"
  [[steps.stages]]
  name = "one"
  out = "{out}/one.pt"
  [[steps.stages]]
  name = "two"
  weights = "{stage:one}"
  cv = "2"
""")
    plan = plan_study(load_study(_write(tmp_path, text)), overrides=[f"images={npz}", f"out={tmp_path / 'o'}"])
    one, two = plan.steps[2].stages
    assert two.after == [one]
    one.outputs[0].parent.mkdir(parents=True)
    one.outputs[0].write_bytes(b"a checkpoint")
    two.outputs[0].mkdir(parents=True)
    (two.outputs[0] / "results.csv").write_text("x")
    fp = one.stage.data.load().fingerprint()
    _write_marker(plan, one.marker, one.hash, "one", fp, 1.0, "")
    _write_marker(plan, two.marker, two.hash, "two", fp, 1.0, "", [one.marker])
    said = []
    assert _reusable(two.hash, two.marker, two.outputs, True, two.stage.data, said.append, "two", [one.marker])[0]
    rec = json.loads(one.marker.read_text())
    one.marker.write_text(json.dumps({**rec, "finished": "2999-01-01T00:00:00+00:00"}))  # stage one ran again
    assert not _reusable(two.hash, two.marker, two.outputs, True, two.stage.data, said.append, "two",
                         [one.marker])[0]
    assert said[-1] == "two: a stage it starts from was run again: running again"
