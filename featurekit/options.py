"""Each command's options, declared once: the CLI flags, the study keys and the API keywords come from here.

An :class:`Option` has one ``name``: the keyword of the API function, the key of
a study step and the ``argparse`` destination. Its ``flag`` is only how the
command line spells it (``n_jobs`` is ``--jobs``; ``progress`` is switched off
by ``--quiet``). An :class:`OptionSet` turns its options into

* ``argparse`` arguments (:meth:`OptionSet.add_arguments`),
* a study step's defaults and value types (:meth:`OptionSet.defaults`,
  :meth:`OptionSet.types`),
* typed, checked values from any of those sources (:meth:`OptionSet.resolve`:
  the validation the command and a study's dry run share),
* the command line that reproduces a set of values (:meth:`OptionSet.command_line`),
* the signature of the API function that takes them (:meth:`OptionSet.signature`).

Adding an option to ``featurekit evaluate`` is one :class:`Option` in
:data:`EVALUATE` and its use in :func:`featurekit.orchestration.evaluate_features`.
This module imports nothing heavy: the CLI builds its parsers from it before
anything is computed.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from featurekit.data.duplicates import DEFAULT_MAX_DISTANCE
from featurekit.errors import FeaturekitError
from featurekit.specs import POOLS, RESIZE_MODES, split_feature_tokens

__all__ = ["Option", "OptionSet", "OptionError", "DATA", "EVALUATE", "REPORT", "COMMANDS", "KINDS", "with_where"]

#: value kinds and how a message names them
KINDS = {"int": "an integer", "float": "a finite number", "bool": "true or false", "text": "a text (a string)",
         "list": "a list of texts (or one text)"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class OptionError(FeaturekitError, ValueError):
    """An option value of the wrong type or outside its choices (the message names the option)."""


@dataclass(frozen=True)
class Option:
    """One option of a command.

    Parameters
    ----------
    name : str
        The one name: API keyword, study key, ``argparse`` destination.
    kind : {"int", "float", "bool", "text", "list"}
        The value's type, checked wherever a value is given.
    default : Any
        The default everywhere (None: unset).
    help : str
        The ``--help`` text.
    flag : str, optional
        The command line's spelling (default ``--`` + the name with ``-``).
    choices : tuple, optional
        Allowed values (None allowed too when it is the default).
    minimum : number, optional
        Smallest allowed number.
    convert : callable, optional
        Parses a checked value into its typed object (``Weights.parse``); its
        :class:`~featurekit.errors.FeaturekitError` (which names the value) propagates.
    split : callable, optional
        How a ``list`` option's texts become its items (a comma-separated grammar).
    negate : bool
        A ``bool`` option whose flag switches it off (``--quiet`` sets ``progress`` to False).
    repeat : bool
        A ``list`` option given as a repeatable flag (``--features a --features b``);
        otherwise one comma-separated value.
    metavar, group, nargs, const : argparse details.
    cli : bool
        Whether the command line has it (an API-only option has none).
    objects : bool
        The API may also pass a typed object (a splitter for ``cv``, a
        ``Weights``, a configured transformer among ``features``): kept as given
        (``convert`` still applies), only texts and numbers are checked.
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    flag: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    convert: Callable[[Any], Any] | None = None
    split: Callable[[list[str]], list[str]] | None = None
    negate: bool = False
    repeat: bool = False
    metavar: str | None = None
    group: str | None = None
    nargs: str | None = None
    const: Any = None
    cli: bool = True
    objects: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")
        if self.negate and self.kind != "bool":
            raise ValueError(f"option {self.name}: only a bool option can be negated")

    @property
    def spelling(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any, where: str = "") -> Any:
        """``value`` checked against the kind, choices and minimum (text converted); None stays None."""
        if value is None:
            return None
        if isinstance(value, os.PathLike) and self.kind == "text":
            value = os.fspath(value)
        if self.objects and not isinstance(value, (str, int, float, bool, dict, list, tuple)):
            return value
        at = f"{where}: " if where else ""
        bad = OptionError(f"{at}{self.name} takes {KINDS[self.kind]}, got {value!r}")
        if self.kind == "bool":
            if isinstance(value, bool):
                out: Any = value
            elif isinstance(value, int) and value in (0, 1):
                out = bool(value)
            elif isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                out = value.strip().lower() in _TRUE
            else:
                raise bad
        elif isinstance(value, (bool, dict)):
            raise bad
        elif self.kind == "int":
            if isinstance(value, float):
                if not (math.isfinite(value) and value.is_integer()):
                    raise bad
                out = int(value)
            else:
                try:
                    out = int(value) if isinstance(value, int) else int(str(value).strip())
                except ValueError:
                    raise bad from None
        elif self.kind == "float":
            try:
                out = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
            except (TypeError, ValueError):
                raise bad from None
            if not math.isfinite(out):
                raise bad
        elif self.kind == "list":
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            plain = [isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items]
            if not all(plain) and not (self.objects and not any(isinstance(v, (bool, dict, list)) for v in items)):
                raise bad
            if self.split is not None or not self.repeat:  # a grammar of comma-separated texts
                texts = [str(v) for v, p in zip(items, plain) if p]
                texts = self.split(texts) if self.split is not None else _comma_list(texts)
                out = texts + [v for v, p in zip(items, plain) if not p]
            else:
                out = items
        else:
            if not isinstance(value, (str, int, float)):
                raise bad
            out = value if isinstance(value, str) else str(value)
        if self.choices is not None and out not in self.choices:
            raise OptionError(f"{at}{self.name} must be one of {', '.join(map(str, self.choices))}, got {out!r}")
        if self.minimum is not None and isinstance(out, (int, float)) and out < self.minimum:
            raise OptionError(f"{at}{self.name} must be >= {self.minimum:g}, got {out!r}")
        return out

    def resolve(self, value: Any, where: str = "") -> Any:
        """The checked value, converted to its typed object when the option has a ``convert``."""
        out = self.check(value, where)
        if self.convert is None or out is None:
            return out
        try:
            return self.convert(out)
        except FeaturekitError as exc:  # its own class (a WeightsError, a ResourceError), saying where
            if not where:
                raise
            raise type(exc)(f"{where}: {exc}") from None

    def add_to(self, parser: Any) -> None:
        """This option as an ``argparse`` argument of ``parser`` (a parser or an argument group)."""
        kw: dict[str, Any] = {"dest": self.name, "default": self.default, "help": self.help}
        if self.kind == "bool":
            kw["action"] = "store_false" if self.negate else "store_true"
            if self.negate and self.default is None:
                kw["action"], kw["const"] = "store_const", False
        else:
            if self.metavar:
                kw["metavar"] = self.metavar
            if self.nargs:
                kw["nargs"] = self.nargs
                kw["const"] = self.const
            if self.kind == "list":
                kw["action"] = "append" if self.repeat else "store"
                kw["default"] = [] if self.repeat else self.default
            if self.choices is not None and self.kind == "text":
                kw["choices"] = list(self.choices)

            def convert(text: str, option: Option = self) -> Any:  # resolving twice gives the same value
                try:
                    return option.resolve(text)
                except FeaturekitError as exc:
                    raise argparse.ArgumentTypeError(str(exc)) from None

            convert.__name__ = self.kind
            if self.kind != "list" or not self.repeat:
                kw["type"] = convert
        parser.add_argument(self.spelling, **kw)


