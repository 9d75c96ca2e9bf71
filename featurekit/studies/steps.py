"""The four kinds of study steps as typed objects, built from a study file's option tables.

A step's keys are its command's options as :mod:`featurekit.options` declares
them (``featurekit extract``, ``evaluate``, ``finetune``, ``report``): the API's
names, which the command line may spell otherwise (``num_workers`` is
``--workers``, ``run_name`` is ``--name``, ``progress = false`` is ``--quiet``,
``amp = false`` of a fine-tuning is ``--no-amp``). :data:`OPTIONS` and
:data:`OPTION_TYPES` are read from those declarations (:func:`schema`), so an
option declared there is a study key with the same default and check; any other
key is an error naming it. :func:`build_step` turns a resolved option table into an
:class:`ExtractStep`, :class:`EvaluateStep`, :class:`FinetuneStep` (typed
:class:`~featurekit.finetune.pipeline.FinetuneStage` objects) or
:class:`ReportStep`, validating every value on the way -- nothing is handed
on as command-line text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Optional

from featurekit.data.spec import DataSpec
from featurekit.errors import FeaturekitError
from featurekit.options import COMMANDS, DATA, EVALUATE, EXTRACT, FINETUNE, REPORT, Option, OptionError, OptionSet
from featurekit.specs import FusionSpec, Weights, parse_feature_token, parse_handcrafted

__all__ = ["KINDS", "OPTIONS", "OPTION_TYPES", "schema", "option_value", "parse_bool", "StudyError", "ExtractStep",
           "EvaluateStep", "FinetuneStep", "ReportStep", "build_step", "finetune_stage", "stage_of", "valid_options",
           "NOT_HASHED"]


class StudyError(FeaturekitError, ValueError):
    """A study file (or an override) that cannot be run; the message names the file and the key."""


#: where a step's work runs (the commands' --executor, --scheduler, --shard-size)
_WHERE = OptionSet("where", [Option("executor", "text", "local", choices=("local", "dask")),
                             Option("dask_scheduler", "text", None),
                             Option("shard_size", "int", None, minimum=1)])
#: Step kinds: the commands a study runs.
KINDS = ("extract", "evaluate", "finetune", "report")


def schema(kind: str) -> OptionSet:
    """Every option of a step of ``kind``: its command's declaration (:data:`featurekit.options.COMMANDS`),
    the dataset path (``runs`` for a report) and where the work runs (fine-tuning folds are not sharded)."""
    if kind == "report":
        return OptionSet(kind, [Option("runs", "list", [], repeat=True)], parts=(COMMANDS[kind],))
    where = [o for o in _WHERE if not (kind == "finetune" and o.name == "shard_size")]
    return OptionSet(kind, [Option("data", "text"), *where], parts=(COMMANDS[kind],))


class _ByKind(Mapping):
    """``kind -> table``, read from :func:`schema` when asked (so from the declarations as they are)."""

    def __init__(self, table: Callable[[OptionSet], dict]):
        self._table = table

    def __getitem__(self, kind: str) -> dict:
        if kind not in KINDS:
            raise KeyError(kind)
        return self._table(schema(kind))

    def __iter__(self):
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)


#: Options of each step kind (the command's option names) and their defaults.
OPTIONS: Mapping[str, dict[str, Any]] = _ByKind(OptionSet.defaults)
#: The type of each step kind's options, as its command declares it: ``int``, ``float`` (finite), ``bool``,
#: ``text`` (a string, or a number such as ``cv = 5``) or ``list`` (a list of texts, or one text). Anything
#: else is refused where it is given, naming the key.
OPTION_TYPES: Mapping[str, dict[str, str]] = _ByKind(OptionSet.types)
#: Options that change how a step runs, not what it computes: not part of its hash.
NOT_HASHED = frozenset({"progress", "num_workers", "n_jobs", "lock_timeout", "cache_images", "overwrite",
                        "executor", "dask_scheduler", "shard_size", "cluster"})
#: Keys of every step besides its options.
STEP_KEYS = ("name", "kind", "skip")


def parse_bool(value: Any, key: str, where: str) -> bool:
    """A strict boolean: ``true``/``false`` (TOML's, or the words true/yes/on/1, false/no/off/0 as text).

    Anything else -- ``"maybe"``, ``2`` -- is a :class:`StudyError` naming ``where`` and ``key``: a
    value that is not clearly one or the other must not decide whether a step runs.
    """
    try:
        return bool(Option(key, "bool").check(value, where))
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def option_value(kind: str, key: str, value: Any, where: str) -> Any:
    """``value`` of option ``key`` of a ``kind`` step, checked (and converted from text) as declared.

    One rule for every value, wherever it comes from (the study file, a profile, ``--set``),
    so a wrong one is refused when the study is planned -- a dry run included -- naming
    ``where`` and ``key``, never by the step that meets it. ``None`` stays None (the default).
    """
    table = schema(kind)
    if key not in table:
        raise StudyError(f"{where}: a {kind} step has no option {key!r}; valid: {', '.join(sorted(table.options))}")
    try:
        return table[key].check(value, where)
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def _resolve(table: OptionSet, o: dict, where: str) -> dict[str, Any]:
    """The resolved values of ``table``'s options among a step's options ``o``."""
    try:
        return table.resolve({k: o[k] for k in table.options if k in o}, where)
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def valid_options(kind: str) -> list[str]:
    return sorted(OPTIONS[kind])


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _where(o: dict, where: str) -> dict:
    """``shard_size`` (where the step has one) and ``cluster``: None (this process) or the Dask scheduler
    the step runs on ("" = Dask's configured address)."""
    values = _resolve(_WHERE, o, where)
    cluster = None if values["executor"] == "local" and not values["dask_scheduler"] else \
        str(values["dask_scheduler"] or "")
    return {**({"shard_size": values["shard_size"]} if "shard_size" in o else {}), "cluster": cluster}


def _data(opts: dict, where: str) -> DataSpec:
    if opts.get("data") in (None, ""):
        raise StudyError(f"{where}: no 'data' given (a dataset path, usually through a variable)")
    try:
        return DataSpec(opts["data"], **DATA.resolve({k: opts[k] for k in DATA.options}, where))
    except FeaturekitError as exc:
        raise StudyError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------- typed steps
@dataclass(frozen=True)
class ExtractStep:
    """``featurekit extract`` as an object (see :func:`featurekit.extraction.pipeline.extract`)."""

    name: str
    data: DataSpec
    layers: tuple
    handcrafted: tuple
    weights: Weights
    options: dict = field(default_factory=dict)   # the other options of featurekit.options.EXTRACT but
    #                                                progress, and shard_size, cluster: extract()'s keywords
    kind: str = "extract"


@dataclass(frozen=True)
class EvaluateStep:
    """``featurekit evaluate`` as an object (see :func:`featurekit.orchestration.evaluate_features`)."""

    name: str
    data: DataSpec
    options: dict   # the resolved options of featurekit.options.EVALUATE: evaluate_features()'s keywords
    where: dict = field(default_factory=dict)   # shard_size, cluster: where its work runs
    kind: str = "evaluate"

    @property
    def out(self) -> str:
        return str(self.options["out"])


@dataclass(frozen=True)
class FinetuneStep:
    """``featurekit finetune`` stages run in order (``{stage:NAME}`` chains them)."""

    name: str
    stages: tuple   # FinetuneStage, references already resolved
    kind: str = "finetune"


@dataclass(frozen=True)
class ReportStep:
    """``featurekit report`` of run folders, with the paper's reference rows."""

    name: str
    runs: tuple
    out: str
    top: int = 6
    metric: str = "roc_auc_pooled"
    kind: str = "report"


def build_step(kind: str, name: str, opts: dict, where: str):
    """A typed step from its resolved options (every key of ``OPTIONS[kind]`` present)."""
    try:
        return _BUILDERS[kind](name, opts, where)
    except StudyError:
        raise
    except FeaturekitError as exc:
        raise StudyError(f"{where}: {exc}") from None


def _read_params(path, families) -> list:
    """A pyradiomics parameter file named in ``handcrafted`` (``radiomics:params=FILE.yaml``),
    read while the study is planned: the step carries its settings as specs (each its cache entry)."""
    from featurekit.extraction.pipeline import read_handcrafted_params

    return read_handcrafted_params(path, families)


def _extract(name: str, o: dict, where: str) -> ExtractStep:
    values = _resolve(EXTRACT, o, where)
    layers = tuple(values.pop("layers"))
    hand = tuple(parse_handcrafted(values.pop("handcrafted"), read_params=_read_params))
    if not layers and not hand:
        raise StudyError(f"{where}: an extract step needs 'layers' and/or 'handcrafted'")
    weights = Weights.parse(values.pop("weights"), seed=values.pop("seed"))
    values.pop("progress")  # the run's (featurekit run --quiet)
    return ExtractStep(name, _data(o, where), layers, hand, weights, {**values, **_where(o, where)})


def _evaluate(name: str, o: dict, where: str) -> EvaluateStep:
    from featurekit.evaluation.estimators.classifiers import resolve_classifier
    from featurekit.evaluation.folds.protocols import parse_cv

    values = _resolve(EVALUATE, o, where)
    if not values["features"] and not values["fuse"]:
        raise StudyError(f"{where}: an evaluate step needs 'features' and/or 'fuse'")
    for token in values["features"]:
        parse_feature_token(token)
    for fusion in values["fuse"]:
        FusionSpec.parse(fusion)
    for c in values["classifiers"]:
        resolve_classifier(c)
    if str(values["cv"]).strip().lower() != "predefined":
        parse_cv(str(values["cv"]))
    if not values["out"]:
        raise StudyError(f"{where}: an evaluate step needs 'out' (its run folder)")
    return EvaluateStep(name, _data(o, where), values, _where(o, where))


def finetune_stage(name: str, o: dict, where: str):
    """One :class:`~featurekit.finetune.pipeline.FinetuneStage` from a stage's resolved options."""
    return stage_of(_data(o, where), _resolve(FINETUNE, o, where), name, _where(o, where)["cluster"])


def stage_of(data: DataSpec, values: Mapping[str, Any], name: str = "finetune", cluster: Optional[str] = None):
    """The :class:`~featurekit.finetune.pipeline.FinetuneStage` of resolved :data:`~featurekit.options.FINETUNE`
    values (the command's and a study stage's): its configuration and run options take them by name."""
    from featurekit.finetune.config import FinetuneConfig
    from featurekit.finetune.pipeline import FinetuneStage, RunOptions

    config = {f.name: values[f.name] for f in fields(FinetuneConfig)}
    if config["augment"] is not None:  # the config reads the grammar: none, default, or names
        config["augment"] = ",".join(config["augment"]) or "none"
    run = {f.name: values[f.name] for f in fields(RunOptions) if f.name != "cluster"}
    return FinetuneStage(data, FinetuneConfig(**config), RunOptions(**run, cluster=cluster), name)


def _report(name: str, o: dict, where: str) -> ReportStep:
    values = _resolve(REPORT, o, where)
    if not values["out"]:
        raise StudyError(f"{where}: a report step needs 'out'")
    return ReportStep(name, tuple(str(r) for r in _list(o["runs"])), str(values["out"]), values["top"],
                      values["metric"])


_BUILDERS = {"extract": _extract, "evaluate": _evaluate, "report": _report}
