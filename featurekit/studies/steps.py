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

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from featurekit.data.spec import DataSpec
from featurekit.devices import AMP_CHOICES, PREPROCESS_CHOICES, resolve_jobs
from featurekit.errors import FeaturekitError
from featurekit.specs import POOLS, RESIZE_MODES, LayerSpec, Weights, parse_feature_token, parse_handcrafted

__all__ = ["KINDS", "OPTIONS", "OPTION_TYPES", "option_value", "parse_bool", "StudyError", "ExtractStep",
           "EvaluateStep", "FinetuneStep", "ReportStep",
           "build_step", "valid_options", "NOT_HASHED"]


class StudyError(FeaturekitError, ValueError):
    """A study file (or an override) that cannot be run; the message names the file and the key."""


_DATA = {"data": None, "format": "auto", "classes": None, "positive": None, "roi": "none", "roi_margin": 0.1,
         "group_duplicates": None, "subsample": None}

#: where a step's work runs (the commands' --executor, --scheduler, --shard-size)
_WHERE = {"executor": "local", "dask_scheduler": None, "shard_size": None}

#: Options of each step kind (the command's option names) and the command's defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "extract": {**_DATA, "layers": [], "handcrafted": [], "weights": "imagenet", "size": None, "resize": "crop",
                "pool": "gap", "batch_size": 16, "workers": None, "device": "auto", "amp": "auto",
                "no_amp": False, "preprocess": "host", "float16": False, "seed": 0, "cache": None,
                "lock_timeout": 600.0, "on_error": "raise", "quiet": False, **_WHERE},
    "evaluate": {**_DATA, "features": [], "fuse": [], "late_fusion": None, "classifier": [], "cv": "5",
                 "out": None, "seed": 0, "class_weight": None, "oversample": False, "search": False,
                 "inner_cv": 3, "reduce": None, "block_weight": None, "youden": "inner", "n_boot": 2000,
                 "no_select": False, "select_by": "roc_auc", "jobs": 1, "weights": "imagenet", "size": None, "resize": "crop", "pool": "gap", "batch_size": 16,
                 "device": "auto", "cache": None, "overwrite": False, "quiet": False, **_WHERE},
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
    "report": {"runs": [], "out": None, "top": 6, "metric": "roc_auc_pooled"},
}
KINDS = tuple(OPTIONS)
#: Options that change how a step runs, not what it computes: not part of its hash.
NOT_HASHED = frozenset({"quiet", "workers", "jobs", "lock_timeout", "num_workers", "cache_images", "overwrite",
                        "executor", "dask_scheduler", "shard_size", "cluster"})
#: Keys of every step besides its options.
STEP_KEYS = ("name", "kind", "skip")

