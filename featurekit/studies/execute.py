"""Running a study plan: each step through the Python API, finished steps reused.

A step (an evaluate step, a fine-tuning stage) counts as finished when its
marker ``study-step.json`` -- written beside its outputs only after they are
complete -- holds the same hash as the plan (the resolved configuration,
recipe values filled in, plus the hashes of the stages it starts from), its
outputs exist, and its data still have the fingerprint recorded then
(:meth:`~featurekit.data.dataset.Dataset.fingerprint`: ids, labels and file
bytes), and the stages it starts from finished when they did then. Anything
else runs again: a changed option, an edited image, an earlier stage that was re-run.
Extraction steps always run -- the feature cache itself computes only what it
lacks -- and so does the report.

A step resumes from every kill point. Before it runs it claims its output
(``.<output>.study-running`` beside it, removed once its marker is written),
when the output is free or already the study's own (its marker or a claim is
there); a rerun replaces an output it claimed, so a kill between the output
and its marker (a checkpoint written, its record not) runs the step again
instead of refusing the study's own output. An output the study never claimed
(someone else's file) is refused unless ``overwrite``.

``featurekit run`` prints a line per step and a summary, and writes
``{out}/study-run.json`` (what ran, what was reused, seconds per step).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from featurekit.executors import on_cluster
from featurekit.io import utc_now, write_json
from featurekit.studies.plan import Plan, PlannedStage, PlannedStep
from featurekit.studies.steps import StudyError

__all__ = ["run_plan", "marker_state", "references_of"]


def _outputs_complete(outputs: list, cv: bool) -> bool:
    out = Path(outputs[0])
    return (out / "results.csv").is_file() if cv else out.is_file()


def _read_marker(marker) -> Optional[dict]:
    """A step's marker record; None when the file is missing or not a JSON object (a step to run again)."""
    try:
        rec = json.loads(Path(marker).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def marker_state(marker: Path, hash_: str, outputs: list, cv: bool) -> tuple[str, Optional[dict]]:
    """``("done", marker)``, ``("changed", marker)`` (another configuration finished there) or ``("to run", None)``.

    The data fingerprint is not checked here (that needs the data): see :func:`run_plan`.
    """
    rec = _read_marker(marker)
    if rec is None:
        return "to run", None
    if rec.get("hash") != hash_:
        return "changed", rec
    if not _outputs_complete(outputs, cv):
        return "to run", None
    return "done", rec


def references_of(plan: Plan) -> dict:
    """What the report shows beside our rows: the paper's numbers, its data, the substitutions made."""
    paper = plan.study.paper
    return {"title": plan.study.title or plan.study.name, "citation": paper.citation if paper else "",
            "paper_data": paper.data if paper else "", "paper_dataset": paper.dataset if paper else "",
            "settings": paper.settings if paper else "",
            "reported": list(paper.reported) if paper else [], "note": paper.note if paper else "",
            "substitutions": list(plan.substitutions), "profile": plan.profile}


def _finished(markers: list) -> dict:
    """``{marker path: its 'finished' time}`` of the stages a stage starts from (None: not finished)."""
    out = {}
    for m in markers:
        rec = _read_marker(m)
        out[str(m)] = None if rec is None else rec.get("finished")
    return out


def _write_marker(plan: Plan, marker: Path, hash_: str, name: str, fingerprint: str, seconds: float,
                  command: str, after: Sequence[Path] = ()) -> None:
    write_json(marker, {"study": plan.study.name, "study_file": str(plan.study.path), "profile": plan.profile,
                        "step": name, "hash": hash_, "data_fingerprint": fingerprint, "finished": utc_now(),
                        "seconds": round(seconds, 1), "command": command, "after": _finished(list(after))})


def _claim_path(output) -> Path:
    out = Path(output)
    return out.with_name(f".{out.name}.study-running")


def _claim(marker: Path, output) -> bool:
    """Whether the step may replace ``output``: it is free or the study's own; then it is claimed (module)."""
    out = Path(output)
    claim = _claim_path(out)
    free = not out.exists() or (out.is_dir() and next(out.iterdir(), None) is None)
    if not (free or marker.is_file() or claim.is_file()):
        return False  # not the study's: the step refuses it unless asked to overwrite
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(claim, {"marker": str(marker), "started": utc_now()})
    return True


def _done(plan: Plan, marker: Path, output, *args) -> None:
    """Record a finished step (its marker), then drop its claim."""
    _write_marker(plan, marker, *args)
    _claim_path(output).unlink(missing_ok=True)


def _reusable(plan_hash: str, marker: Path, outputs: list, cv: bool, data_spec, echo, label: str, after=()):
    """``(reuse?, dataset)``: the dataset is loaded when the marker matches, to check its fingerprint."""
    state, rec = marker_state(marker, plan_hash, outputs, cv)
    if rec is None:  # nothing recorded there
        return False, None
    if state == "changed":
        echo(f"{label}: configuration changed since {rec.get('finished', '?')}: running again")
    if state != "done":
        return False, None
    if (rec.get("after") or {}) != _finished(list(after)):
        echo(f"{label}: a stage it starts from was run again: running again")
        return False, None
    dataset = data_spec.load()
    if dataset.fingerprint() != rec.get("data_fingerprint"):
        echo(f"{label}: the data changed since {rec.get('finished', '?')}: running again")
        return False, dataset
    echo(f"{label}: done ({rec.get('finished', '?')}, {rec.get('seconds', '?')} s): reused")
    return True, dataset


def _run_evaluate(plan: Plan, s: PlannedStep, progress: bool, echo) -> tuple[str, float]:
    from featurekit.evaluation.stats.delong import NestedModelWarning
    from featurekit.orchestration import evaluate_features

    step = s.step
    if s.hash is None or s.marker is None:  # plan_study gives every evaluate step both
        raise StudyError(f"step {s.name!r}: an evaluate step planned without its hash and marker")
    reuse, dataset = _reusable(s.hash, s.marker, s.outputs, True, step.data, echo, f"{s.name} (evaluate)")
    if reuse:
        return "reused", 0.0
    dataset = dataset or step.data.load()
    echo(f"{s.name} (evaluate): {s.command}")
    t0 = time.perf_counter()
    o = {**step.options, "progress": progress and step.options["progress"]}
    o["overwrite"] = o["overwrite"] or _claim(s.marker, s.outputs[0])  # the study's own output: replaced
    with warnings.catch_warnings(), on_cluster(step.where["cluster"]) as executor:
        warnings.simplefilter("ignore", NestedModelWarning)  # flagged in comparisons.csv and the report
        evaluate_features(dataset, positive=step.data.positive, command=s.command, executor=executor,
                          shard_size=step.where["shard_size"], **o)
    seconds = time.perf_counter() - t0
    _done(plan, s.marker, s.outputs[0], s.hash, s.name, dataset.fingerprint(), seconds, s.command)
    return "ran", seconds


def _run_stage(plan: Plan, ps: PlannedStage, progress: bool, echo) -> tuple[str, float]:
    from featurekit.finetune.pipeline import run_stage

    stage = ps.stage
    label = f"{stage.name} (finetune)"
    after = [a.marker for a in ps.after]
    reuse, dataset = _reusable(ps.hash, ps.marker, ps.outputs, stage.run.cv is not None, stage.data, echo, label,
                               after)
    if reuse:
        return "reused", 0.0
    dataset = dataset or stage.data.load()
    echo(f"{label}: {ps.command}")
    t0 = time.perf_counter()
    if _claim(ps.marker, ps.outputs[0]) and not stage.run.overwrite:  # the study's own output: replaced
        stage = replace(stage, run=replace(stage.run, overwrite=True))
    run_stage(stage, dataset=dataset, command=ps.command, progress=progress, echo=echo)
    seconds = time.perf_counter() - t0
    _done(plan, ps.marker, ps.outputs[0], ps.hash, stage.name, dataset.fingerprint(), seconds, ps.command, after)
    return "ran", seconds


def _run_extract(s: PlannedStep, progress: bool, echo) -> tuple[str, float]:
    from featurekit.extraction.pipeline import extract

    step = s.step
    echo(f"{s.name} (extract): {s.command}")
    t0 = time.perf_counter()
    o = dict(step.options)
    with on_cluster(o.pop("cluster")) as executor:
        result = extract(step.data.load(), list(step.layers), list(step.handcrafted), weights=step.weights,
                         progress=progress, executor=executor, **o)
    computed = len(result.computed)
    echo(f"{s.name} (extract): {computed} of {len(result.specs)} feature entries computed, the rest reused "
         f"({result.cache.path})")
    return ("ran" if computed else "reused"), time.perf_counter() - t0


def _run_report(plan: Plan, s: PlannedStep, echo) -> tuple[str, float]:
    from featurekit.report.build import build_report

    missing = [r for r in s.step.runs if not (Path(r) / "results.csv").is_file()]
    if missing:
        raise StudyError(f"step {s.name!r}: no results in {', '.join(missing)}")
    if not s.step.runs:
        raise StudyError(f"step {s.name!r}: no run folders to report")
    t0 = time.perf_counter()
    html = build_report(list(s.step.runs), out=s.step.out, top=s.step.top, metric=s.step.metric,
                        references=references_of(plan),
                        title=f"{plan.study.title or plan.study.name} ({plan.profile} profile)")
    echo(f"{s.name} (report): {html}")
    return "ran", time.perf_counter() - t0


def run_plan(plan: Plan, *, progress: bool = True, echo: Callable[[str], None] = print) -> list[dict]:
    """Run (or reuse) every step in order; returns one record per step / stage (name, kind, status, seconds)."""
    if plan.problems:
        raise StudyError(f"{plan.study.path}: cannot run:\n  - " + "\n  - ".join(plan.problems))
    records = []
    started = utc_now()
    for s in plan.steps:
        if s.skipped:
            echo(f"{s.name} ({s.kind}): skipped")
            records.append({"step": s.name, "kind": s.kind, "status": "skipped", "seconds": 0.0})
            continue
        if s.kind == "finetune":
            for ps in s.stages:
                status, seconds = _run_stage(plan, ps, progress, echo)
                records.append({"step": s.name, "stage": ps.stage.name, "kind": "finetune", "status": status,
                                "seconds": round(seconds, 1), "hash": ps.hash, "output": str(ps.outputs[0])})
            continue
        if s.kind == "evaluate":
            status, seconds = _run_evaluate(plan, s, progress, echo)
        elif s.kind == "extract":
            status, seconds = _run_extract(s, progress, echo)
        else:
            status, seconds = _run_report(plan, s, echo)
        records.append({"step": s.name, "kind": s.kind, "status": status, "seconds": round(seconds, 1),
                        **({"hash": s.hash} if s.hash else {}),
                        **({"output": str(s.step.out)} if s.kind in ("evaluate", "report") else {})})
    root = Path(plan.variables.get("out", "."))
    write_json(root / "study-run.json", {"study": plan.study.name, "study_file": str(plan.study.path),
                                         "profile": plan.profile, "overrides": plan.overrides,
                                         "started": started, "finished": utc_now(), "steps": records})
    return records
