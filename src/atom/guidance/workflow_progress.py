"""The progress of a workflow run in plain words, read from the run and its steps (pure: no I/O).

Nothing is stored for it: the run's step rows are the truth, and the live views recompute this
on each of the run's bus events. n = steps finished (succeeded, failed, skipped, cancelled), m = all
steps of the run; what / why / next come from the steps now running or waiting, the steps they
need, and the steps that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from atom.guidance.progress import short
from atom.workflows.schemas import RunDetail, StepRead

FINISHED = ("succeeded", "failed", "skipped", "cancelled")
ACTIVE = ("running", "waiting", "queued")


@dataclass(frozen=True)
class StepFacts:
    key: str
    label: str
    needs: tuple[str, ...]


def step_facts(definition: dict[str, Any]) -> dict[str, StepFacts]:
    facts = {}
    for raw in definition.get("steps") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            continue
        name = raw.get("name")
        needs = tuple(n for n in raw.get("needs") or [] if isinstance(n, str))
        facts[raw["id"]] = StepFacts(raw["id"], name if isinstance(name, str) and name else raw["id"], needs)
    return facts


def _label(step: StepRead, facts: dict[str, StepFacts]) -> str:
    fact = facts.get(step.step_key)
    return fact.label if fact is not None else step.step_key


def _names(keys: list[str], facts: dict[str, StepFacts]) -> str:
    labels = [f"“{facts[k].label if k in facts else k}”" for k in keys]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _doing(step: StepRead, label: str) -> str:
    if step.status == "waiting" and step.kind == "approval":
        return f"Waiting for a person to approve “{label}”"
    if step.status == "waiting":
        return f"Waiting until {step.due_at.isoformat() if step.due_at else 'its time'} (“{label}”)"
    if step.status == "queued":
        return f"“{label}” is queued" + (" for a retry" if step.attempt > 0 else " for a worker")
    return f"Running “{label}”" + (f" ({step.action})" if step.action else "")


def _why(step: StepRead, position: int, total: int, facts: dict[str, StepFacts]) -> str:
    if step.kind == "approval" and step.input and isinstance(step.input.get("message"), str):
        return short(step.input["message"])
    fact = facts.get(step.step_key)
    where = f"It is step {position} of {total}"
    if fact is not None and fact.needs:
        return f"{where}; it runs after {_names(list(fact.needs), facts)}."
    return f"{where}; it needs no other step."


def _then(active: list[StepRead], steps: list[StepRead], facts: dict[str, StepFacts]) -> str:
    keys = {s.step_key for s in active}
    waiting = [
        s.step_key
        for s in steps
        if s.status == "pending" and s.step_key in facts and keys & set(facts[s.step_key].needs)
    ]
    if waiting:
        return f"Then {_names(waiting, facts)}."
    if all(s.status in FINISHED or s.step_key in keys for s in steps):
        return "Then the run is finished."
    return "Then the steps still waiting for others."


@dataclass(frozen=True)
class WorkflowProgress:
    subject_id: str
    title: str
    status: str
    step: int
    total: int
    percent: int
    what: str
    why: str
    next: str
    error: str | None
    steps: list[dict[str, Any]]
    failed: list[StepRead]
    started_at: datetime
    finished_at: datetime | None


def describe(run: RunDetail, definition: dict[str, Any], workflow_name: str) -> WorkflowProgress:
    facts = step_facts(definition)
    steps = sorted(run.steps, key=lambda s: s.position)
    total = len(steps)
    done = sum(1 for s in steps if s.status in FINISHED)
    percent = 100 if run.status == "succeeded" else int(100 * done / total) if total else 0
    active = [s for s in steps if s.status in ACTIVE]
    failed = [s for s in steps if s.status == "failed"]
    position = {s.step_key: i + 1 for i, s in enumerate(steps)}
    if run.status == "succeeded":
        what, why, then = f"Finished: all {total} steps done", "Every step succeeded or was skipped.", "Nothing."
    elif run.status == "cancelled":
        what, why, then = "Cancelled", run.error or "A person cancelled the run.", "Nothing: retry it to go on."
    elif run.status == "failed":
        first = failed[0] if failed else None
        what = f"Failed at “{_label(first, facts)}”" if first else "Failed"
        why = short((first.error if first else None) or run.error or "A step failed.")
        then = "See what to do below, then retry from the failed step."
    elif active:
        current = active[0]
        label = _label(current, facts)
        what = _doing(current, label)
        if len(active) > 1:
            what += f" (and {len(active) - 1} more at once)"
        why = _why(current, position[current.step_key], total, facts)
        then = _then(active, steps, facts)
    else:
        what, why, then = "Starting", f"{workflow_name} was started ({run.source}).", "Its first steps are queued."
    rows = [
        {
            "key": s.step_key,
            "label": _label(s, facts),
            "kind": s.kind,
            "status": s.status.value if hasattr(s.status, "value") else str(s.status),
            "detail": s.action,
            "error": s.error,
            "error_code": s.error_code,
            "id": s.id,
        }
        for s in steps
    ]
    return WorkflowProgress(
        subject_id=run.id,
        title=f"Run of {workflow_name}",
        status=run.status.value if hasattr(run.status, "value") else str(run.status),
        step=done,
        total=total,
        percent=percent,
        what=what,
        why=why,
        next=then,
        error=run.error,
        steps=rows,
        failed=failed,
        started_at=run.created_at,
        finished_at=run.finished_at,
    )
