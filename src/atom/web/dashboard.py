"""What needs me: the Home page's counts, composed from each domain's read functions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import reads as agents_reads
from atom.guidance import reads as guidance_reads
from atom.training import reads as training_reads
from atom.training.models import ProposalStatus, SupervisionStatus
from atom.workflows import reads as workflows_reads
from atom.workflows.models import RunStatus

FAILED_RUNS_WINDOW = timedelta(hours=24)
# Bus topics after which the counts may have changed: proposals, supervision and triggers (audit
# notices), agents (a demotion), workflow runs (one finished), agent requests (asked, answered, timed out).
TOPICS = ("audit.notice", "agent.changed", "workflow.completed", *guidance_reads.TOPICS)


@dataclass(frozen=True)
class Counts:
    pending_proposals: int
    waiting_supervision: int
    failed_runs: int
    demoted_today: int
    pending_requests: int = 0  # agents waiting for a person's answer (guidance)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def start_of_today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def counts(*, session: AsyncSession) -> Counts:
    now = datetime.now(UTC)
    demotions = await agents_reads.demotions_since(session=session, since=start_of_today(), limit=1000)
    return Counts(
        pending_proposals=await training_reads.count_proposals(session=session, status=ProposalStatus.PENDING),
        waiting_supervision=await training_reads.count_supervision(session=session, status=SupervisionStatus.QUEUED),
        failed_runs=await workflows_reads.count_runs(
            session=session, status=RunStatus.FAILED, since=now - FAILED_RUNS_WINDOW
        ),
        demoted_today=len({change.agent_id for change, _ in demotions}),
        pending_requests=await guidance_reads.count_pending_requests(session=session),
    )
