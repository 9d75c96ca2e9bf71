"""Pipeline files: several ``featurekit finetune`` stages chained (e.g. two-stage transfer).

A pipeline is a JSON file (``featurekit finetune --pipeline FILE``)::

    {
      "description": "ImageNet -> mini-MIAS -> BUSI",
      "variables": {"out": "runs/two_stage_transfer"},
      "defaults":  {"model": "resnet18", "size": 224, "epochs": 15, "freeze_until": "conv3_block2_out"},
      "stages": [
        {"name": "mammography", "data": "{shared}/data/mini_mias", "weights": "imagenet",
         "out": "{out}/stage1_mias.pt"},
        {"name": "ultrasound", "data": "{shared}/data/busi", "classes": "benign,malignant",
         "positive": "malignant", "weights": "{stage:mammography}", "cv": "5", "run_name": "two_stage_busi"}
      ]
    }

* Every key of ``defaults`` and of a stage is an option of ``featurekit finetune``
  with dashes written as underscores (``freeze_until`` is ``--freeze-until``), plus
  ``data`` (the DATA argument) and ``name`` (the stage's name). ``true`` turns a
  flag on (``"small_input": true``); ``false`` / ``null`` leave an option out.
* Strings may use ``{VARIABLE}`` (from ``variables``; ``{shared}`` is built in:
  ``$FEATUREKIT_SHARED``, else ``../shared``), ``$ENV`` / ``${ENV}`` environment
  variables, ``{stage:NAME}`` (the checkpoint written by an earlier stage) and
  ``{previous}`` (the checkpoint of the stage just before).
* A stage whose checkpoint is used later must be a single training run (no
  ``cv``) with an ``out`` path.
* ``--set KEY=VALUE`` on the command line overrides a variable (``--set out=/tmp/x``),
  a default of every stage (``--set epochs=2``) or one stage's option
  (``--set ultrasound.cv=3``); ``--dry-run`` prints the commands without running them.

Each stage runs exactly as its command line would: the lineage of the last
checkpoint lists every stage (dataset fingerprint, initial weights sha256).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Callable, Optional, Sequence

from featurekit.finetune.errors import FinetuneError

_REF = re.compile(r"\{(stage:[^{}]+|previous|[A-Za-z_][A-Za-z0-9_]*)\}")


def default_shared() -> str:
    return os.environ.get("FEATUREKIT_SHARED", "../shared")


def _coerce(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_pipeline(path, overrides: Sequence[str] = ()) -> dict:
    """Read and validate a pipeline file, applying ``KEY=VALUE`` overrides."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise FinetuneError(f"pipeline file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise FinetuneError(f"pipeline file {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("stages"), list) or not spec["stages"]:
        raise FinetuneError(f"pipeline file {path} needs a non-empty 'stages' list")
    unknown = sorted(set(spec) - {"description", "variables", "defaults", "stages"})
    if unknown:
        raise FinetuneError(f"pipeline file {path}: unknown top-level key(s) {unknown}")
    variables = {"shared": default_shared(), **spec.get("variables", {})}
    defaults = dict(spec.get("defaults", {}))
    stages = []
    for k, stage in enumerate(spec["stages"]):
        if not isinstance(stage, dict) or "data" not in stage:
            raise FinetuneError(f"pipeline file {path}: stage {k + 1} needs at least a 'data' entry")
        stages.append({"name": stage.get("name", f"stage{k + 1}"), **stage})
    names = [s["name"] for s in stages]
    if len(set(names)) != len(names):
        raise FinetuneError(f"pipeline file {path}: stage names repeat: {names}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FinetuneError(f"--set expects KEY=VALUE, got {item!r}")
        value = _coerce(value)
        target, _, option = key.partition(".")
        if option:
            if target not in names:
                raise FinetuneError(f"--set {item}: no stage named {target!r} (stages: {', '.join(names)})")
            stages[names.index(target)][option] = value
        elif key in variables:
            variables[key] = value
        else:
            defaults[key] = value
            for stage in stages:  # a command-line default beats the file's stage values
                stage[key] = value
    return {"path": str(path), "description": spec.get("description", ""), "variables": variables,
            "defaults": defaults, "stages": stages}


def _expand(value, variables: dict, outputs: dict, previous: Optional[str], where: str):
    if not isinstance(value, str):
        return value

    def sub(m):
        key = m.group(1)
        if key == "previous":
            if previous is None:
                raise FinetuneError(f"{where}: {{previous}} used where no earlier stage wrote a checkpoint")
            return previous
        if key.startswith("stage:"):
            name = key[6:]
            if name not in outputs:
                raise FinetuneError(f"{where}: {{stage:{name}}} names no earlier stage that writes a checkpoint "
                                    f"(known: {', '.join(outputs) or 'none'})")
            return outputs[name]
        if key in variables:
            return str(variables[key])
        raise FinetuneError(f"{where}: unknown variable {{{key}}} (variables: {', '.join(variables)})")

    out = _REF.sub(sub, value)
    return os.path.expandvars(out)


def stage_argv(stage: dict, defaults: dict, variables: dict, outputs: dict, previous: Optional[str]) -> list[str]:
    """The ``featurekit finetune`` arguments of one stage."""
    merged = {**defaults, **stage}
    where = f"stage {stage['name']!r}"
    argv = [str(_expand(merged.pop("data"), variables, outputs, previous, where))]
    merged.pop("name", None)
    for key, value in merged.items():
        value = _expand(value, variables, outputs, previous, where)
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def run_pipeline(path, overrides: Sequence[str] = (), *, runner: Callable[[list], object],
                 dry_run: bool = False, echo: Callable[[str], None] = print) -> list[list[str]]:
    """Run every stage of a pipeline file in order with ``runner(argv)``; returns the argv lists.

    ``runner`` is :func:`featurekit.cli.finetune.run_argv` from the command
    line; the checkpoint written by a stage (``out``) is what ``{stage:NAME}``
    and ``{previous}`` refer to in later stages.
    """
    spec = load_pipeline(path, overrides)
    outputs: dict = {}
    previous = None
    done = []
    for stage in spec["stages"]:
        argv = stage_argv(stage, spec["defaults"], spec["variables"], outputs, previous)
        merged = {**spec["defaults"], **stage}
        echo(f"# stage {stage['name']}: featurekit finetune {shlex.join(argv)}")
        if not dry_run:
            runner(argv)
        if merged.get("out") and not merged.get("cv"):
            out = str(_expand(merged["out"], spec["variables"], outputs, previous, f"stage {stage['name']!r}"))
            outputs[stage["name"]] = out
            previous = out
        done.append(argv)
    return done
