"""A plan: the exact, ordered list of governed actions an automated trigger asks an agent to take."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

ACTION_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"


class PlanStep(BaseModel):
    action: str = Field(pattern=ACTION_PATTERN)
    params: dict[str, Any] = Field(default_factory=dict)
    # What the tool resolved to when the step was proposed (a skill tool: the skill version the agent was
    # offered), recorded by the agent runtime with the call and covered by the plan hash: the approved step
    # runs on exactly that, or is refused with the reason (docs/skills.md).
    pin: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored form: no `pin` key when there is none (so a plan without one keeps its hash)."""
        stored: dict[str, Any] = {"action": self.action, "params": self.params}
        if self.pin is not None:
            stored["pin"] = self.pin
        return stored


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=100)

    def as_json(self) -> list[dict[str, Any]]:
        return [step.as_json() for step in self.steps]


def plan_hash(steps: list[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON: shown at approval, checked again right before execution."""
    canonical = json.dumps(steps, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
