"""Memory tools in an approved plan act for the agent whose proposal it is, as in that agent's own run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.memory.models import Episode, EpisodeAccessLog
from atom.memory.runtime import Memory
from atom.memory.tools import register_memory_tools, unregister_memory_tools
from atom.runtime import tools as runtime_tools
from atom.security.models import Role
from atom.training import proposals
from atom.training.models import ProposalKind
from tests.conftest import MakeUser
from tests.support.agents import make_agent


@pytest.fixture
def memory_tools(db: Database, memory: Memory) -> Iterator[None]:
    """Memory's tools in this process's registry, as the app's start-up puts them."""
    register_memory_tools(runtime_tools.current(), db, memory)
    yield
    unregister_memory_tools(runtime_tools.current())


async def _approved(
    db: Database, settings: Settings, agent_id: str, approver_id: str, action: str, params: dict[str, object]
) -> proposals.Approval:
    """The proposal an INTERN's automated run makes of one call (chat/runtime.py), approved unchanged."""
    async with db.session_scope() as session:
        proposal = await proposals.create(
            session=session,
            agent_id=agent_id,
            kind=ProposalKind.ACTION,
            plan=[{"action": action, "params": params}],
            source="chat",
            blocked_trigger_id=None,
            settings=settings,
        )
        proposal_id, digest = proposal.id, proposal.plan_hash
    return await proposals.approve(
        db=db, settings=settings, proposal_id=proposal_id, approver_id=approver_id, seen_hash=digest
    )


async def test_a_memory_tool_in_an_approved_plan_acts_as_the_proposing_agent(
    db: Database, settings: Settings, memory_tools: None, make_user: MakeUser
) -> None:
    intern = await make_agent(db, settings, MaturityLevel.INTERN)
    other = await make_agent(db, settings, MaturityLevel.INTERN)
    approver = await make_user(Role.APPROVER)
    text = "Contoso always pays invoices by wire on the 10th"

    remembered = await _approved(db, settings, intern.id, approver.id, "memory_remember", {"text": text})

    assert remembered.proposal.status == "executed", remembered.proposal.error
    assert remembered.run is not None
    [step] = remembered.run.steps
    episode_id = step.output["episode_id"] if step.output else None
    async with db.session_scope() as s:
        episode = await s.get(Episode, episode_id)
    assert episode is not None and episode.agent_id == intern.id and text in episode.text

    found = await _approved(db, settings, intern.id, approver.id, "memory_search", {"query": "how does Contoso pay"})
    assert found.run is not None and found.run.steps[0].output is not None
    assert [e["episode_id"] for e in found.run.steps[0].output["episodes"]] == [episode_id]
    elsewhere = await _approved(db, settings, other.id, approver.id, "memory_search", {"query": "Contoso"})
    assert elsewhere.run is not None and elsewhere.run.steps[0].output == {"episodes": []}  # never another's
    async with db.session_scope() as s:
        actors = {log.actor for log in (await s.scalars(select(EpisodeAccessLog))).all()}
    assert actors == {f"agent:{intern.id}", f"agent:{other.id}"}
