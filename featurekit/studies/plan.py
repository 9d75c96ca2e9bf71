"""From a study file to a plan of typed steps: variables, profiles, ``--set``, checks, hashes.

Resolution, in order:

1. the profile (``--profile``, else the study's ``default_profile``) and then
   every ``--set KEY=VALUE`` are applied to the file's values. ``KEY`` is a
   variable; an option name (set in every step and stage that has it);
   ``STEP.OPTION``; ``STAGE.OPTION``; or ``STEP.STAGE.OPTION``. A later
   assignment beats an earlier one and the file; ``STEP.skip=true`` leaves a step out.
2. ``{VARIABLE}`` in any string is replaced (built in: ``{shared}`` =
   ``$FEATUREKIT_SHARED`` or ``../shared``, ``{study}``, ``{profile}``,
   ``{here}`` = the study file's folder, ``{out}`` = ``runs/{study}/{profile}``
   unless the study defines it), then ``$ENV``.
3. The study's conventions fill what a step leaves out: an evaluate step
   writes ``{out}/STEP``, a fine-tuning stage ``{out}/STAGE``, the report
   ``{out}/report.html`` over every run folder of the study.
   (:func:`featurekit.studies.describe.describe_plan` prints the result.)
4. Every step becomes a typed object (:mod:`featurekit.studies.steps`);
   ``{stage:NAME}`` / ``{previous}`` become the earlier stage's checkpoint or run folder.
5. Problems that need the user -- an unset variable, a data path that does
   not exist -- are collected, each naming the variable to set.

Each step and stage gets a *hash* of everything that changes its results (its
typed configuration, with the recipe's values filled in, and the hashes of the
stages it starts from; the marker also records when those stages finished, so a
stage re-run for any reason makes the stages after it run again): a finished step whose marker (``study-step.json``)
holds the same hash is reused, not recomputed (:mod:`featurekit.studies.execute`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from featurekit.data.spec import DataSpec
from featurekit.errors import FeaturekitError
from featurekit.finetune.config import FinetuneConfig
from featurekit.finetune.pipeline import (
    FinetuneStage,
    RunOptions,
    chain_target,
    resolve_stage_refs,
    stage_outputs,
)
from featurekit.io import canonical_json
from featurekit.options import COMMANDS, with_where
from featurekit.studies.steps import (
    NOT_HASHED,
    OPTIONS,
    StudyError,
    build_step,
    finetune_stage,
    option_value,
    parse_bool,
)
from featurekit.studies.study import Study

__all__ = ["Plan", "PlannedStep", "PlannedStage", "plan_study", "parse_value", "cli_command", "MARKER"]

MARKER = "study-step.json"
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


@dataclass
class PlannedStage:
    stage: Any                 # FinetuneStage
    hash: str
    marker: Path
    outputs: list
    command: str
    after: list = field(default_factory=list)   # the PlannedStages it starts from


@dataclass
class PlannedStep:
    name: str
    kind: str
    skipped: bool = False
    step: Any = None           # ExtractStep / EvaluateStep / ReportStep
    stages: list = field(default_factory=list)
    hash: Optional[str] = None
    marker: Optional[Path] = None
    outputs: list = field(default_factory=list)
    command: str = ""


@dataclass
class Plan:
    study: Study
    profile: str
    variables: dict
    steps: list
    substitutions: list
    overrides: list
    problems: list

    def run_folders(self) -> list[Path]:
        """Every run folder the study writes (evaluate steps and cross-validated stages), in order."""
        out = []
        for s in self.steps:
            if s.skipped:
                continue
            if s.kind == "evaluate":
                out.append(Path(s.step.out))
            for st in s.stages:
                if st.stage.run.cv is not None:
                    out.append(st.outputs[0])
        return out


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``) or else the text."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _shared() -> str:
    return os.environ.get("FEATUREKIT_SHARED", "../shared")


def _valid_for(step: dict, option: str) -> bool:
    return option == "skip" or option in OPTIONS[step["kind"]]


def _apply(steps: list, variables: dict, key: str, value: Any, origin: str) -> None:
    parts = key.split(".")
    by_step = {s["name"]: s for s in steps}
    by_stage = {st["name"]: (s, st) for s in steps for st in s.get("stages", [])}
    where = f"{origin} {key}"
    if len(parts) == 1:
        if key in variables:
            variables[key] = value
            return
        hits = [s for s in steps if key in OPTIONS[s["kind"]]]
        if not hits:
            names = sorted(set(variables) | set().union(*(OPTIONS[s["kind"]] for s in steps)))
            raise StudyError(f"{where}: {key!r} is neither a variable nor an option of any step; valid: "
                             f"{', '.join(names)} (or STEP.OPTION, STAGE.OPTION)")
        for s in hits:
            s[key] = _typed(s["kind"], key, value, where)
            for st in s.get("stages", []):
                st[key] = s[key]
        return
    if len(parts) == 2 and parts[0] in by_step:
        step, option = by_step[parts[0]], parts[1]
        if not _valid_for(step, option):
            raise StudyError(f"{where}: step {step['name']!r} ({step['kind']}) has no option {option!r}; valid: "
                             f"{', '.join(['skip', *sorted(OPTIONS[step['kind']])])}")
        if option == "skip":
            step[option] = parse_bool(value, option, where)
            return
        value = step[option] = _typed(step["kind"], option, value, where)
        for st in step.get("stages", []):
            st[option] = value
        return
    if len(parts) in (2, 3):
        stage_name, option = parts[-2], parts[-1]
        if stage_name in by_stage and (len(parts) == 2 or by_stage[stage_name][0]["name"] == parts[0]):
            if option not in OPTIONS["finetune"]:
                raise StudyError(f"{where}: stage {stage_name!r} has no option {option!r}; valid: "
                                 f"{', '.join(sorted(OPTIONS['finetune']))}")
            by_stage[stage_name][1][option] = _typed("finetune", option, value, where)
            return
    raise StudyError(f"{where}: {parts[0]!r} names no step or stage; steps: {', '.join(by_step)}; "
                     f"stages: {', '.join(by_stage) or 'none'}")


def _typed(kind: str, option: str, value: Any, where: str) -> Any:
    """An override's value checked against the option's type now (text naming variables: once expanded)."""
    if isinstance(value, str) and ("{" in value or "$" in value):
        return value
    return option_value(kind, option, value, where)


class _Expander:
    """``{VARIABLE}`` and ``$ENV`` in strings; unset ones become problems (and a placeholder), each naming
    where it was used -- a path is never built with an unset name left in it as text."""

    def __init__(self, variables: dict, study: Study, problems: list):
        self.raw, self.study, self.problems = variables, study, problems
        self.values: dict[str, str] = {}  # each variable's expanded text

    def var(self, name: str, trail: tuple = ()) -> str:
        if name in self.values:
            return self.values[name]
        if name in trail:
            loop = " -> ".join(trail + (name,))
            raise StudyError(f"{self.study.path}: variables refer to each other in a loop: {loop}")
        if name not in self.raw:
            known = ", ".join(sorted(self.raw))
            raise StudyError(f"{self.study.path}: unknown variable {{{name}}}; variables: {known}")
        value = self.raw[name]
        if value is None:
            v = self.study.variables.get(name)
            hint = f" ({v.help})" if v is not None and v.help else ""
            msg = f"variable {name!r} is not set: --set {name}=PATH{hint}"
            if msg not in self.problems:
                self.problems.append(msg)
            out = f"<{name} unset>"
        else:
            out = self.text(str(value), trail + (name,), f"{self.study.path}: variable {name!r}")
        self.values[name] = out
        return out

    def text(self, s: str, trail: tuple = (), where: str = "") -> str:
        def sub(m):  # {previous} is a stage reference, resolved with the stages
            return m.group(0) if m.group(1) == "previous" else self.var(m.group(1), trail)

        def env(m):
            name = m.group(1) or m.group(2)
            if name in os.environ:
                return os.environ[name]
            msg = f"{where or self.study.path}: environment variable ${name} is not set (used in {s!r})"
            if msg not in self.problems:
                self.problems.append(msg)
            return f"<${name} unset>"

        return _ENV.sub(env, _VAR.sub(sub, s))

    def value(self, v: Any, where: str = "") -> Any:
        if isinstance(v, str):
            return self.text(v, where=where)
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        return v

    def option(self, kind: str, key: str, v: Any, where: str) -> Any:
        """An option's value with its variables expanded, checked against the option's type."""
        return option_value(kind, key, self.value(v, f"{where} {key}"), where)


def _hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def _hashable(d: dict) -> dict:
    return {k: (_hashable(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in NOT_HASHED}


def cli_command(command: str, options: dict) -> str:
    """The command line equivalent to a step's resolved options (only those that differ from the default),
    generated from the command's one declaration."""
    table = COMMANDS[command]
    positional = [options["data"]] if "data" in options else [str(r) for r in options.get("runs", [])]
    return with_where(table.command_line({k: v for k, v in options.items() if k in table}, positional), options)


