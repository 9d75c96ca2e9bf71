"""One declaration per option: the CLI, the study schema and the API signature are generated from it and agree."""

import argparse
import inspect
import shlex

import pytest

from featurekit.cli import build_parser
from featurekit.options import COMMANDS, DATA, EVALUATE, Option, OptionError, OptionSet
from featurekit.orchestration import evaluate_features
from featurekit.studies.steps import OPTION_TYPES, OPTIONS


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[name]


def test_the_cli_the_study_and_the_api_come_from_one_declaration():
    sub = _subparser("evaluate")
    actions = {a.dest: a for a in sub._actions}
    sig = inspect.signature(evaluate_features).parameters
    for option in COMMANDS["evaluate"]:
        # the command line: a flag whose destination is the option's one name, resolving to its default
        assert option.name in actions, option.name
        assert option.spelling in actions[option.name].option_strings
        assert COMMANDS["evaluate"].resolve({option.name: actions[option.name].default})[option.name] == \
            COMMANDS["evaluate"].resolve({})[option.name]
        # the study step: the same key, default and type
        assert OPTIONS["evaluate"][option.name] == option.default, option.name
        assert OPTION_TYPES[option.name] == option.kind, option.name
    for option in EVALUATE:  # the API: a keyword of evaluate_features with the same default
        assert option.name in sig and sig[option.name].default == option.default, option.name


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
