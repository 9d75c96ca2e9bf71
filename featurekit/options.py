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
:data:`EVALUATE` and its use in :func:`featurekit.orchestration.evaluate_features`;
to ``featurekit extract``, one in :data:`EXTRACT` and its use in
:func:`featurekit.extraction.pipeline.extract`; to ``featurekit finetune``, one in
:data:`FINETUNE` and the field of :class:`~featurekit.finetune.config.FinetuneConfig`
or :class:`~featurekit.finetune.pipeline.RunOptions` of the same name (a test keeps them so).
A value typed on the command line is checked by ``argparse`` and converted once, by
:meth:`OptionSet.from_args`.
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
from typing import Any, Callable, Iterable, Mapping, Sequence

from featurekit.data.duplicates import DEFAULT_MAX_DISTANCE
from featurekit.devices import AMP_CHOICES, PREPROCESS_CHOICES
from featurekit.errors import FeaturekitError
from featurekit.specs import POOLS, RESIZE_MODES, split_feature_tokens, split_handcrafted

__all__ = ["Option", "OptionSet", "OptionError", "DATA", "EXTRACT", "EVALUATE", "FINETUNE", "REPORT", "COMMANDS",
           "KINDS", "with_where", "OPTIMIZERS", "SCHEDULERS", "MONITORS", "BALANCE", "HEAD_POLICIES", "HEADS"]

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
    aliases : tuple of str
        More spellings of the flag, accepted and not shown by ``--help`` (``--run-name`` for ``--name``).
    also : tuple of (flag, value)
        Flags that set the option to a fixed value (``--no-amp`` is ``--amp none``).
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
    aliases: tuple = ()
    also: tuple = ()
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

            def check(text: str, option: Option = self) -> Any:  # checked here; converted once, by resolve
                try:
                    return option.check(text)
                except FeaturekitError as exc:
                    raise argparse.ArgumentTypeError(str(exc)) from None

            check.__name__ = self.kind
            if self.kind != "list" or not self.repeat:
                kw["type"] = check
        parser.add_argument(self.spelling, **kw)
        for alias in self.aliases:
            parser.add_argument(alias, **{**kw, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS})
        for flag, value in self.also:
            parser.add_argument(flag, dest=self.name, action="store_const", const=value, default=argparse.SUPPRESS,
                                help=f"the same as {self.spelling} {value}")


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
        out = {}
        for name, o in self.options.items():  # each value converted once: the given one, else the default
            if name not in values:
                if not partial:
                    out[name] = o.resolve(o.default, where)
                continue
            value = values[name]
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
            if o is None or not o.cli or value is None or (value == [] and (o.repeat or o.default == [])):
                continue  # (an empty comma list that is not the default is written '': it parses to [])
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

    def bind(self, function: str, positional: Sequence[str], args: Sequence[Any],
             options: Mapping[str, Any]) -> dict[str, Any]:
        """The resolved values of an API call ``function(first, *args, **options)``.

        ``args`` are the options ``positional`` names, in order. Too many of them, a keyword given
        twice or one that is no option is a :class:`TypeError` worded as Python's own.
        """
        if len(args) > len(positional):
            raise TypeError(f"{function}() takes at most {len(positional) + 1} positional arguments "
                            f"(the first, {', '.join(positional)})")
        values = dict(options)
        for name, value in zip(positional, args):
            if name in values:
                raise TypeError(f"{function}() got multiple values for argument {name!r}")
            values[name] = value
        unknown = sorted(set(values) - set(self.options))
        if unknown:
            raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r} "
                            f"(its options: {', '.join(self.options)})")
        return self.resolve(values, function)

    def api_signature(self, first: Sequence[str], positional: Sequence[str] = (),
                      after: Sequence[str] = ()) -> inspect.Signature:
        """The signature of a function taking these options through :meth:`bind`: ``first`` (no default),
        the ``positional`` options, every other option as a keyword, then ``after`` (keywords, None)."""
        P = inspect.Parameter
        params = [P(n, P.POSITIONAL_OR_KEYWORD) for n in first]
        params += [P(n, P.POSITIONAL_OR_KEYWORD, default=self.options[n].default) for n in positional]
        return self.signature(params, [P(n, P.KEYWORD_ONLY, default=None) for n in after])

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
    Option("masks", "bool", True, "read no mask files: every feature sees whole images (needed when some "
           "classes have no lesion mask, e.g. BUSI normal, for handcrafted features)", flag="--no-masks",
           negate=True),
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
    Option("ordered", "bool", False, "with three or more classes, they are ordered as --classes lists them "
           "(e.g. BI-RADS): Cohen's kappa is quadratic-weighted"),
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

