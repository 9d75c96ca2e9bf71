"""One declaration per option: the CLI, the study schema and the API signature are generated from it and agree
(``featurekit extract``, ``evaluate``, ``finetune``, ``report``)."""

import argparse
import inspect
import shlex
from dataclasses import MISSING, fields

import pytest

from featurekit.cli import build_parser
from featurekit.extraction.pipeline import extract
from featurekit.finetune.config import FinetuneConfig
from featurekit.finetune.pipeline import RunOptions
from featurekit.options import COMMANDS, DATA, EVALUATE, EXTRACT, FINETUNE, Option, OptionError, OptionSet
from featurekit.orchestration import evaluate_features
from featurekit.studies.steps import OPTION_TYPES, OPTIONS


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[name]


@pytest.mark.parametrize("command", ["extract", "evaluate", "finetune"])
def test_the_cli_the_study_and_the_api_come_from_one_declaration(command):
    table = COMMANDS[command]
    actions: dict = {}
    for a in _subparser(command)._actions:  # the option's own flag first, then its other spellings
        actions.setdefault(a.dest, a)
    for option in table:
        # the command line: a flag whose destination is the option's one name, resolving to its default
        assert option.name in actions, option.name
        assert option.spelling in actions[option.name].option_strings
        assert table.resolve({option.name: actions[option.name].default})[option.name] == \
            table.resolve({})[option.name]
        # the study step: the same key, default and type
        assert OPTIONS[command][option.name] == option.default, option.name
        assert OPTION_TYPES[command][option.name] == option.kind, option.name
    api = {"extract": inspect.signature(extract).parameters,
           "evaluate": inspect.signature(evaluate_features).parameters}.get(command)
    own = {"extract": EXTRACT, "evaluate": EVALUATE, "finetune": FINETUNE}[command]
    if api is not None:  # the API: a keyword with the same default
        for option in own:
            assert option.name in api and api[option.name].default == option.default, option.name
    else:  # fine-tuning's API: FinetuneConfig and RunOptions (test below), and run_stage's progress
        assert set(own.options) == {f.name for f in fields(FinetuneConfig)} | \
            {f.name for f in fields(RunOptions) if f.name != "cluster"} | {"progress"}


_KIND_OF_TYPE = {"int": "int", "float": "float", "bool": "bool", "str": "text", "list": "list"}


@pytest.mark.parametrize("dataclass", [FinetuneConfig, RunOptions])
def test_the_finetune_dataclasses_have_the_declared_options_fields(dataclass):
    for f in fields(dataclass):
        if f.name == "cluster":  # where a study stage runs: the command's --dask-scheduler
            continue
        option = FINETUNE[f.name]
        declared = str(f.type).removeprefix("Optional[").removesuffix("]")
        assert _KIND_OF_TYPE[declared] == option.kind, f.name
        default = f.default if f.default is not MISSING else f.default_factory()
        assert default == option.default, f.name


def test_a_new_extract_option_appears_in_the_cli_the_study_and_the_api(monkeypatch):
    import featurekit.options as options
    from featurekit.extraction.pipeline import _signature
    from featurekit.studies.plan import cli_command
    from featurekit.studies.steps import StudyError, option_value

    extra = Option("sharpen", "float", 0.0, "a new option", minimum=0.0)
    table = OptionSet("extract", [*EXTRACT, extra])
    monkeypatch.setattr(options, "EXTRACT", table)
    monkeypatch.setitem(options.COMMANDS, "extract", OptionSet("extract", [], parts=(DATA, table)))
    argv = ["extract", "phantom", "--handcrafted", "glcm"]
    assert table.from_args(build_parser().parse_args(argv + ["--sharpen", "0.5"]))["sharpen"] == 0.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--sharpen", "-1"])
    assert OPTIONS["extract"]["sharpen"] == 0.0 and OPTION_TYPES["extract"]["sharpen"] == "float"
    assert option_value("extract", "sharpen", "0.25", "step 'x'") == 0.25
    with pytest.raises(StudyError, match="step 'x': sharpen must be >= 0"):
        option_value("extract", "sharpen", -1, "step 'x'")
    assert "--sharpen 0.5" in cli_command("extract", {"data": "phantom", "handcrafted": ["glcm"], "sharpen": 0.5})
    assert _signature().parameters["sharpen"].default == 0.0


