"""The governance decision as a pure function of the agent's state, the action and the context.

RULES.md: a level may perform actions up to its max complexity, always; automated triggers route
by level (STUDENT -> training, INTERN -> proposal, SUPERVISED -> supervision, AUTONOMOUS -> run).
An approved proposal or a live supervision session lifts the automated restriction, never the
complexity cap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from atom.governance.maturity import MaturityLevel


class TriggerKind(StrEnum):
    MANUAL = "manual"
    AUTOMATED = "automated"


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    PROPOSE = "propose"
    SUPERVISE = "supervise"
    TRAIN = "train"


@dataclass(frozen=True)
class GovernanceContext:
    trigger: TriggerKind = TriggerKind.MANUAL
    source: str = "api"
    # Set only by executors running an APPROVED proposal / inside a LIVE supervision session:
    # the policy trusts them, the training domain guarantees them.
    proposal_id: str | None = None
    supervision_session_id: str | None = None
    actor_user_id: str | None = None

    def cache_key(self, action: str) -> tuple[str, str, bool, bool]:
        return (action, self.trigger.value, self.proposal_id is not None, self.supervision_session_id is not None)


@dataclass(frozen=True)
class AgentSnapshot:
    id: str
    level: MaturityLevel
    status: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    outcome: Outcome
    reason_code: str
    reason: str
    action: str
    complexity: int
    required_level: MaturityLevel
    agent_level: MaturityLevel | None
    needs_proposal: bool = False
    needs_supervision: bool = False
    cached: bool = False
    bypassed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decision(
    outcome: Outcome, code: str, reason: str, action: str, complexity: int, agent: AgentSnapshot | None
) -> Decision:
    return Decision(
        allowed=outcome is Outcome.ALLOW,
        outcome=outcome,
        reason_code=code,
        reason=reason,
        action=action,
        complexity=complexity,
        required_level=MaturityLevel.for_complexity(complexity),
        agent_level=agent.level if agent else None,
        needs_proposal=outcome is Outcome.PROPOSE,
        needs_supervision=outcome is Outcome.SUPERVISE,
    )


def decide(agent: AgentSnapshot | None, action: str, complexity: int, context: GovernanceContext) -> Decision:
    if agent is None:
        return _decision(Outcome.DENY, "AGENT_NOT_FOUND", "The agent does not exist.", action, complexity, None)
    if agent.status == "paused":
        return _decision(Outcome.DENY, "AGENT_PAUSED", "The agent is paused.", action, complexity, agent)
    if agent.status != "active":
        return _decision(Outcome.DENY, "AGENT_STOPPED", "The agent is stopped.", action, complexity, agent)
    if complexity > agent.level.max_complexity:
        required = MaturityLevel.for_complexity(complexity)
        return _decision(
            Outcome.DENY,
            "COMPLEXITY_EXCEEDS_MATURITY",
            f"{action} (complexity {complexity}) needs {required.value}; the agent is {agent.level.value}.",
            action,
            complexity,
            agent,
        )
    if context.trigger is TriggerKind.MANUAL:
        return _decision(Outcome.ALLOW, "ALLOWED", "Within the agent's maturity.", action, complexity, agent)
    if agent.level is MaturityLevel.STUDENT:
        return _decision(
            Outcome.TRAIN,
            "STUDENT_BLOCKED_TRAINING",
            "STUDENT agents do not run automated triggers; routed to training.",
            action,
            complexity,
            agent,
        )
    if agent.level is MaturityLevel.INTERN and context.proposal_id is None:
        return _decision(
            Outcome.PROPOSE,
            "INTERN_NEEDS_PROPOSAL",
            "INTERN agents act on automated triggers only through an approved proposal.",
            action,
            complexity,
            agent,
        )
    if agent.level is MaturityLevel.SUPERVISED and context.supervision_session_id is None:
        return _decision(
            Outcome.SUPERVISE,
            "SUPERVISED_NEEDS_SUPERVISION",
            "SUPERVISED agents run automated triggers inside a live supervision session.",
            action,
            complexity,
            agent,
        )
    return _decision(Outcome.ALLOW, "ALLOWED", "Within the agent's maturity.", action, complexity, agent)