def _layers(values: list) -> list:
    from featurekit.specs import LayerSpec

    return [LayerSpec.parse(v) for v in values]


def _crop_scale(values: list) -> list[float]:
    try:
        lo, hi = (float(v) for v in values)
    except (TypeError, ValueError):
        raise OptionError(f"crop_scale takes LO,HI (two numbers), got {','.join(map(str, values))!r}") from None
    return [lo, hi]


#: ``featurekit extract`` / :func:`featurekit.extraction.pipeline.extract`
EXTRACT = OptionSet("extract", [
    Option("layers", "list", [], "MODEL:LAYERS to extract; repeat for several models", repeat=True,
           metavar="SPEC", convert=_layers, objects=True),
    Option("handcrafted", "list", [], "comma-separated handcrafted families: gabor,glcm,haar,firstorder,shape,lbp "
           "(radiomics: pyradiomics' feature classes); parameters after a colon, separated by ';' (e.g. "
           "glcm:bin_count=64;symmetric=true, gabor:frequencies=0.25,0.1); radiomics:params=FILE.yaml takes the "
           "classes and settings of a pyradiomics parameter file", metavar="FAMILIES", split=split_handcrafted,
           objects=True),
    Option("weights", "text", "imagenet", "imagenet (torchvision's, from the torch hub cache; for timm-* models the "
           "pretrained weights of the tag, from the Hugging Face hub cache), none (random, seeded), or a state_dict "
           "(.pth, .safetensors) / featurekit checkpoint PATH (default: imagenet)", objects=True),
    Option("size", "int", None, "input size (default: the weights')", minimum=8),
    Option("resize", "text", "crop", "crop: shorter side + centre crop as the weights do; squash: straight to "
           "size x size", choices=RESIZE_MODES),
    Option("pool", "text", "gap", "pooling of each map or token sequence to a vector: gap (default), gmp, gapgmp, "
           "spp, none; for vision transformers also cls (class token), mean (patch tokens), clsmean", choices=POOLS),
    Option("batch_size", "int", 16, "images per forward pass (default: 16)", minimum=1),
    Option("num_workers", "int", None, "DataLoader workers (default: cores-1, at most 4; on CUDA every core but one)",
           flag="--workers", minimum=0),
    Option("device", "text", "auto", "auto (CUDA when present), cpu, cuda, cuda:1 ..."),
    Option("amp", "text", "auto", "autocast precision, recorded with the features: auto (float16 on CUDA, float32 "
           "on the CPU), fp16, bf16 (GPUs from Ampere on; CPUs too), none (default: auto)", choices=AMP_CHOICES,
           also=(("--no-amp", "none"),)),
    Option("preprocess", "text", "host", "where resize and normalisation run: host (DataLoader workers), device (on "
           "the GPU after uploading the decoded uint8 images; same values, same cache entries), auto (device on "
           "CUDA) (default: host)", choices=PREPROCESS_CHOICES),
    Option("dtype", "text", "float32", "how features are stored (default: float32)", choices=("float32", "float16"),
           also=(("--float16", "float16"),)),
    Option("seed", "int", 0, "seed of random initialisation (--weights none)"),
    Option("cache", "text", None, "cache file (default: cache/<dataset>-<fingerprint>.h5)", metavar="FILE",
           objects=True),
    Option("lock_timeout", "float", 600.0, "seconds to wait for another process writing the same cache "
           "(default: 600)", minimum=0.0),
    Option("on_error", "text", "raise", "an image that cannot be read or processed: raise (stop, naming it; finished "
           "work is kept) or skip (leave it out of the cache and list it) (default: raise)",
           choices=("raise", "skip")),
    Option("progress", "bool", True, "no progress bar or summary", flag="--quiet", negate=True),
])

#: the fine-tuning vocabularies (:class:`featurekit.finetune.config.FinetuneConfig` checks its values against them)
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine")
#: early stopping / best-checkpoint criteria; ``val_auc_acc`` is the mean of validation AUC and accuracy
MONITORS = ("val_loss", "val_auc", "val_acc", "val_auc_acc")
BALANCE = ("none", "weights", "oversample")
HEAD_POLICIES = ("auto", "new", "keep")
#: new heads (:func:`featurekit.models.architecture.make_head`)
HEADS = ("linear", "mlp", "dropout_linear")