def test_a_new_option_appears_everywhere_from_its_declaration():
    extra = Option("shrink", "float", 0.5, "a new option", minimum=0.0)
    table = OptionSet("evaluate", [*EVALUATE, extra])
    parser = argparse.ArgumentParser()
    table.add_arguments(parser)
    assert parser.parse_args(["--shrink", "0.25"]).shrink == 0.25
    assert table.defaults()["shrink"] == 0.5 and table.types()["shrink"] == "float"
    assert table.signature().parameters["shrink"].default == 0.5
    assert "--shrink 0.25" in table.command_line({"shrink": 0.25})
    with pytest.raises(SystemExit):
        parser.parse_args(["--shrink", "-1"])  # the minimum, checked by the same rule


def test_the_printed_command_line_parses_back_to_the_same_options():
    values = {"features": ["gabor", "vgg16:block4_pool,block5_pool"], "fuse": ["vgg16:block5_pool+gabor"],
              "classifiers": ["svm", "logreg"], "cv": "5x3", "late_fusion": "vote", "search": True,
              "n_jobs": 1, "select": False, "select_by": "pr_auc", "weights": "none:seed=3", "resize": "squash",
              "progress": False, "n_boot": 500, "youden": "train", "roi": "mask", "classes": "benign,malignant"}
    table = COMMANDS["evaluate"]
    line = table.command_line(table.resolve(values), ["data/busi"])
    argv = shlex.split(line)
    assert argv[:2] == ["featurekit", "evaluate"]
    args = build_parser().parse_args(argv[1:])
    assert table.from_args(args) == table.resolve(values)
    # with every default spelled out too (the provenance's record), it still parses to the same values
    full = shlex.split(table.command_line(table.resolve(values), ["data/busi"], defaults=True))
    assert table.from_args(build_parser().parse_args(full[1:])) == table.resolve(values)
    assert "--cv 5x3" in line and "--no-select" in line and "--quiet" in line and "--jobs" not in line


def test_values_are_checked_by_one_rule_whatever_their_source():
    n_boot, select, features = EVALUATE["n_boot"], EVALUATE["select"], EVALUATE["features"]
    assert n_boot.check("300") == 300 and n_boot.check(300.0) == 300
    for bad in ("ten", 1.5, True, {"a": 1}):
        with pytest.raises(OptionError, match="n_boot takes an integer"):
            n_boot.check(bad)
    with pytest.raises(OptionError, match=">= 0"):
        n_boot.check(-1)
    assert select.check("false") is False and select.check(None) is None
    with pytest.raises(OptionError, match="true or false"):
        select.check("maybe")
    with pytest.raises(OptionError, match="finite"):
        EVALUATE["confidence"].check("inf")
    with pytest.raises(OptionError, match="must be one of"):
        EVALUATE["youden"].check("val")
    # the feature-set grammar: commas inside a layer spec's selector stay in it
    assert features.check(["gabor,glcm", "vgg16:block4_pool,block5_pool,haar"]) == \
        ["gabor", "glcm", "vgg16:block4_pool,block5_pool", "haar"]
    with pytest.raises(OptionError, match="features takes a list"):
        features.check([{"a": 1}])
    # the API may pass typed objects where the option says so
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(3)
    assert EVALUATE["cv"].check(splitter) is splitter
    assert EVALUATE["weights"].resolve("none:seed=2").tag == "none:seed=2"
    with pytest.raises(OptionError, match="valid"):
        EVALUATE.resolve({"n_bot": 3})
    assert DATA.resolve({"subsample": "40"})["subsample"] == 40


def test_evaluate_features_takes_exactly_its_declared_options():
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_bot'"):
        evaluate_features("cache.h5", ["gabor"], n_bot=3)
    with pytest.raises(TypeError, match="multiple values"):
        evaluate_features("cache.h5", ["gabor"], features=["glcm"])
    with pytest.raises(OptionError, match="n_boot takes an integer"):
        evaluate_features("cache.h5", ["gabor"], n_boot="many")


def test_a_study_value_of_the_wrong_type_names_the_step_and_key(tmp_path):
    from featurekit.studies.steps import StudyError, build_step

    opts = {**OPTIONS["evaluate"], "data": "phantom", "features": ["gabor"], "out": str(tmp_path / "r"),
            "n_boot": "lots"}
    with pytest.raises(StudyError, match="step 'x': n_boot takes an integer"):
        build_step("evaluate", "x", opts, "step 'x'")
    opts.update(n_boot=100, classifiers="svm,logreg")
    step = build_step("evaluate", "x", opts, "step 'x'")
    assert step.options["classifiers"] == ["svm", "logreg"] and step.options["weights"].tag.startswith("imagenet")