def stage_command(stage: FinetuneStage) -> str:
    """The ``featurekit finetune`` command line doing what a study's ``stage`` does (its plan and provenance).

    The options that differ from their defaults -- for a training option, the recipe's value -- and
    always the model, weights and recipe. The command line's spellings live with the options
    (:data:`featurekit.options.FINETUNE`), not in the fine-tuning code.
    """
    cfg, run = stage.config, stage.run
    base = FinetuneConfig(model=cfg.model, weights=cfg.weights, recipe=cfg.recipe)
    plain_data, plain_run = DataSpec(stage.data.data), RunOptions()
    values = {f.name: getattr(stage.data, f.name) for f in fields(DataSpec)
              if getattr(stage.data, f.name) != getattr(plain_data, f.name)}
    values.update({f.name: getattr(cfg, f.name) for f in fields(FinetuneConfig)
                   if f.name in ("model", "weights", "recipe") or getattr(cfg, f.name) != getattr(base, f.name)})
    values.update({f.name: getattr(run, f.name) for f in fields(RunOptions)
                   if getattr(run, f.name) != getattr(plain_run, f.name)})
    command = COMMANDS["finetune"].command_line(values, [stage.data.data], defaults=True)
    if run.cluster is not None:  # fine-tuning spells the cluster --dask-scheduler (--scheduler is the LR's)
        command += " --executor dask" + (f" --dask-scheduler {shlex.quote(run.cluster)}" if run.cluster else "")
    return command


