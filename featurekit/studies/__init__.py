"""Studies: a paper's experiment as one file, run with one command (``featurekit run STUDY``).

* :mod:`featurekit.studies.study` -- reading a study file (TOML; JSON too) and checking its keys;
* :mod:`featurekit.studies.steps` -- the step kinds (extract, evaluate, finetune, report) as
  typed objects, with the options of the commands;
* :mod:`featurekit.studies.plan` -- profiles, variables, ``--set`` overrides, checks and hashes;
* :mod:`featurekit.studies.describe` -- the plan as text (``--dry-run``);
* :mod:`featurekit.studies.execute` -- running the steps through the Python API, reusing
  finished ones.

The shipped studies are in ``pipelines/`` (see ``pipelines/README.md``)::

    from featurekit.studies import load_study, plan_study, run_plan
    plan = plan_study(load_study("two_stage_transfer"), profile="quick", overrides=["epochs=2"])
    print(describe_plan(plan))
    run_plan(plan)
"""

from featurekit.studies.describe import describe_plan
from featurekit.studies.execute import marker_state, references_of, run_plan
from featurekit.studies.plan import Plan, plan_study
from featurekit.studies.steps import StudyError
from featurekit.studies.study import Study, find_study, load_study, shipped_studies


def plan_status(plan: Plan) -> dict:
    """``{step or stage name: "done" | "changed" | "to run"}`` from the markers (data not re-checked)."""
    out = {}
    for s in plan.steps:
        if s.skipped:
            continue
        if s.hash:
            out[s.name] = marker_state(s.marker, s.hash, s.outputs, True)[0]
        for ps in s.stages:
            out[ps.stage.name] = marker_state(ps.marker, ps.hash, ps.outputs, ps.stage.run.cv is not None)[0]
    return out


__all__ = ["Plan", "Study", "StudyError", "describe_plan", "find_study", "load_study", "marker_state",
           "plan_status", "plan_study", "references_of", "run_plan", "shipped_studies"]