class OptionSet:
    """The options of one command, in the order ``--help`` shows them."""

    def __init__(self, command: str, options: Iterable[Option], *, parts: Iterable["OptionSet"] = ()):
        self.command = command
        own = list(options)
        self.parts = tuple(parts)
        self.options: dict[str, Option] = {}
        for o in [o for p in self.parts for o in p.options.values()] + own:
            if o.name in self.options:
                raise ValueError(f"{command}: option {o.name!r} declared twice")
            self.options[o.name] = o
        self._own = own

    def __iter__(self):
        return iter(self.options.values())

    def __contains__(self, name: str) -> bool:
        return name in self.options

    def __getitem__(self, name: str) -> Option:
        return self.options[name]

    def add_arguments(self, parser: Any, *, groups: Mapping[str, Any] | None = None) -> None:
        """Add this set's own options (not those of its parts) to ``parser``; ``group`` titles make groups."""
        made = dict(groups or {})
        for o in self._own:
            if not o.cli:
                continue
            target = parser
            if o.group:
                if o.group not in made:
                    made[o.group] = parser.add_argument_group(o.group)
                target = made[o.group]
            o.add_to(target)

    def defaults(self) -> dict[str, Any]:
        """``name -> default`` of every option (a study step's option table)."""
        return {o.name: ([] if o.kind == "list" and o.repeat and o.default is None else o.default)
                for o in self.options.values()}

    def types(self) -> dict[str, str]:
        """``name -> kind`` of every option."""
        return {o.name: o.kind for o in self.options.values()}

    def resolve(self, values: Mapping[str, Any], where: str = "", *, partial: bool = False) -> dict[str, Any]:
        """Checked, typed values of ``values`` (the defaults filled in unless ``partial``).

        Unknown names are an :class:`OptionError` listing the valid ones.
        """
        unknown = sorted(set(values) - set(self.options))
        if unknown:
            raise OptionError(f"{where + ': ' if where else ''}{self.command} has no option "
                              f"{', '.join(map(repr, unknown))}; valid: {', '.join(sorted(self.options))}")
        out = {} if partial else {n: self.options[n].resolve(o.default, where) for n, o in self.options.items()}
        for name, value in values.items():
            o = self.options[name]
            if o.kind == "list" and o.repeat and isinstance(value, (list, tuple)) and not value:
                value = o.default  # a repeatable flag never given
            out[name] = o.resolve(value, where)
        return out

    def from_args(self, args: argparse.Namespace) -> dict[str, Any]:
        """The resolved values of a parsed command line (the same rules as every other source)."""
        return self.resolve({n: getattr(args, n) for n in self.options if hasattr(args, n)})

    def command_line(self, values: Mapping[str, Any], positional: Iterable[str] = (), *,
                     defaults: bool = False) -> str:
        """The command line that gives ``values``: the options that differ from their defaults, or with
        ``defaults`` every option that has a value (a record that stays true when a default changes)."""
        argv = [str(p) for p in positional]
        for name, value in values.items():
            o = self.options.get(name)
            if o is None or not o.cli or value is None or value == []:
                continue
            if value == o.default and not (defaults and o.kind != "bool"):
                continue
            if o.kind == "bool":
                if bool(value) != o.negate:
                    argv.append(o.spelling)
            elif o.kind == "list" and o.repeat:
                for v in value:
                    argv += [o.spelling, str(v)]
            elif isinstance(value, (list, tuple)):
                argv += [o.spelling, ",".join(map(str, value))]
            else:
                argv += [o.spelling, str(getattr(value, "tag", value))]  # a Weights by its tag
        return f"featurekit {self.command} " + shlex.join(argv)

    def signature(self, before: Iterable[inspect.Parameter] = (),
                  after: Iterable[inspect.Parameter] = ()) -> inspect.Signature:
        """An API function's signature: ``before``, every option as a keyword with its default, ``after``."""
        params = list(before)
        taken = {p.name for p in params} | {p.name for p in after}
        params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default)
                   for o in self.options.values() if o.name not in taken]
        return inspect.Signature(params + list(after))


