"""The resolved plan as text: what ``featurekit run --dry-run`` prints."""

from __future__ import annotations

from typing import Optional

from featurekit.studies.plan import Plan

__all__ = ["describe_plan"]


def describe_plan(plan: Plan, status: Optional[dict] = None) -> str:
    """The resolved plan as text (``featurekit run --dry-run``)."""
    st = plan.study
    lines = [f"study: {st.name}" + (f" -- {st.title}" if st.title else ""), f"file: {st.path}",
             f"profile: {plan.profile}" + (f" ({st.profiles[plan.profile].description})"
                                          if plan.profile in st.profiles and st.profiles[plan.profile].description
                                          else "")]
    if plan.overrides:
        lines.append("overrides: " + ", ".join(plan.overrides))
    lines.append("variables: " + ", ".join(f"{k}={v}" for k, v in plan.variables.items()))
    if plan.substitutions:
        lines.append("substitutions:")
        lines += [f"  - {s}" for s in plan.substitutions]
    status = status or {}
    for n, s in enumerate(plan.steps, 1):
        if s.skipped:
            lines.append(f"[{n}] {s.name} ({s.kind}): skipped")
            continue
        if s.kind == "finetune":
            lines.append(f"[{n}] {s.name} (finetune, {len(s.stages)} stage{'s' if len(s.stages) > 1 else ''})")
            for ps in s.stages:
                lines.append(f"    stage {ps.stage.name} [{status.get(ps.stage.name, 'to run')}] "
                             f"hash {ps.hash} -> {ps.outputs[0]}")
                lines.append(f"      {ps.command}")
            continue
        state = f" [{status.get(s.name, 'to run')}]" if s.hash else ""
        lines.append(f"[{n}] {s.name} ({s.kind}){state}" + (f" hash {s.hash}" if s.hash else ""))
        if s.kind == "report":
            lines.append(f"      report of {len(s.step.runs)} run folder(s) -> {s.step.out}")
        lines.append(f"      {s.command}")
    if plan.problems:
        lines.append("problems (fix before running):")
        lines += [f"  - {p}" for p in plan.problems]
    return "\n".join(lines)
