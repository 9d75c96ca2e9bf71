"""Study files: reading and checking their structure (:func:`load_study`).

A study file is TOML (JSON is read too, and so is a pipeline JSON of
``featurekit finetune --pipeline``: ``stages`` and their ``defaults``)::

    [study]
    name = "two_stage_transfer"
    title = "Two-stage transfer: ImageNet -> mammography -> ultrasound"
    default_profile = "quick"

    [variables]
    busi = { default = "{shared}/data/busi", help = "BUSI folder, or your own class-folder tree" }
    out = "runs/{study}/{profile}"

    [paper]                                   # what the paper reported, on its own data
    citation = "..."
    data = "CBIS-DDSM -> 582 ultrasound images of 300 patients"
    substitutions = ["data: mini-MIAS -> BUSI instead of CBIS-DDSM -> the paper's ultrasound set"]
    [[paper.reported]]
    label = "ResNet-50, two-stage transfer"
    ours = ["transfer"]                       # our rows shown beside it (run or feature-set names, globs)
    accuracy = 0.880
    roc_auc = 0.915

    [profiles.quick]
    description = "minutes on 2 CPU cores"
    substitutions = ["network: MobileNet-V2 (ImageNet) for ResNet-50, whose weights are not available"]
    set = { model = "mobilenet_v2", size = 96, epochs = 3 }

    [[steps]]
    name = "transfer"
    kind = "finetune"                         # extract, evaluate, finetune or report
    model = "resnet50"                        # step options: defaults of its stages
    [[steps.stages]]
    name = "mammography"
    data = "{mias}"
    out = "{out}/stage1.pt"
    [[steps.stages]]
    name = "ultrasound"
    data = "{busi}"
    weights = "{stage:mammography}"
    cv = "5"

Every option has the name of the command's option (:mod:`featurekit.studies.steps`);
:mod:`featurekit.studies.plan` resolves variables, profiles and ``--set``
overrides into typed steps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from featurekit.studies.steps import KINDS, OPTIONS, STEP_KEYS, StudyError

__all__ = ["Study", "Variable", "Profile", "Paper", "load_study", "shipped_studies", "find_study",
           "REPORTED_METRICS"]

TOP_KEYS = ("study", "variables", "paper", "profiles", "steps")
STUDY_KEYS = ("name", "title", "description", "default_profile")
VARIABLE_KEYS = ("default", "help")
PROFILE_KEYS = ("description", "substitutions", "set")
PAPER_KEYS = ("citation", "title", "data", "dataset", "settings", "reported", "substitutions", "note")
#: metrics a reference row may report (featurekit's metric names)
REPORTED_METRICS = ("accuracy", "balanced_accuracy", "precision", "npv", "sensitivity", "specificity", "f1",
                    "mcc", "youden_index", "roc_auc", "pr_auc")
REFERENCE_KEYS = ("label", "ours", "note", *REPORTED_METRICS)
LEGACY_KEYS = ("description", "variables", "defaults", "stages")


@dataclass
class Variable:
    name: str
    default: Optional[str] = None
    help: str = ""


@dataclass
class Profile:
    name: str
    description: str = ""
    substitutions: list = field(default_factory=list)
    set: dict = field(default_factory=dict)


@dataclass
class Paper:
    citation: str = ""
    title: str = ""
    data: str = ""
    settings: str = ""
    reported: list = field(default_factory=list)      # dicts: label, ours, note, metrics
    substitutions: list = field(default_factory=list)
    note: str = ""
    #: the name featurekit gives the paper's own data set (e.g. "breastmnist"): reference rows whose
    #: matching runs have this data set say "same data"
    dataset: str = ""


@dataclass
class Study:
    """A study file as read (nothing resolved yet)."""

    path: Path
    name: str
    title: str = ""
    description: str = ""
    default_profile: Optional[str] = None
    variables: dict = field(default_factory=dict)     # name -> Variable
    profiles: dict = field(default_factory=dict)      # name -> Profile
    paper: Optional[Paper] = None
    steps: list = field(default_factory=list)         # dicts: name, kind, skip, options..., stages (finetune)


# ---------------------------------------------------------------------------- finding
def studies_dir() -> Path:
    """The shipped studies: ``pipelines/`` of a source checkout, or the copy an installed wheel carries.

    A wheel's build puts ``pipelines/*.toml`` into ``featurekit/studies/pipelines`` (``setup.py``);
    a checkout (an editable install included) reads the top-level folder itself.
    """
    here = Path(__file__).resolve().parent
    installed = here / "pipelines"
    return installed if installed.is_dir() else here.parents[1] / "pipelines"


def shipped_studies() -> dict[str, Path]:
    """``{name: path}`` of the study files in ``pipelines/``."""
    folder = studies_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def find_study(name_or_path: str | os.PathLike) -> Path:
    """A study file by path, or a shipped study by name (``two_stage_transfer``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = shipped_studies()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise StudyError(f"no study file {p} and no shipped study named {str(name_or_path)!r} "
                     f"(shipped: {', '.join(shipped) or 'none'})")


# ---------------------------------------------------------------------------- reading
def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudyError(f"cannot read study file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StudyError(f"study file {path} is not valid JSON: {exc}") from None
    else:
        import tomllib

        try:
            obj = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise StudyError(f"study file {path} is not valid TOML: {exc}") from None
    if not isinstance(obj, dict):
        raise StudyError(f"study file {path}: expected a table at the top")
    return obj


def _check_keys(table: Any, allowed, where: str) -> dict:
    if not isinstance(table, dict):
        raise StudyError(f"{where}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}")
    return table


def _strings(value: Any, where: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StudyError(f"{where}: expected a list of strings")
    return list(value)


def load_study(name_or_path: str | os.PathLike) -> Study:
    """Read a study file (path or shipped name) and check its structure and keys."""
    path = find_study(name_or_path)
    raw = _read(path)
    if "stages" in raw and "steps" not in raw:
        return _legacy(path, raw)
    _check_keys(raw, TOP_KEYS, f"study file {path}")
    head = _check_keys(raw.get("study", {}), STUDY_KEYS, f"{path} [study]")
    study = Study(path, str(head.get("name", path.stem)), str(head.get("title", "")),
                  str(head.get("description", "")), head.get("default_profile"))
    declared = raw.get("variables", {})
    for name, v in _check_keys(declared, declared.keys(), f"{path} [variables]").items():
        if isinstance(v, dict):
            _check_keys(v, VARIABLE_KEYS, f"{path} [variables.{name}]")
            study.variables[name] = Variable(name, None if v.get("default") is None else str(v["default"]),
                                             str(v.get("help", "")))
        else:
            study.variables[name] = Variable(name, None if v is None else str(v))
    for name, p in _check_keys(raw.get("profiles", {}), raw.get("profiles", {}).keys(), f"{path} [profiles]").items():
        _check_keys(p, PROFILE_KEYS, f"{path} [profiles.{name}]")
        _check_keys(p.get("set", {}), p.get("set", {}).keys(), f"{path} [profiles.{name}.set]")
        study.profiles[name] = Profile(name, str(p.get("description", "")),
                                       _strings(p.get("substitutions"), f"{path} [profiles.{name}] substitutions"),
                                       dict(p.get("set", {})))
    if study.default_profile is not None and study.default_profile not in study.profiles:
        raise StudyError(f"{path} [study]: default_profile {study.default_profile!r} is not a profile "
                         f"({', '.join(study.profiles) or 'none defined'})")
    if "paper" in raw:
        study.paper = _paper(raw["paper"], path)
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise StudyError(f"study file {path} needs a non-empty [[steps]] list")
    study.steps = [_step(s, k, path) for k, s in enumerate(steps)]
    _check_names(study)
    return study


def _paper(table: Any, path: Path) -> Paper:
    _check_keys(table, PAPER_KEYS, f"{path} [paper]")
    reported = []
    for k, row in enumerate(table.get("reported", []) or []):
        where = f"{path} [[paper.reported]] {k + 1}"
        _check_keys(row, REFERENCE_KEYS, where)
        if "label" not in row:
            raise StudyError(f"{where}: needs a 'label' (the paper's model / setting)")
        for m in REPORTED_METRICS:
            if m in row and not isinstance(row[m], (int, float)):
                raise StudyError(f"{where}: {m} must be a number (a fraction: 0.939, not 93.9 %)")
            if m in row and not 0.0 <= float(row[m]) <= 1.0 and m not in ("mcc", "youden_index"):
                raise StudyError(f"{where}: {m} = {row[m]} is not a fraction in [0, 1] (write 0.939 for 93.9 %)")
        reported.append({**row, "ours": _strings(row.get("ours"), f"{where} ours")})
    return Paper(str(table.get("citation", "")), str(table.get("title", "")), str(table.get("data", "")),
                 str(table.get("settings", "")), reported,
                 _strings(table.get("substitutions"), f"{path} [paper] substitutions"), str(table.get("note", "")),
                 str(table.get("dataset", "")))


def _step(table: Any, k: int, path: Path) -> dict:
    where = f"{path} step {k + 1}"
    if not isinstance(table, dict):
        raise StudyError(f"{where}: expected a table")
    kind = table.get("kind")
    if kind not in KINDS:
        raise StudyError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    name = str(table.get("name", f"{kind}{k + 1}"))
    where = f"{path} step {name!r}"
    allowed = set(STEP_KEYS) | set(OPTIONS[kind]) | ({"stages"} if kind == "finetune" else set())
    _check_keys(table, allowed, where)
    step = {k2: v for k2, v in table.items() if k2 != "stages"}
    step["name"] = name
    if kind == "finetune":
        stages = table.get("stages")
        if stages is None:
            stages = [{"name": name}]
        if not isinstance(stages, list) or not stages:
            raise StudyError(f"{where}: 'stages' must be a non-empty list of tables")
        step["stages"] = []
        for j, st in enumerate(stages):
            _check_keys(st, {"name"} | set(OPTIONS["finetune"]), f"{where} stage {j + 1}")
            step["stages"].append({"name": str(st.get("name", f"{name}{j + 1}" if len(stages) > 1 else name)),
                                   **{k2: v for k2, v in st.items() if k2 != "name"}})
    return step


def _check_names(study: Study) -> None:
    steps = [s["name"] for s in study.steps]
    stages = [st["name"] for s in study.steps for st in s.get("stages", [])]
    dup = sorted({n for n in steps if steps.count(n) > 1})
    if dup:
        raise StudyError(f"{study.path}: step names repeat: {dup}")
    dup = sorted({n for n in stages if stages.count(n) > 1})
    if dup:
        raise StudyError(f"{study.path}: stage names repeat: {dup}")
    clash = sorted(set(stages) & set(steps) - {s["name"] for s in study.steps if len(s.get("stages", [])) == 1
                                                and s["stages"][0]["name"] == s["name"]})
    if clash:
        raise StudyError(f"{study.path}: a stage and a step share the name(s) {clash}")


def _legacy(path: Path, raw: dict) -> Study:
    """A pipeline JSON of ``featurekit finetune --pipeline`` (``stages``, ``defaults``...): one finetune step."""
    _check_keys(raw, LEGACY_KEYS, f"pipeline file {path}")
    defaults = raw.get("defaults", {}) or {}
    table = {"name": "finetune", "kind": "finetune", **defaults, "stages": raw["stages"]}
    for k, st in enumerate(raw["stages"]):
        if not isinstance(st, dict) or "data" not in st:
            raise StudyError(f"pipeline file {path}: stage {k + 1} needs at least a 'data' entry")
    variables = {n: Variable(n, None if v is None else str(v)) for n, v in (raw.get("variables") or {}).items()}
    study = Study(path, path.stem, description=str(raw.get("description", "")), variables=variables)
    study.steps = [_step(table, 0, path)]
    _check_names(study)
    return study