# ---------------------------------------------------------------------------------------------- the options


def _weights(text: Any):
    from featurekit.specs import Weights

    return Weights.parse(text)


def _jobs(value: Any) -> int:
    from featurekit.devices import resolve_jobs

    return resolve_jobs(value, "n_jobs")  # the option's one name (the command line spells it --jobs)


def _comma_list(values: list[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


#: the dataset: every command that reads one
DATA = OptionSet("data", [
    Option("format", "text", "auto", "dataset format (default: detected)",
           choices=("auto", "folder", "csv", "npz", "mias")),
    Option("classes", "list", None, "classes to keep, in label order, e.g. 'benign,malignant' (others dropped)"),
    Option("positive", "text", None, "the positive class, e.g. 'malignant'"),
    Option("roi", "text", "none", "region of interest: whole image, mask bounding box, or MIAS circle "
           "(default: none)", choices=("none", "mask", "mias")),
    Option("roi_margin", "float", 0.1, "relative margin added around the ROI box (default: 0.1)", minimum=0.0),
    Option("group_duplicates", "int", None, "put near-duplicate images (dHash distance <= BITS of 64, default "
           f"{DEFAULT_MAX_DISTANCE}) in one group, so grouped CV never splits them (BUSI has ~200 such pairs)",
           nargs="?", const=DEFAULT_MAX_DISTANCE, metavar="BITS", minimum=0),
    Option("window", "text", None, "how DICOM / NIfTI values become [0, 1]: auto (default: the file's window, "
           "else its declared range), file (= mammo), range, minmax, soft-tissue, lung, bone, brain, mediastinum, "
           "or CENTER,WIDTH", metavar="WINDOW"),
    Option("slices", "text", None, "planes of volumes (NIfTI, DICOM series folders) and multi-frame DICOM used as "
           "samples: index:K, middle, max-mask, all-masked or all (one sample each, grouped by volume)",
           metavar="POLICY"),
    Option("subsample", "int", None, "use a stratified random N of the labelled images, drawn with seed 0 (the "
           "same N for every command, so their rows are paired; smoke tests, quick studies)", metavar="N",
           minimum=2),
])

#: ``featurekit evaluate`` / :func:`featurekit.orchestration.evaluate_features`
EVALUATE = OptionSet("evaluate", [
    Option("features", "list", [], "feature sets (repeatable, comma-separated): gabor, glcm, haar, MODEL:LAYERS, "
           "a cache key, all", repeat=True, metavar="SETS", split=split_feature_tokens, objects=True),
    Option("fuse", "list", [], "early fusion of feature sets, e.g. vgg16:block5_conv3+gabor (repeatable)",
           repeat=True, metavar="A+B"),
    Option("late_fusion", "text", None, "also fuse each --fuse combination late: soft voting or stacking of "
           "per-set classifiers", choices=("vote", "stack")),
    Option("classifiers", "list", ["svm"], "logreg, linear_svm, svm (RBF), rf, xgboost, knn, mlp (repeatable, "
           "comma-separated; default: svm)", flag="--classifier", repeat=True, metavar="NAMES", split=_comma_list),
    Option("cv", "text", "5", "'5' (stratified 5-fold), '5x3' (repeated 3 times), 'holdout:0.3x30', 'predefined' "
           "(the manifest's split column); grouped automatically when the data have groups (default: 5)",
           objects=True),
    Option("out", "text", None, "run folder (default: runs/<dataset>-<time>)", metavar="DIR"),
    Option("overwrite", "bool", False, "replace a non-empty --out folder as a whole (otherwise refused before any "
           "work)"),
    Option("seed", "int", 0, "seed of the splits, classifiers and bootstrap (default: 0)"),
    Option("class_weight", "text", None, "class weights computed on each training fold", choices=("balanced",)),
    Option("oversample", "bool", False, "random oversampling of each training fold"),
    Option("search", "bool", False, "grid search of the classifier's hyper-parameters nested inside each outer "
           "fold"),
    Option("inner_cv", "int", 3, "inner folds of --search (default: 3)", minimum=2),
    Option("reduce", "text", None, "per-block PCA (95%% variance) or SelectKBest in early fusions",
           choices=("pca", "select")),
    Option("block_weight", "text", None, "equal: each fused block divided by sqrt(its dimension)",
           choices=("equal",)),
    Option("youden", "text", "inner", "Youden threshold of each fold from an inner CV of its training part "
           "(inner, default) or from the fold model's training scores (train)", choices=("inner", "train")),
    Option("youden_cv", "int", 3, "folds of the inner CV of --youden inner and of the selected row "
           "(default: 3)", minimum=2),
    Option("select", "bool", None, "no 'selected' row (by default, with two or more candidate rows, a row "
           "chooses the best candidate inside each outer fold's training part and scores only it on the test "
           "part)", flag="--no-select", negate=True),
    Option("select_by", "text", "roc_auc", "what the selected row maximises on training-side held-out "
           "predictions (default: roc_auc)", choices=("roc_auc", "pr_auc", "neg_log_loss", "neg_brier"),
           metavar="CRITERION"),
    Option("n_boot", "int", 2000, "bootstrap replicates of the CIs (default: 2000)", minimum=0),
    Option("confidence", "float", 0.95, "confidence level of the intervals (default: 0.95)", minimum=0.5),
    Option("n_jobs", "int", 1, "parallel fold fits (default: 1; -1 = every core; capped at the cores there are)",
           flag="--jobs", convert=_jobs),
    Option("weights", "text", "imagenet", "imagenet, none (random init, seed 0), none:seed=N, or a weights PATH; "
           "--seed seeds the splits, not the weights", convert=_weights, objects=True,
           group="extraction of missing features"),
    Option("size", "int", None, "input size (default: the weights')", minimum=8,
           group="extraction of missing features"),
    Option("resize", "text", "crop", "how images reach the input size: crop (resize the short side, centre "
           "crop) or squash", choices=RESIZE_MODES, group="extraction of missing features"),
    Option("pool", "text", "gap", "how a layer's map becomes a vector (default: gap)", choices=POOLS,
           group="extraction of missing features"),
    Option("batch_size", "int", 16, "images per forward pass", minimum=1, group="extraction of missing features"),
    Option("device", "text", "auto", "auto, cpu, cuda or cuda:N", group="extraction of missing features"),
    Option("cache", "text", None, "cache file (default: cache/<dataset>-<fingerprint>.h5)", metavar="FILE",
           objects=True, group="extraction of missing features"),
    Option("progress", "bool", True, "no progress bars", flag="--quiet", negate=True),
], parts=())

#: ``featurekit report``
REPORT = OptionSet("report", [
    Option("out", "text", None, "FILE.html / FILE.md (both are written) or a folder (default: the first run "
           "folder)", metavar="FILE"),
    Option("top", "int", 6, "best rows shown in the ROC, confusion and DeLong sections (default: 6)", minimum=1),
    Option("metric", "text", "roc_auc_pooled", "ranking column of results.csv (default: roc_auc_pooled)"),
])

#: each command's whole option table, in command-line order (the data options first)
COMMANDS: dict[str, OptionSet] = {"evaluate": OptionSet("evaluate", [], parts=(DATA, EVALUATE)), "report": REPORT}


def with_where(command: str, where: Mapping[str, Any]) -> str:
    """``command`` with the executor options of ``where`` (``executor``, ``dask_scheduler``, ``shard_size``;
    declared with the executor arguments in :mod:`featurekit.cli.cluster`)."""
    flags = {"executor": "--executor", "dask_scheduler": "--scheduler", "shard_size": "--shard-size"}
    extra = [f"{flags[k]} {shlex.quote(str(v))}" for k, v in where.items()
             if k in flags and v is not None and not (k == "executor" and v == "local")]
    return " ".join([command, *extra])