#: The type of every option's value, as its command's option declares it (a test checks that every option
#: has one): ``int``, ``float`` (finite), ``bool``, ``text`` (a string, or a number such as ``cv = 5``)
#: or ``list`` (a list of texts, or one text). Anything else is refused where it is given, naming the key.
OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(("subsample", "group_duplicates", "size", "batch_size", "workers", "seed", "shard_size",
                     "inner_cv", "n_boot", "jobs", "hidden", "in_chans", "step_size", "epochs", "patience",
                     "top"), "int"),
    **dict.fromkeys(("roi_margin", "lock_timeout", "dropout", "lr", "momentum", "weight_decay", "gamma",
                     "min_delta", "val_fraction", "rotation", "translate", "brightness", "contrast"), "float"),
    **dict.fromkeys(("skip", "no_amp", "float16", "quiet", "oversample", "search", "overwrite", "small_input", "no_select",
                     "save_fold_checkpoints", "no_cache_images"), "bool"),
    **dict.fromkeys(("layers", "handcrafted", "features", "fuse", "classifier", "runs", "augment", "crop_scale",
                     "classes", "freeze"), "list"),
}
_TAKES = {"int": "an integer", "float": "a finite number", "bool": "true or false", "text": "a text (a string)",
          "list": "a list of texts (or one text)"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_bool(value: Any, key: str, where: str) -> bool:
    """A strict boolean: ``true``/``false`` (TOML's, or the words true/yes/on/1, false/no/off/0 as text).

    Anything else -- ``"maybe"``, ``2`` -- is a :class:`StudyError` naming ``where`` and ``key``: a
    value that is not clearly one or the other must not decide whether a step runs.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise StudyError(f"{where}: {key} takes true or false, got {value!r}")


def option_value(key: str, value: Any, where: str) -> Any:
    """``value`` of option ``key`` checked (and converted from text) against :data:`OPTION_TYPES`.

    One rule for every value, wherever it comes from (the study file, a profile, ``--set``),
    so a wrong one is refused when the study is planned -- a dry run included -- naming
    ``where`` and ``key``, never by the step that meets it. ``None`` stays None (the default).
    """
    kind = OPTION_TYPES.get(key, "text")
    if value is None:
        return None
    if kind == "bool":
        return parse_bool(value, key, where)
    bad = StudyError(f"{where}: {key} takes {_TAKES[kind]}, got {value!r}")
    if isinstance(value, bool) or isinstance(value, dict):
        raise bad
    if kind == "int":
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise bad
            return int(value)
        try:
            return int(value) if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise bad from None
    if kind == "float":
        try:
            out = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(out):
            raise bad
        return out
    if kind == "list" and isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise bad
        return value
    if not isinstance(value, (str, int, float)):
        raise bad
    return value


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
        return DataSpec(opts["data"], format=opts["format"], classes=opts["classes"], positive=opts["positive"],
                        roi=_choice(opts["roi"], "roi", ("none", "mask", "mias"), where),
                        roi_margin=float(opts["roi_margin"]),
                        group_duplicates=_int(opts["group_duplicates"], "group_duplicates", where, 0),
                        subsample=_int(opts["subsample"], "subsample", where, 2))
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
    features: tuple
    classifiers: tuple
    out: str
    options: dict = field(default_factory=dict)   # evaluate_features()'s keyword arguments
    kind: str = "evaluate"


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


def _extract(name: str, o: dict, where: str) -> ExtractStep:
    layers = tuple(LayerSpec.parse(v) for v in _list(o["layers"]))
    hand = o["handcrafted"]
    hand = tuple(parse_handcrafted(hand if isinstance(hand, str) else _list(hand)))
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
    from featurekit.evaluation.classifiers import resolve_classifier
    from featurekit.evaluation.protocols import parse_cv
    from featurekit.evaluation.selection import SELECTION_CRITERIA

    features = tuple(str(f) for f in _list(o["features"]))
    fuse = tuple(str(f) for f in _list(o["fuse"]))
    if not features and not fuse:
        raise StudyError(f"{where}: an evaluate step needs 'features' and/or 'fuse'")
    for token in list(features) + [p for f in fuse for p in f.split("+")]:
        parse_feature_token(token)
    classifiers = tuple(str(c) for c in _list(o["classifier"])) or ("svm",)
    for c in classifiers:
        resolve_classifier(c)
    if str(o["cv"]).strip().lower() != "predefined":
        parse_cv(str(o["cv"]))
    if not o["out"]:
        raise StudyError(f"{where}: an evaluate step needs 'out' (its run folder)")
    options = {"fuse": fuse, "late_fusion": _choice(o["late_fusion"], "late_fusion", ("vote", "stack"), where),
               "cv": str(o["cv"]), "positive": o["positive"], "cache": o["cache"],
               "weights": Weights.parse(o["weights"]), "size": _int(o["size"], "size", where, 8),
               "pool": _choice(o["pool"], "pool", POOLS, where),
               "mode": _choice(o["resize"], "resize", RESIZE_MODES, where),
               "batch_size": _int(o["batch_size"], "batch_size", where, 1), "device": str(o["device"]),
               "seed": _int(o["seed"], "seed", where), "class_weight": _choice(o["class_weight"], "class_weight",
                                                                                ("balanced",), where),
               "oversample": bool(o["oversample"]), "search": bool(o["search"]),
               "inner_cv": _int(o["inner_cv"], "inner_cv", where, 2),
               "reduce": _choice(o["reduce"], "reduce", ("pca", "select"), where),
               "block_weight": _choice(o["block_weight"], "block_weight", ("equal",), where),
               "youden": _choice(o["youden"], "youden", ("inner", "train"), where),
               "select": False if o["no_select"] else None,
               "select_by": _choice(o["select_by"], "select_by", tuple(SELECTION_CRITERIA), where),
               "n_boot": _int(o["n_boot"], "n_boot", where, 1),
               "n_jobs": resolve_jobs(_int(o["jobs"], "jobs", where), "jobs"),
               "overwrite": bool(o["overwrite"]), "shard_size": _int(o["shard_size"], "shard_size", where, 1),
               "cluster": _cluster(o, where)}
    return EvaluateStep(name, _data(o, where), features, classifiers, str(o["out"]), options)


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
    if not o["out"]:
        raise StudyError(f"{where}: a report step needs 'out'")
    return ReportStep(name, tuple(str(r) for r in _list(o["runs"])), str(o["out"]),
                      _int(o["top"], "top", where, 1), str(o["metric"]))


_BUILDERS = {"extract": _extract, "evaluate": _evaluate, "report": _report}
