"""Study values are checked where they are given, by one rule per type, before any step runs.

``--set`` values and the file's own values go through the option's declared type
(:data:`featurekit.studies.steps.OPTION_TYPES` of the step's kind); ``skip`` is a strict boolean; ``$ENV``
names must be set; a report names steps, stages or existing run folders. A dry run
finds all of it, since it is found when the study is planned.
"""

import textwrap

import numpy as np
import pytest
from PIL import Image

from featurekit.cli import main
from featurekit.studies import load_study, plan_study
from featurekit.studies.steps import OPTION_TYPES, OPTIONS, StudyError

STUDY = """
[study]
name = "values"
[[steps]]
name = "compare"
kind = "evaluate"
data = "{data}"
positive = "b"
features = ["gabor"]
[[steps]]
name = "tune"
kind = "finetune"
data = "{data}"
positive = "b"
cv = "2"
{tune}
[[steps]]
name = "report"
kind = "report"
{report}
"""


def _study(tmp_path, tune="", report="", name="s.toml"):
    data = tmp_path / "images"
    for cls in ("a", "b"):  # two classes of one tiny image each: the plan lists the data's classes
        (data / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / cls / "x.png")
    path = tmp_path / name
    path.write_text(textwrap.dedent(STUDY.format(data=data, tune=tune, report=report)))
    return path


def test_every_option_has_a_declared_type_or_is_text():
    for kind, options in OPTIONS.items():  # a default that is a number / flag / list has that type
        types = OPTION_TYPES[kind]
        assert set(types) == set(options) and set(types.values()) <= {"int", "float", "bool", "list", "text"}
        for key, default in options.items():
            if isinstance(default, bool):
                assert types[key] == "bool", key
            elif isinstance(default, int):
                assert types[key] == "int", key
            elif isinstance(default, float):
                assert types[key] == "float", key
            elif isinstance(default, list):
                assert types[key] == "list", key


@pytest.mark.parametrize("item, message", [
    ("epochs=ten", "--set epochs: epochs takes an integer, got 'ten'"),
    ("lr=fast", "--set lr: lr takes a finite number, got 'fast'"),
    ("seed=1e400", "--set seed: seed takes an integer, got inf"),
    ("lr=inf", "--set lr: lr takes a finite number, got inf"),
    ("compare.features={a=1}", "--set compare.features: features takes a list of texts"),
    ("progress=maybe", "--set progress: progress takes true or false, got 'maybe'"),
    ("tune.skip=maybe", "--set tune.skip: skip takes true or false, got 'maybe'"),
])
def test_set_values_are_checked_against_the_option_type(tmp_path, capsys, item, message):
    study = _study(tmp_path)
    with pytest.raises(StudyError) as info:
        plan_study(load_study(study), overrides=[item])
    assert message in str(info.value)
    assert main(["run", str(study), "--dry-run", "--set", item]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_file_values_are_checked_and_text_numbers_converted(tmp_path):
    bad = _study(tmp_path, tune='epochs = "ten"')
    with pytest.raises(StudyError, match=r"s.toml step 'tune': epochs takes an integer, got 'ten'"):
        plan_study(load_study(bad))
    good = _study(tmp_path, tune='epochs = "3"\nlr = "0.01"', name="good.toml")
    stage = plan_study(load_study(good)).steps[1].stages[0].stage
    assert (stage.config.epochs, stage.config.lr) == (3, 0.01)


@pytest.mark.parametrize("value, skipped", [('"false"', False), ("false", False), ('"true"', True), ("true", True)])
def test_skip_reads_text_as_the_boolean_it_says(tmp_path, value, skipped):
    plan = plan_study(load_study(_study(tmp_path, tune=f"skip = {value}")))
    assert plan.steps[1].skipped is skipped


def test_skip_that_is_neither_true_nor_false_is_refused(tmp_path):
    with pytest.raises(StudyError, match=r"s.toml step 'tune': skip takes true or false, got 'maybe'"):
        plan_study(load_study(_study(tmp_path, tune='skip = "maybe"')))


def test_an_unset_environment_variable_is_a_problem_naming_file_and_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FK_TEST_UNSET_DIR", raising=False)
    study = _study(tmp_path, tune='runs_dir = "$FK_TEST_UNSET_DIR/runs"')
    plan = plan_study(load_study(study))
    wanted = f"{study} step 'tune' runs_dir: environment variable $FK_TEST_UNSET_DIR is not set"
    assert any(wanted in p for p in plan.problems), plan.problems
    assert main(["run", str(study), "--dry-run"]) == 2
    assert wanted in capsys.readouterr().out
    assert main(["run", str(study)]) == 2  # the run refuses before its first step
    assert wanted in capsys.readouterr().err
    assert not list(tmp_path.glob("*FK_TEST_UNSET_DIR*")) and not list(tmp_path.glob("runs"))
    monkeypatch.setenv("FK_TEST_UNSET_DIR", str(tmp_path / "there"))
    plan = plan_study(load_study(study))
    assert not plan.problems and plan.steps[1].stages[0].stage.run.runs_dir == str(tmp_path / "there/runs")


def test_dry_run_finds_a_report_of_nothing(tmp_path, capsys):
    study = _study(tmp_path, report='runs = ["nosuchstep"]')
    assert main(["run", str(study), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "step 'report' runs: 'nosuchstep' is neither a step or stage of this study" in out
    assert "compare, tune" in out
    # a step of the study, and a run folder that exists, are fine
    assert not plan_study(load_study(_study(tmp_path, report='runs = ["compare"]', name="b.toml"))).problems
    run = tmp_path / "earlier"
    run.mkdir()
    (run / "results.csv").write_text("feature_set\n")
    assert not plan_study(load_study(_study(tmp_path, report=f'runs = ["{run}"]', name="c.toml"))).problems


def test_dry_run_checks_the_steps_classes_against_the_data(tmp_path, capsys):
    study = _study(tmp_path)
    assert not plan_study(load_study(study)).problems
    for item, said in [("compare.positive=cancer", "positive class 'cancer' is not one of ['a', 'b']"),
                       ("compare.classes=a,c", "no class folder for ['c']")]:
        assert main(["run", str(study), "--dry-run", "--set", item]) == 2, item
        assert said in capsys.readouterr().out, item
    unnamed = tmp_path / "u.toml"
    unnamed.write_text(study.read_text().replace('positive = "b"\n', ""))
    problems = plan_study(load_study(unnamed)).problems
    assert any("step 'compare': two classes (a, b) and no positive class" in p for p in problems), problems
    assert any("step 'tune': two classes" in p for p in problems), problems  # its stage is cross-validated