def _class_problem(spec, kind: str, where: str, loaded: dict) -> Optional[str]:
    """The data's classes against the step's ``classes`` and ``positive``, before anything runs.

    Loads the sample list as the step will (no image is decoded; the near-duplicate
    grouping and subsample, which read images or only pick rows, are left out): a
    class that is not there, a positive class outside the classes, or two classes
    without a positive one where results need it (evaluate, a cross-validated
    finetune stage). ``loaded`` holds the plan's sample lists (or their errors) by
    what they were loaded with: steps on the same data read it once.
    """
    from featurekit.data import load_dataset

    if spec.is_phantom:
        return None
    key = (spec.data, spec.format, spec.classes, spec.positive, spec.roi, spec.window, spec.slices)
    if key not in loaded:
        try:
            loaded[key] = load_dataset(spec.data, format=spec.format, classes=list(spec.classes or []) or None,
                                       positive=spec.positive, roi=spec.roi, window=spec.window,
                                       slices=spec.slices)
        except FeaturekitError as exc:
            loaded[key] = exc
    ds = loaded[key]
    if isinstance(ds, FeaturekitError):
        return f"{where}: {ds}"
    labelled = {int(v) for v in np.asarray(ds.labels) if v >= 0}
    if kind in ("evaluate", "finetune") and len(labelled) == 2 and ds.positive is None:
        return (f"{where}: two classes ({', '.join(ds.class_names)}) and no positive class: name the positive "
                "one (positive = ...), or give three or more classes for the multi-class answer")
    return None


def _data_problem(raw_data: Any, spec, where: str, study: Study, kind: str, loaded: dict) -> Optional[str]:
    if not spec.missing():
        return _class_problem(spec, kind, where, loaded)
    names = _VAR.findall(str(raw_data)) if isinstance(raw_data, str) else []
    names = [n for n in names if n in study.variables] or names
    if names:
        v = study.variables.get(names[0])
        hint = f" ({v.help})" if v is not None and v.help else ""
        return f"{where}: data path {spec.data} does not exist: set the variable {names[0]!r} " \
               f"(--set {names[0]}=PATH){hint}"
    return f"{where}: data path {spec.data} does not exist (set its 'data' option)"