def test_a_command_line_value_is_converted_once():
    calls = []

    def convert(text):
        calls.append(text)
        return text.upper()

    table = OptionSet("x", [Option("colour", "text", "red", convert=convert), Option("n", "int", 1, minimum=0)])
    parser = argparse.ArgumentParser()
    table.add_arguments(parser)
    args = parser.parse_args(["--colour", "blue", "--n", "3"])
    assert calls == []  # argparse checks the value; it does not convert it
    assert table.from_args(args) == {"colour": "BLUE", "n": 3} and calls == ["blue"]
    with pytest.raises(SystemExit):  # a wrong value is still a usage error of the command line
        parser.parse_args(["--n", "-2"])


def test_every_old_flag_spelling_still_parses():
    parser = build_parser()
    ex = EXTRACT.from_args(parser.parse_args(["extract", "phantom", "--layers", "resnet18:all", "--no-amp",
                                              "--float16", "--workers", "2", "--resize", "squash", "--quiet",
                                              "--handcrafted", "gabor:frequencies=0.5,0.25,glcm"]))
    assert (ex["amp"], ex["dtype"], ex["num_workers"], ex["resize"], ex["progress"]) == \
        ("none", "float16", 2, "squash", False)
    assert ex["handcrafted"] == ["gabor:frequencies=0.5,0.25", "glcm"] and str(ex["layers"][0]) == "resnet18:all"
    ft = FINETUNE.from_args(parser.parse_args(["finetune", "x.npz", "--run-name", "a", "--no-amp", "--workers", "1",
                                               "--no-cache-images", "--crop-scale", "0.5,1", "--quiet"]))
    assert (ft["run_name"], ft["amp"], ft["num_workers"], ft["cache_images"], ft["crop_scale"], ft["progress"]) == \
        ("a", False, 1, False, [0.5, 1.0], False)
    assert FINETUNE.from_args(parser.parse_args(["finetune", "x.npz", "--name", "b"]))["run_name"] == "b"
    with pytest.raises(OptionError, match="crop_scale takes LO,HI"):
        FINETUNE.from_args(parser.parse_args(["finetune", "x.npz", "--crop-scale", "0.5"]))


def test_the_printed_finetune_command_line_parses_back_to_the_same_stage():
    from featurekit.data.spec import DataSpec
    from featurekit.studies.plan import stage_command
    from featurekit.studies.steps import stage_of

    values = FINETUNE.resolve({"recipe": "transfer", "model": "mobilenet_v2", "weights": "none:seed=2",
                               "augment": "none", "crop_scale": "0.6,0.9", "amp": False, "num_workers": 2,
                               "run_name": "two", "cv": 5, "lr": "0.01", "small_input": True, "in_chans": 1,
                               "progress": False})
    stage = stage_of(DataSpec("x.npz", classes="a,b", positive="b"), values, "two")
    argv = shlex.split(stage_command(stage))
    assert argv[:2] == ["featurekit", "finetune"]
    assert "--augment" in argv and "--no-amp" in argv and "--name" in argv and "--workers" in argv
    args = build_parser().parse_args(argv[1:])
    from featurekit.cli.common import data_spec

    again = stage_of(data_spec(args), FINETUNE.from_args(args), "two")
    assert again.to_dict() == stage.to_dict()
    assert again.config.augment == [] and again.config.crop_scale == [0.6, 0.9]


def test_extract_takes_exactly_its_declared_options():
    with pytest.raises(TypeError, match="unexpected keyword argument 'workers'"):
        extract(None, [], ["glcm"], workers=2)
    with pytest.raises(TypeError, match="multiple values"):
        extract(None, ["resnet18:all"], layers=["resnet18:all"])
    with pytest.raises(OptionError, match="extract: batch_size takes an integer"):
        extract(None, [], ["glcm"], batch_size="many")
    with pytest.raises(OptionError, match="on_error must be one of"):
        extract(None, [], ["glcm"], on_error="ignore")


@pytest.mark.parametrize("kind, body, key", [
    ("extract", 'handcrafted = ["glcm"]\nworkers = 2', "workers"),
    ("finetune", "no_amp = true", "no_amp"),
])
def test_a_study_key_that_is_no_option_is_an_error_naming_it(tmp_path, kind, body, key):
    from featurekit.studies import load_study
    from featurekit.studies.steps import StudyError

    path = tmp_path / "s.toml"
    path.write_text(f'[study]\nname = "s"\n[[steps]]\nname = "x"\nkind = "{kind}"\ndata = "phantom"\n{body}\n')
    with pytest.raises(StudyError, match=key):
        load_study(path)
