"""Fine-tuning stages as typed objects, and chains of them (two-stage transfer).

A :class:`FinetuneStage` is one ``featurekit finetune`` run: *which images*
(:class:`~featurekit.data.spec.DataSpec`), *how to train*
(:class:`~featurekit.finetune.config.FinetuneConfig`) and *where the results go*
(:class:`RunOptions`). The command line builds one from its arguments, a study
file (``featurekit run``, :mod:`featurekit.studies`) from its stage tables, a
script directly::

    from featurekit.data.spec import DataSpec
    from featurekit.finetune import FinetuneConfig
    from featurekit.finetune.pipeline import FinetuneStage, RunOptions, run_stages

    mias = FinetuneStage(DataSpec("mini_mias", classes="benign,malignant", roi="mias"),
                         FinetuneConfig(model="mobilenet_v2"), RunOptions(out="runs/stage1.pt"),
                         name="mammography")
    busi = FinetuneStage(DataSpec("busi", classes="benign,malignant", positive="malignant"),
                         FinetuneConfig(model="mobilenet_v2", weights="{stage:mammography}"),
                         RunOptions(cv="5", runs_dir="runs", run_name="two_stage"), name="ultrasound")
    run_stages([mias, busi])

``weights`` may refer to an earlier stage: ``{stage:NAME}`` or ``{previous}``
is that stage's checkpoint (a single run), or -- for a cross-validated stage
saved with ``save_fold_checkpoints`` -- its run folder, from which every fold
starts from the model of the same fold (:func:`featurekit.finetune.crossval.cross_validate`
checks that the test folds are the same).
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from featurekit.data.spec import DataSpec
from featurekit.finetune.config import FinetuneConfig, required
from featurekit.finetune.errors import FinetuneError

__all__ = ["RunOptions", "FinetuneStage", "StageOutcome", "stage_outputs", "chain_target", "run_stage",
           "run_stages", "resolve_stage_refs"]

_REF = re.compile(r"\{(stage:[^{}]+|previous)\}")
YOUDEN = ("val", "train")


@dataclass(frozen=True)
class RunOptions:
    """Where a fine-tuning run writes and how it is scored.

    Parameters
    ----------
    cv : str, optional
        Cross-validate with a protocol of ``featurekit evaluate`` (``"5"``, ``"5x3"``,
        ``"holdout:0.3x10"``, ``"predefined"``); None: one training run.
    out : str, optional
        Checkpoint of a single run (default ``runs_dir/run_name/model.pt``).
    runs_dir, run_name : str
        The run folder is ``runs_dir/run_name`` (default name ``finetune-MODEL-DATASET``).
    n_boot : int
        Bootstrap replicates of the confidence intervals.
    youden : {"val", "train"}
        With ``cv``: where each fold's Youden threshold is chosen.
    save_fold_checkpoints : bool
        With ``cv``: keep each fold's best model (needed to chain a later stage fold by fold).
    overwrite : bool
        Replace an existing ``out`` checkpoint or a non-empty named run folder (as a
        whole); otherwise refused before training.
    cluster : str, optional
        With ``cv``: train the folds on this Dask cluster (a scheduler address or
        file, ``local:N``; ``""`` = Dask's configured address); None: here.
    """

    cv: Optional[str] = None
    out: Optional[str] = None
    runs_dir: str = "runs"
    run_name: Optional[str] = None
    n_boot: int = 2000
    youden: str = "val"
    save_fold_checkpoints: bool = False
    overwrite: bool = False
    cluster: Optional[str] = None

    def __post_init__(self):
        if self.youden not in YOUDEN:
            raise FinetuneError(f"youden must be one of {', '.join(YOUDEN)}, got {self.youden!r}")
        if int(self.n_boot) < 1:
            raise FinetuneError(f"n_boot must be >= 1, got {self.n_boot}")
        if self.cv is not None:
            object.__setattr__(self, "cv", str(self.cv))

    @classmethod
    def field_names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class FinetuneStage:
    """One fine-tuning run: data, training configuration, outputs."""

    data: DataSpec
    config: FinetuneConfig
    run: RunOptions = field(default_factory=RunOptions)
    name: str = "finetune"

    def to_dict(self) -> dict:
        return {"name": self.name, "data": self.data.to_dict(), "config": self.config.to_dict(),
                "run": asdict(self.run)}


@dataclass
class StageOutcome:
    """What running a stage produced: a run folder (with ``cv``) and/or a checkpoint."""

    stage: FinetuneStage
    run_dir: Optional[Path]
    checkpoint: Optional[Path]
    result: Any = None
    dataset: Any = None


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def stage_outputs(stage: FinetuneStage, dataset_name: Optional[str] = None) -> tuple[Optional[Path], Optional[Path]]:
    """``(run folder, checkpoint)`` a stage writes; either may be None.

    With ``cv``: the run folder (fold checkpoints inside with
    ``save_fold_checkpoints``), no single checkpoint. Without: the checkpoint
    (``out``, else ``runs_dir/run_name/model.pt``) and, without ``out``, its folder.
    The default run name needs ``dataset_name``.
    """
    run = stage.run
    if run.cv is None and run.out:
        return None, Path(run.out)
    name = run.run_name
    if name is None:
        if dataset_name is None:
            return None, None
        name = _safe(f"finetune-{stage.config.model}-{dataset_name}")
    folder = Path(run.runs_dir) / name
    return folder, (None if run.cv is not None else folder / "model.pt")


def chain_target(stage: FinetuneStage) -> str:
    """What ``{stage:NAME}`` means in a later stage: the checkpoint, or the CV run folder."""
    run_dir, ckpt = stage_outputs(stage)
    if stage.run.cv is not None:
        if not stage.run.save_fold_checkpoints or run_dir is None:
            raise FinetuneError(f"stage {stage.name!r} is cross-validated: a later stage can start from it fold "
                                "by fold only when it keeps its fold models (save_fold_checkpoints) and has "
                                "a run_name")
        return str(run_dir)
    if ckpt is None:
        raise FinetuneError(f"stage {stage.name!r}: a later stage starts from its checkpoint, so give it an "
                            "'out' path or a 'run_name'")
    return str(ckpt)


def resolve_stage_refs(text: Any, targets: dict, previous: Optional[str], where: str) -> Any:
    """Replace ``{stage:NAME}`` and ``{previous}`` in a string by earlier stages' :func:`chain_target`."""
    if not isinstance(text, str):
        return text

    def sub(m):
        key = m.group(1)
        if key == "previous":
            if previous is None:
                raise FinetuneError(f"{where}: {{previous}} used where no earlier stage wrote a model")
            return previous
        name = key[len("stage:"):]
        if name not in targets:
            raise FinetuneError(f"{where}: {{stage:{name}}} names no earlier stage "
                                f"(earlier stages: {', '.join(targets) or 'none'})")
        return targets[name]

    return _REF.sub(sub, text)


# ---------------------------------------------------------------------------- running
def run_stage(stage: FinetuneStage, *, dataset=None, command: Optional[str] = None, progress: bool = True,
              echo: Callable[[str], None] = print, executor=None) -> StageOutcome:
    """Run one stage: cross-validated (``run.cv``) or one training run writing a checkpoint.

    ``dataset`` is ``stage.data.load()`` when not given. ``command`` is recorded
    in the provenance (default: this process's command line; a study records the stage's
    equivalent ``featurekit finetune`` command). ``echo`` gets the
    summary lines (``progress=False`` prints nothing). ``executor`` (None, "local",
    an Executor or a ``dask.distributed.Client``): where the folds of ``run.cv`` are
    trained. A bad device, an existing output (without ``run.overwrite``) or a batch
    that cannot fit in memory is refused before the data are read or anything trained.
    """
    from featurekit.devices import resolve_device
    from featurekit.io import StagedFolder, atomic_write_text, refuse_existing, write_json

    config, run = stage.config, stage.run
    resolve_device(config.device)  # a bad device fails before any work
    if run.out and run.cv is None:
        refuse_existing(run.out, run.overwrite, what="checkpoint", kind="file")  # before the data are even read
    elif run.run_name:
        refuse_existing(Path(run.runs_dir) / run.run_name, run.overwrite, what="run folder", kind="folder")
    import numpy as np

    from featurekit.executors import on_cluster
    from featurekit.finetune.crossval import cross_validate
    from featurekit.finetune.results import curves_frame, plot_curves
    from featurekit.finetune.training import finetune
    from featurekit.models.memory import check_memory
    from featurekit.models.registry import get_spec

    dataset = stage.data.load() if dataset is None else dataset
    size = config.size or get_spec(config.model).default_size
    check_memory(config.model, size, required(config.batch_size, "batch_size"), config.device,
                 channels=config.channels, training=True, small_input=required(config.small_input, "small_input"),
                 extra=len(dataset) * config.channels * size * size * 2 if config.cache_images else 0)
    if command is None:
        from featurekit.evaluation.results.crossval import command_line

        command = command_line()
    run_dir, ckpt = stage_outputs(stage, dataset.name)
    if run_dir is not None and run.run_name is None and run_dir.exists() and any(run_dir.iterdir()):
        run_dir = run_dir.with_name(f"{run_dir.name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
        ckpt = run_dir / "model.pt" if ckpt is not None else None
    say = echo if progress else (lambda s: None)
    if run.cv is not None:
        if run.out:
            print("note: --out is ignored with --cv (use --save-fold-checkpoints for the fold models)",
                  file=sys.stderr)
        with on_cluster(run.cluster if executor is None else None) as here:
            cv_result = cross_validate(dataset, config, run.cv, out=run_dir, n_boot=run.n_boot, youden=run.youden,
                                       keep_estimators=run.save_fold_checkpoints, progress=progress,
                                       command=command, overwrite=run.overwrite, executor=executor or here)
        row, prov = cv_result.rows.iloc[0], cv_result.provenance
        classes = prov.get("classes")
        task = (f"{len(classes)} classes ({', '.join(classes)}): multi-class" if classes else
                f"positive {prov['positive']}" + (f" against the rest of {len(prov['one_vs_rest'])} classes"
                                                  if prov.get("one_vs_rest") else ""))
        say(f"dataset: {dataset.name} ({len(dataset)} images; {task})")
        say(f"model: {config.model} (recipe {config.recipe}) weights={prov['weights']} "
            f"sha256={str(prov['weights_sha256'])[:12]}; kept epoch: {prov['monitor']['meaning']}")
        auc = f"[{row['roc_auc_ci_lo']:.3f}, {row['roc_auc_ci_hi']:.3f}]"
        if classes:
            say(f"{row['feature_set']}  {row['protocol']}: macro AUC (one-vs-rest) {row['roc_auc_pooled']:.3f} "
                f"{auc}  accuracy {row['accuracy_pooled']:.3f}  macro F1 {row['f1_macro_pooled']:.3f} "
                "(predicted class = the most probable)")
        else:
            say(f"{row['feature_set']}  {row['protocol']}: AUC {row['roc_auc']:.3f} {auc}  "
                f"balanced accuracy (Youden) {row['balanced_accuracy_youden']:.3f}")
        say(f"run folder: {cv_result.run_dir}")
        return StageOutcome(stage, cv_result.run_dir, None, cv_result, dataset)
    if ckpt is None:  # stage_outputs names the checkpoint of every single run given a dataset name
        raise FinetuneError(f"stage {stage.name!r}: no checkpoint path for a single run")
    staged = None
    if run.out:  # a checkpoint file (replaced atomically) and its curves beside it
        out, curves_csv = ckpt, ckpt.with_name(f"{ckpt.stem}_training_curves.csv")
    else:  # a run folder (the checkpoint's), written beside and swapped in whole
        staged = StagedFolder(ckpt.parent, overwrite=run.overwrite, what="run folder")
        out, curves_csv = staged.path / ckpt.name, staged.path / "training_curves.csv"
    result = finetune(dataset, config, out=out, progress=progress, overwrite=run.overwrite)
    curves = curves_frame([(0, 0, result.train.history)])
    atomic_write_text(curves_csv, curves.to_csv(index=False))
    plot_curves(curves, curves_csv.with_suffix(".png"), title=f"{config.model} on {dataset.name}",
                selected={(0, 0): int(result.train.best_epoch)})
    if staged is not None:
        meta = {k: v for k, v in result.meta.items() if k not in ("layer_table", "history")}
        write_json(staged.path / "provenance.json", {"command": command, **meta})
        staged.commit()
        result.checkpoint = ckpt
    best = result.train.best
    say(f"dataset: {dataset.name} ({len(dataset)} images; classes {dataset.class_names})")
    say(f"start: {result.start.weights} (head {result.start.head}; recipe {config.recipe}); "
        f"stage {len(result.meta['lineage'])} of its lineage")
    say(f"best epoch {result.train.best_epoch}/{len(result.train.history)}: "
        + ", ".join(f"{k} {best[k]:.4f}" for k in ("train_loss", "val_loss", "val_auc", "val_acc")
                    if k in best and np.isfinite(best[k])))
    if "test" in result.meta["metrics"]:
        t = result.meta["metrics"]["test"]
        say(f"test: accuracy {t['accuracy']:.3f}, {t['auc_meaning']} {t['auc']:.3f}"
            + (f", macro F1 {t['f1_macro']:.3f}" if "f1_macro" in t else ""))
    say(f"checkpoint: {result.checkpoint}")
    return StageOutcome(stage, run_dir if not run.out else None, ckpt, result, dataset)


def run_stages(stages: Sequence[FinetuneStage], *, progress: bool = True,
               echo: Callable[[str], None] = print) -> list[StageOutcome]:
    """Run stages in order; ``{stage:NAME}`` / ``{previous}`` in a stage's weights name earlier stages."""
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise FinetuneError(f"stage names repeat: {names}")
    targets: dict[str, str] = {}
    previous = None
    outcomes = []
    for stage in stages:
        weights = resolve_stage_refs(stage.config.weights, targets, previous, f"stage {stage.name!r}")
        if weights != stage.config.weights:
            stage = FinetuneStage(stage.data, stage.config.replace(weights=weights), stage.run, stage.name)
        outcomes.append(run_stage(stage, progress=progress, echo=echo))
        try:
            previous = targets[stage.name] = chain_target(stage)
        except FinetuneError:
            previous = None  # cannot be chained from; a later reference says so
            targets.pop(stage.name, None)
    return outcomes