_MODEL, _FREEZE = "recipe and model", "freezing (layer names/indices as in 'featurekit layers MODEL')"
_OPTIM, _AUGMENT = "optimisation (defaults: the recipe's; transfer values shown)", \
    "augmentation and imbalance (training images only)"
_RUNS, _EXECUTION = "runs and output", "execution"

#: ``featurekit finetune``: the fields of :class:`featurekit.finetune.config.FinetuneConfig` (a test keeps them
#: the same), of :class:`featurekit.finetune.pipeline.RunOptions`, and ``progress``. Unset (None) training
#: options take the recipe's value.
FINETUNE = OptionSet("finetune", [
    Option("recipe", "text", None, "named training settings (list below); default: transfer for pretrained "
           "weights, scratch for --weights none", group=_MODEL),
    Option("model", "text", "resnet18", "registry model (default: resnet18; see 'featurekit layers')", group=_MODEL),
    Option("weights", "text", None, "imagenet (default), none (random, seeded), or a PATH: torchvision state_dict "
           "or a featurekit checkpoint of an earlier fine-tuning (two-stage transfer), or the run folder of a --cv "
           "run saved with --save-fold-checkpoints (each fold goes on from its own model)", group=_MODEL),
    Option("head", "text", None, "new head: linear; mlp = Dense(--hidden) + BatchNorm + ReLU + Dropout + output; "
           "dropout_linear = Dropout(--dropout) + output (default: the recipe's, linear)", choices=HEADS,
           group=_MODEL),
    Option("hidden", "int", None, "MLP head width (transfer: 512)", minimum=1, group=_MODEL),
    Option("dropout", "float", None, "head dropout (transfer: 0.5)", minimum=0.0, group=_MODEL),
    Option("small_input", "bool", None, "ResNet stem for 28-64 px images: 3x3 stride-1 first conv, no max-pool, "
           "1 channel", group=_MODEL),
    Option("in_chans", "int", None, "input channels with --small-input (default: 1)", choices=(1, 3), group=_MODEL),
    Option("head_policy", "text", "auto", "with a checkpoint PATH: keep its head when the class names match (auto), "
           "always replace it (new), or keep it and fail on a class mismatch (keep)", choices=HEAD_POLICIES,
           group=_MODEL),
    Option("size", "int", None, "input size (default: the recipe's, else the weights', e.g. 224)", minimum=1,
           group=_MODEL),
    Option("resize", "text", None, "crop (shorter side + centre crop) or squash (default: squash with "
           "--small-input, else crop)", choices=RESIZE_MODES, group=_MODEL),
    Option("freeze_until", "text", None, "freeze every parameter up to and including LAYER (e.g. block4_pool, "
           "conv3_block2_out, 7)", metavar="LAYER", group=_FREEZE),
    Option("freeze", "text", None, "freeze the parameters of these layers, e.g. 'conv2_*,conv3_*', '1-6' or 'all' "
           "(the whole backbone)", metavar="SELECTORS", group=_FREEZE),
    Option("optimizer", "text", None, "transfer: sgd (momentum)", choices=OPTIMIZERS, group=_OPTIM),
    Option("lr", "float", None, "learning rate (transfer: 1e-3)", group=_OPTIM),
    Option("momentum", "float", None, "SGD momentum (transfer: 0.9)", group=_OPTIM),
    Option("weight_decay", "float", None, "transfer: 1e-4", group=_OPTIM),
    Option("scheduler", "text", None, "transfer: step", choices=SCHEDULERS, group=_OPTIM),
    Option("step_size", "int", None, "StepLR period in epochs (transfer: 7)", minimum=1, group=_OPTIM),
    Option("gamma", "float", None, "StepLR factor (transfer: 0.1)", group=_OPTIM),
    Option("epochs", "int", None, "maximum epochs (transfer: 25)", minimum=1, group=_OPTIM),
    Option("batch_size", "int", None, "transfer: 16", minimum=1, group=_OPTIM),
    Option("monitor", "text", None, "early stopping / best checkpoint criterion; val_auc_acc = mean of validation "
           "AUC and accuracy (transfer: val_loss)", choices=MONITORS, group=_OPTIM),
    Option("patience", "int", None, "epochs without improvement before stopping; 0 = never (transfer: 5)",
           minimum=0, group=_OPTIM),
    Option("min_delta", "float", None, "smallest change counted as an improvement", group=_OPTIM),
    Option("val_fraction", "float", None, "stratified validation part of the training data for early stopping "
           "(transfer: 0.2; 0 = none)", group=_OPTIM),
    Option("augment", "list", None, "comma list of flip, vflip, rotate, translate, brightness, contrast, crop; "
           "'none'; 'default' = flip,rotate,translate,brightness,contrast (the transfer recipe's)", group=_AUGMENT),
    Option("rotation", "float", None, "max rotation in degrees (transfer: 15)", group=_AUGMENT),
    Option("translate", "float", None, "max translation, fraction of the size (0.1)", group=_AUGMENT),
    Option("brightness", "float", None, "brightness jitter (transfer: 0.2)", group=_AUGMENT),
    Option("contrast", "float", None, "contrast jitter (transfer: 0.2)", group=_AUGMENT),
    Option("crop_scale", "list", None, "random resized crop area range (transfer: 0.8,1.0)", metavar="LO,HI",
           convert=_crop_scale, group=_AUGMENT),
    Option("balance", "text", None, "class imbalance: none, weights (inverse-frequency loss weights), oversample",
           choices=BALANCE, group=_AUGMENT),
    Option("cv", "text", None, "cross-validate: K, KxR, holdout:FxR or predefined (as 'featurekit evaluate')",
           metavar="SPEC", group=_RUNS),
    Option("out", "text", None, "checkpoint of a single run (default: runs/NAME/model.pt)", metavar="CKPT",
           group=_RUNS),
    Option("overwrite", "bool", False, "replace an existing --out checkpoint or a non-empty --name run folder (as a "
           "whole); otherwise refused before training", group=_RUNS),
    Option("runs_dir", "text", "runs", "folder of run folders (default: runs)", group=_RUNS),
    Option("run_name", "text", None, "run folder name (default: finetune-MODEL-DATASET)", flag="--name",
           aliases=("--run-name",), group=_RUNS),
    Option("n_boot", "int", 2000, "bootstrap replicates of the CIs (default: 2000)", minimum=1, group=_RUNS),
    Option("youden", "text", "val", "with --cv: choose each fold's Youden threshold on its validation part "
           "(default) or on its whole training part", choices=("val", "train"), group=_RUNS),
    Option("save_fold_checkpoints", "bool", False, "with --cv: keep each fold's best model", group=_RUNS),
    Option("seed", "int", 0, "seed of splits, initialisation, order, augmentation", group=_EXECUTION),
    Option("device", "text", "auto", "auto (CUDA when present), cpu, cuda, cuda:1 ...", group=_EXECUTION),
    Option("amp", "bool", True, "no mixed precision on CUDA", flag="--no-amp", negate=True, group=_EXECUTION),
    Option("num_workers", "int", 0, "DataLoader workers (default: 0)", flag="--workers", minimum=0,
           group=_EXECUTION),
    Option("cache_images", "bool", True, "decode images every epoch instead of keeping them (resized) in memory",
           flag="--no-cache-images", negate=True, group=_EXECUTION),
    Option("progress", "bool", True, "no progress bars or summary", flag="--quiet", negate=True, group=_EXECUTION),
])

