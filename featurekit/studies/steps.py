"""The four kinds of study steps as typed objects, built from a study file's option tables.

A step's options have the names of its command's options (``featurekit extract``,
``evaluate``, ``finetune``, ``report``) with ``_`` for ``-``: ``freeze_until`` is
``--freeze-until``, ``run_name`` is ``--name``, a flag is ``true``/``false``.
:data:`OPTIONS` lists them with the commands' defaults (a test checks them
against the parsers); :func:`build_step` turns a resolved option table into an
:class:`ExtractStep`, :class:`EvaluateStep`, :class:`FinetuneStep` (typed
:class:`~featurekit.finetune.pipeline.FinetuneStage` objects) or
:class:`ReportStep`, validating every value on the way -- nothing is handed
on as command-line text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from featurekit.data.spec import DataSpec
from featurekit.devices import AMP_CHOICES, PREPROCESS_CHOICES
from featurekit.errors import FeaturekitError
from featurekit.options import DATA, EVALUATE, REPORT, Option, OptionError
from featurekit.specs import POOLS, RESIZE_MODES, FusionSpec, LayerSpec, Weights, parse_feature_token, parse_handcrafted

__all__ = ["KINDS", "OPTIONS", "OPTION_TYPES", "option_value", "parse_bool", "StudyError", "ExtractStep",
           "EvaluateStep", "FinetuneStep", "ReportStep",
           "build_step", "valid_options", "NOT_HASHED"]


class StudyError(FeaturekitError, ValueError):
    """A study file (or an override) that cannot be run; the message names the file and the key."""


_DATA = {"data": None, **DATA.defaults()}

#: where a step's work runs (the commands' --executor, --scheduler, --shard-size)
_WHERE = {"executor": "local", "dask_scheduler": None, "shard_size": None}

#: Options of each step kind (the command's option names) and the command's defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "extract": {**_DATA, "layers": [], "handcrafted": [], "weights": "imagenet", "size": None, "resize": "crop",
                "pool": "gap", "batch_size": 16, "workers": None, "device": "auto", "amp": "auto",
                "no_amp": False, "preprocess": "host", "float16": False, "seed": 0, "cache": None,
                "lock_timeout": 600.0, "on_error": "raise", "quiet": False, **_WHERE},
    "evaluate": {**_DATA, **EVALUATE.defaults(), **_WHERE},
    "finetune": {**_DATA, "recipe": None, "model": "resnet18", "weights": None, "head": None, "hidden": None,
                 "dropout": None, "small_input": None, "in_chans": None, "head_policy": "auto", "size": None,
                 "resize": None, "freeze_until": None, "freeze": None, "optimizer": None, "lr": None,
                 "momentum": None, "weight_decay": None, "scheduler": None, "step_size": None, "gamma": None,
                 "epochs": None, "batch_size": None, "monitor": None, "patience": None, "min_delta": None,
                 "val_fraction": None, "augment": None, "rotation": None, "translate": None, "brightness": None,
                 "contrast": None, "crop_scale": None, "balance": None, "cv": None, "out": None,
                 "runs_dir": "runs", "run_name": None, "n_boot": 2000, "youden": "val",
                 "save_fold_checkpoints": False, "seed": 0, "device": "auto", "no_amp": False, "workers": 0,
                 "no_cache_images": False, "quiet": False, "overwrite": False, "executor": "local",
                 "dask_scheduler": None},
    "report": {"runs": [], **REPORT.defaults()},
}
KINDS = tuple(OPTIONS)
#: Options that change how a step runs, not what it computes: not part of its hash.
NOT_HASHED = frozenset({"quiet", "progress", "workers", "n_jobs", "lock_timeout", "num_workers", "cache_images",
                        "overwrite", "executor", "dask_scheduler", "shard_size", "cluster"})
#: Keys of every step besides its options.
STEP_KEYS = ("name", "kind", "skip")

#: The type of every option's value, as its command's option declares it (a test checks that every option
#: has one): ``int``, ``float`` (finite), ``bool``, ``text`` (a string, or a number such as ``cv = 5``)
#: or ``list`` (a list of texts, or one text). Anything else is refused where it is given, naming the key.
OPTION_TYPES: dict[str, str] = {
    **DATA.types(), **EVALUATE.types(), **REPORT.types(),  # the declared commands' options
    **dict.fromkeys(("size", "batch_size", "workers", "seed", "shard_size", "n_boot", "hidden", "in_chans",
                     "step_size", "epochs", "patience"), "int"),
    **dict.fromkeys(("lock_timeout", "dropout", "lr", "momentum", "weight_decay", "gamma", "min_delta",
                     "val_fraction", "rotation", "translate", "brightness", "contrast"), "float"),
    **dict.fromkeys(("skip", "no_amp", "float16", "quiet", "overwrite", "small_input", "save_fold_checkpoints",
                     "no_cache_images"), "bool"),
    **dict.fromkeys(("layers", "handcrafted", "runs", "augment", "crop_scale", "freeze"), "list"),
}


def parse_bool(value: Any, key: str, where: str) -> bool:
    """A strict boolean: ``true``/``false`` (TOML's, or the words true/yes/on/1, false/no/off/0 as text).

    Anything else -- ``"maybe"``, ``2`` -- is a :class:`StudyError` naming ``where`` and ``key``: a
    value that is not clearly one or the other must not decide whether a step runs.
    """
    try:
        return bool(Option(key, "bool").check(value, where))
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def option_value(key: str, value: Any, where: str) -> Any:
    """``value`` of option ``key`` checked (and converted from text) against :data:`OPTION_TYPES`.

    One rule for every value, wherever it comes from (the study file, a profile, ``--set``),
    so a wrong one is refused when the study is planned -- a dry run included -- naming
    ``where`` and ``key``, never by the step that meets it. ``None`` stays None (the default).
    """
    option = _SCHEMA.get(key) or Option(key, OPTION_TYPES.get(key, "text"), repeat=True)
    try:
        checked = option.check(value, where)
    except OptionError as exc:
        raise StudyError(str(exc)) from None
    if key not in _SCHEMA and option.kind == "list" and not isinstance(value, (list, tuple)):
        return value  # one text: its step parses it (a handcrafted spec holds its own commas)
    return checked


#: the options declared in featurekit.options (their checks include choices and minimums)
_SCHEMA: dict[str, Option] = {**DATA.options, **EVALUATE.options, **REPORT.options}


def valid_options(kind: str) -> list[str]:
    return sorted(OPTIONS[kind])


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _int(value: Any, key: str, where: str, minimum: int | None = None) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise StudyError(f"{where}: {key} must be an integer, got {value!r}")
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise StudyError(f"{where}: {key} must be an integer, got {value!r}") from None
    if minimum is not None and out < minimum:
        raise StudyError(f"{where}: {key} must be >= {minimum}, got {out}")
    return out


def _choice(value: Any, key: str, allowed, where: str) -> Any:
    if value is not None and value not in allowed:
        raise StudyError(f"{where}: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def _cluster(o: dict, where: str) -> Optional[str]:
    """None (this process) or the Dask scheduler a step runs on ("" = Dask's configured address)."""
    _choice(o["executor"], "executor", ("local", "dask"), where)
    if o["executor"] == "local" and not o["dask_scheduler"]:
        return None
    return str(o["dask_scheduler"] or "")


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
    options: dict = field(default_factory=dict)   # size, pool, mode, batch_size, device, amp, preprocess,
    #                                                num_workers, dtype, cache, lock_timeout: extract()'s keywords
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
    layers = tuple(LayerSpec.parse(v) for v in _list(o["layers"]))
    hand = o["handcrafted"]
    hand = tuple(parse_handcrafted(hand if isinstance(hand, str) else _list(hand), read_params=_read_params))
    if not layers and not hand:
        raise StudyError(f"{where}: an extract step needs 'layers' and/or 'handcrafted'")
    options = {"size": _int(o["size"], "size", where, 8), "mode": _choice(o["resize"], "resize", RESIZE_MODES, where),
               "pool": _choice(o["pool"], "pool", POOLS, where),
               "batch_size": _int(o["batch_size"], "batch_size", where, 1), "device": str(o["device"]),
               "amp": "none" if o["no_amp"] else _choice(o["amp"], "amp", AMP_CHOICES, where),
               "preprocess": _choice(o["preprocess"], "preprocess", PREPROCESS_CHOICES, where),
               "num_workers": _int(o["workers"], "workers", where, 0),
               "dtype": "float16" if o["float16"] else "float32", "cache": o["cache"],
               "lock_timeout": float(o["lock_timeout"]),
               "on_error": _choice(o["on_error"], "on_error", ("raise", "skip"), where),
               "shard_size": _int(o["shard_size"], "shard_size", where, 1), "cluster": _cluster(o, where)}
    return ExtractStep(name, _data(o, where), layers, hand, Weights.parse(o["weights"], seed=int(o["seed"])),
                       options)


def _evaluate(name: str, o: dict, where: str) -> EvaluateStep:
    from featurekit.evaluation.estimators.classifiers import resolve_classifier
    from featurekit.evaluation.folds.protocols import parse_cv

    try:
        values = EVALUATE.resolve({k: o[k] for k in EVALUATE.options}, where)
    except OptionError as exc:
        raise StudyError(str(exc)) from None
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
    where_runs = {"shard_size": _int(o["shard_size"], "shard_size", where, 1), "cluster": _cluster(o, where)}
    return EvaluateStep(name, _data(o, where), values, where_runs)


def finetune_stage(name: str, o: dict, where: str):
    """One :class:`~featurekit.finetune.pipeline.FinetuneStage` from a stage's resolved options."""
    from dataclasses import fields

    from featurekit.finetune.config import FinetuneConfig, parse_augment
    from featurekit.finetune.pipeline import FinetuneStage, RunOptions

    cfg = {}
    for f in fields(FinetuneConfig):
        if f.name in ("amp", "cache_images"):
            continue
        cfg[f.name] = o["workers" if f.name == "num_workers" else f.name]
    if isinstance(cfg["augment"], (list, tuple)):
        cfg["augment"] = parse_augment(",".join(map(str, cfg["augment"])) or "none")
    elif cfg["augment"] is not None:
        cfg["augment"] = parse_augment(str(cfg["augment"]))
    if isinstance(cfg["crop_scale"], str):
        cfg["crop_scale"] = [float(v) for v in cfg["crop_scale"].split(",")]
    if cfg["weights"] is not None:
        cfg["weights"] = str(cfg["weights"])
    config = FinetuneConfig(**cfg, amp=not o["no_amp"], cache_images=not o["no_cache_images"])
    run = RunOptions(cv=None if o["cv"] is None else str(o["cv"]), out=o["out"], runs_dir=str(o["runs_dir"]),
                     run_name=o["run_name"], n_boot=_int(o["n_boot"], "n_boot", where, 1), youden=o["youden"],
                     save_fold_checkpoints=bool(o["save_fold_checkpoints"]), overwrite=bool(o["overwrite"]),
                     cluster=_cluster(o, where))
    return FinetuneStage(_data(o, where), config, run, name)


def _report(name: str, o: dict, where: str) -> ReportStep:
    try:
        values = REPORT.resolve({k: o[k] for k in REPORT.options}, where)
    except OptionError as exc:
        raise StudyError(str(exc)) from None
    if not values["out"]:
        raise StudyError(f"{where}: a report step needs 'out'")
    return ReportStep(name, tuple(str(r) for r in _list(o["runs"])), str(values["out"]), values["top"],
                      values["metric"])


_BUILDERS = {"extract": _extract, "evaluate": _evaluate, "report": _report}