def plan_study(study: Study, profile: Optional[str] = None, overrides: Sequence[str] = ()) -> Plan:
    """Resolve a study into typed, hashed steps (see the module docstring)."""
    if profile is None:
        profile = study.default_profile
    if profile is not None and profile not in study.profiles:
        raise StudyError(f"{study.path}: no profile {profile!r}; profiles: {', '.join(study.profiles) or 'none'}")
    prof = study.profiles.get(profile)
    steps = copy.deepcopy(study.steps)
    variables = {n: v.default for n, v in study.variables.items()}
    variables.setdefault("out", "runs/{study}/{profile}")
    sets = [(k, v, f"profile {profile}:") for k, v in (prof.set.items() if prof else [])]
    for item in overrides:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise StudyError(f"--set expects KEY=VALUE, got {item!r}")
        sets.append((key.strip(), parse_value(text), "--set"))
    builtins = {"shared": _shared(), "study": study.name, "profile": profile or "default",
                "here": str(study.path.parent)}
    for key, value, origin in sets:
        if key in builtins:
            builtins[key] = str(value)
        else:
            _apply(steps, variables, key, value, origin)
    problems: list = []
    loaded: dict = {}  # the steps' sample lists, read once per data specification
    ex = _Expander({**builtins, **variables}, study, problems)
    out_root = ex.var("out")
    planned: list[PlannedStep] = []
    targets: dict[str, str] = {}
    earlier: dict[str, PlannedStage] = {}
    unchainable: dict[str, str] = {}   # stage -> why a later stage cannot start from it
    for raw in steps:
        kind, name = raw["kind"], raw["name"]
        where = f"step {name!r}"
        if parse_bool(raw.get("skip", False), "skip", f"{study.path} {where}"):
            planned.append(PlannedStep(name, kind, skipped=True))
            continue
        own = {k: v for k, v in raw.items() if k not in ("name", "kind", "skip", "stages")}
        if kind == "finetune":
            planned.append(_plan_finetune(raw, own, out_root, ex, study, targets, earlier, unchainable, problems,
                                          loaded, where))
            continue
        conventions = {"evaluate": {"out": f"{out_root}/{name}"}, "report": {"out": out_root},
                       "extract": {}}[kind]
        opts = {**OPTIONS[kind], **conventions,
                **{k: ex.option(kind, k, v, f"{study.path} {where}") for k, v in own.items()}}
        step = build_step(kind, name, opts, where)
        p = PlannedStep(name, kind, step=step, command=cli_command(kind, opts))
        if kind != "report":
            problem = _data_problem(own.get("data"), step.data, where, study, kind, loaded)
            if problem:
                problems.append(problem)
        if kind == "evaluate":
            p.hash = _hash({"kind": kind, "data": step.data.to_dict(),
                            "options": _hashable({**step.options, "weights": step.options["weights"].tag})})
            p.marker = Path(step.out) / MARKER
            p.outputs = [Path(step.out)]
        planned.append(p)
    plan = Plan(study, profile or "default", dict(ex.values), planned,
                merge_substitutions(study.paper.substitutions if study.paper else [],
                                    prof.substitutions if prof else []),
                [f"{k}={v!r}" for k, v, o in sets if o == "--set"], problems)
    _default_report_runs(plan)
    return plan


def substitution_topic(text: str) -> str:
    """The topic of a substitution: its text before the first ``": "`` (``"data"``, ``"network"``...), or ''."""
    head, sep, _ = str(text).partition(": ")
    return head.strip().lower() if sep and head.strip() and len(head) <= 40 else ""


def merge_substitutions(study: Sequence[str], profile: Sequence[str]) -> list[str]:
    """The study's substitutions with a profile's: a profile's item replaces the study's items of its topic
    (``"data: ..."`` replaces the study's ``"data: ..."``) in their place; other profile items follow."""
    own = {substitution_topic(s) for s in profile} - {""}
    replaced: set[str] = set()
    out: list[str] = []
    for s in study:
        topic = substitution_topic(s)
        if topic in own:
            if topic not in replaced:
                out += [p for p in profile if substitution_topic(p) == topic]
                replaced.add(topic)
        else:
            out.append(s)
    return out + [p for p in profile if substitution_topic(p) not in replaced]