#: ``featurekit report``
REPORT = OptionSet("report", [
    Option("out", "text", None, "FILE.html / FILE.md (both are written) or a folder (default: the first run "
           "folder)", metavar="FILE"),
    Option("top", "int", 6, "best rows shown in the ROC, confusion and DeLong sections (default: 6)", minimum=1),
    Option("metric", "text", "roc_auc_pooled", "ranking column of results.csv (default: roc_auc_pooled)"),
])

#: each command's whole option table, in command-line order (the data options first)
COMMANDS: dict[str, OptionSet] = {"extract": OptionSet("extract", [], parts=(DATA, EXTRACT)),
                                   "evaluate": OptionSet("evaluate", [], parts=(DATA, EVALUATE)),
                                   "finetune": OptionSet("finetune", [], parts=(DATA, FINETUNE)), "report": REPORT}


def with_where(command: str, where: Mapping[str, Any]) -> str:
    """``command`` with the executor options of ``where`` (``executor``, ``dask_scheduler``, ``shard_size``;
    declared with the executor arguments in :mod:`featurekit.cli.cluster`)."""
    flags = {"executor": "--executor", "dask_scheduler": "--scheduler", "shard_size": "--shard-size"}
    extra = [f"{flags[k]} {shlex.quote(str(v))}" for k, v in where.items()
             if k in flags and v is not None and not (k == "executor" and v == "local")]
    return " ".join([command, *extra])