def _plan_finetune(raw, own, out_root, ex, study, targets, earlier, unchainable, problems, loaded,
                   where) -> PlannedStep:
    """The stages of a finetune step: options merged (stage > step > conventions), references resolved, hashed."""
    p = PlannedStep(raw["name"], "finetune")
    previous_name = None

    for st in raw["stages"]:
        sname = st["name"]
        swhere = f"{where} stage {sname!r}" if sname != raw["name"] else where
        conventions = {"runs_dir": out_root, "run_name": sname}
        opts = {**OPTIONS["finetune"], **conventions,
                **{k: ex.option("finetune", k, v, f"{study.path} {swhere}")
                   for k, v in {**own, **{k: v for k, v in st.items() if k != "name"}}.items()}}
        refs = re.findall(r"\{stage:([^{}]+)\}", str(opts.get("weights") or ""))
        if "{previous}" in str(opts.get("weights") or ""):
            refs.append(previous_name)
        for r in refs:
            if r in unchainable:
                raise StudyError(f"{swhere} starts from {r!r}, but {unchainable[r]}")
        try:
            opts["weights"] = resolve_stage_refs(opts["weights"], targets,
                                                 targets.get(previous_name) if previous_name else None, swhere)
            stage = finetune_stage(sname, opts, swhere)
        except StudyError:
            raise
        except FeaturekitError as exc:  # a reference to no earlier stage; the configuration's own checks
            raise StudyError(exc if str(exc).startswith(swhere) else f"{swhere}: {exc}") from None
        # a cross-validated stage scores two classes by the positive one; a single run trains on the classes
        problem = _data_problem({**own, **st}.get("data"), stage.data, swhere, study,
                                "finetune" if stage.run.cv is not None else "train", loaded)
        if problem:
            problems.append(problem)
        cfg = _hashable(stage.to_dict())
        after = [earlier[r] for r in refs]
        h = _hash({"kind": "finetune", **cfg, "after": [a.hash for a in after]})
        run_dir, ckpt = stage_outputs(stage)
        outputs = [run_dir] if stage.run.cv is not None else [ckpt]
        if run_dir is not None:
            marker = run_dir / MARKER
        elif ckpt is not None:
            marker = ckpt.with_name(ckpt.name + "." + MARKER)
        else:
            raise StudyError(f"{swhere}: writes neither a run folder nor a checkpoint; give it a run_name or out")
        p.stages.append(PlannedStage(stage, h, marker, outputs, stage_command(stage), after))
        earlier[sname] = p.stages[-1]
        try:
            targets[sname] = chain_target(stage)
        except FeaturekitError as exc:  # said only if a later stage starts from it
            unchainable[sname] = str(exc)
        previous_name = sname
    return p


def _default_report_runs(plan: Plan) -> None:
    """A report step reports the named steps' / stages' run folders (default: all of them); skipped ones drop out.

    Any other entry must be a run folder that exists now (nothing in the study writes it): one that
    does not is a problem of the plan -- found by a dry run, refused before the first step runs.
    """
    folders: dict[str, list] = {}
    raw_steps = {s["name"]: s for s in plan.study.steps}
    for s in plan.steps:
        folders[s.name] = []
        for stage in raw_steps[s.name].get("stages", []):
            folders[stage["name"]] = []
        if s.skipped:
            continue
        if s.kind == "evaluate":
            folders[s.name] = [Path(s.step.out)]
        for st in s.stages:
            if st.stage.run.cv is not None:
                folders[st.stage.name] = [st.outputs[0]]
                folders[s.name].append(st.outputs[0])
    for s in plan.steps:
        if s.kind != "report" or s.skipped:
            continue
        runs = []
        for r in s.step.runs or [str(p) for p in plan.run_folders()]:
            if s.step.runs and r not in folders and not (Path(r) / "results.csv").is_file():
                plan.problems.append(f"{plan.study.path} step {s.name!r} runs: {r!r} is neither a step or stage "
                                     f"of this study ({', '.join(folders)}) nor a run folder (no {r}/results.csv)")
            runs += [str(p) for p in folders[r]] if r in folders else [r]
        s.step = type(s.step)(s.step.name, tuple(dict.fromkeys(runs)), s.step.out, s.step.top, s.step.metric)
        s.command = cli_command("report", {"runs": list(s.step.runs), "out": s.step.out, "top": s.step.top,
                                           "metric": s.step.metric})
