"""Episodes and canvas actions (both databases): an episode's canvas actions are those of the canvases
opened in its executions or workflow runs, and its agent's own actions on other canvases within its
time span; contextual retrieval adds 0.1 for them, sequential retrieval (and the API) lists them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.canvas.models import CanvasKind, ParticipantRole
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.memory import retrieval, service
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from atom.security.models import Role
from tests.conftest import MakeUser
from tests.memory.conftest import START
from tests.support.agents import make_agent

CHART = {"chart_type": "bar", "labels": ["May"], "series": [{"name": "sales", "values": [42]}]}
SHEET = {"columns": ["Region", "Sales"], "rows": [["North", 10]]}


async def _episode(db: Database, memory: Memory, events: list[Event]) -> str:
    async with db.session_scope() as s:
        [episode] = await service.record_events(session=s, memory=memory, events=events)
    return episode.id


async def test_canvas_actions_feed_episodes(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, db: Database, memory: Memory, make_user: MakeUser
) -> None:
    agent = await make_agent(db, settings)
    other = await make_agent(db, settings)
    person = await make_user(Role.ADMIN)
    async with db.session_scope() as s:  # opened by the agent in its execution exec-1 (long before its turn below)
        chart = await canvas_service.create(
            session=s, kind=CanvasKind.CHART, title="May sales", content=CHART, editor=Editor(agent_id=agent.id),
            execution_id="exec-1",
        )  # fmt: skip
        shared = await canvas_service.create(  # set up by a person, the agent a contributor
            session=s, kind=CanvasKind.SHEET, title="Regions", content=SHEET, editor=Editor(user_id=person.id),
            collaborators=[(agent.id, ParticipantRole.CONTRIBUTOR)],
        )  # fmt: skip
    now = utcnow()
    linked = await _episode(
        db, memory, [Event(agent.id, START, "message", "Show me May's sales", "execution", "exec-1",
                           completes_task=True)],
    )  # fmt: skip
    during = await _episode(
        db, memory, [
            Event(agent.id, now - timedelta(minutes=2), "message", "Fill in the regions sheet", "execution", "exec-2"),
            Event(agent.id, now + timedelta(minutes=2), "message", "Done.", "execution", "exec-2", "assistant",
                  completes_task=True),
        ],
    )  # fmt: skip
    unrelated = await _episode(
        db, memory, [Event(agent.id, START - timedelta(days=3), "message", "Renew the Initech contract",
                           "execution", "exec-0", completes_task=True)],
    )  # fmt: skip
    others = await _episode(
        db, memory, [Event(other.id, now - timedelta(minutes=2), "message", "Fill in the regions sheet",
                           "execution", "exec-9", completes_task=True)],
    )  # fmt: skip
    async with db.session_scope() as s:  # the agent's edit of the shared sheet, inside `during`
        await canvas_service.update(
            session=s, canvas_id=shared.id, editor=Editor(agent_id=agent.id), op="append",
            data={"rows": [["South", 7]]}, expected_version=None, keep_turn=False, title=None,
        )  # fmt: skip

    async with db.session_scope() as s:
        found = await memory.canvas_hook(s, [linked, during, unrelated, others])
    assert set(found) == {linked, during}
    assert [(a["canvas_id"], a["action"], a["actor"]) for a in found[linked]] == [
        (chart.id, "present", f"agent:{agent.id}")
    ]
    # The agent's chart belongs to exec-1's episode although it was presented during `during`'s span;
    # the person's setting up of the sheet is not the agent's action.
    assert [(a["canvas_id"], a["action"], a["kind"]) for a in found[during]] == [(shared.id, "update", "sheet")]

    async with db.session_scope() as s:
        recalled = await retrieval.contextual(
            session=s, memory=memory, agent_id=agent.id, query="sales regions sheet contract", limit=5, actor="u",
            reason="t",
        )  # fmt: skip
        whole = await retrieval.sequential(session=s, memory=memory, episode_id=linked, actor="u", reason="t")
    by_id = {r.episode.id: r for r in recalled}
    assert by_id[linked].why["canvas"] == 1.0 and by_id[during].why["canvas"] == 1.0
    assert by_id[unrelated].why["canvas"] == 0.0
    for r in recalled:
        plain = 0.3 * r.why["temporal"] + 0.7 * r.why["semantic"]
        assert r.score == pytest.approx(plain + 0.1 * r.why["canvas"])
    assert whole.why["canvas"] == 1.0 and [a["title"] for a in whole.canvas] == ["May sales"]

    app.state.memory = memory
    shown = (await client.get(f"/api/memory/episodes/{during}", headers=person.headers)).json()
    assert shown["context"]["canvas"] == 1.0
    assert [(a["canvas_id"], a["action"], a["outcome"]) for a in shown["canvas_actions"]] == [
        (shared.id, "update", "ok")
    ]
    plain = (await client.get(f"/api/memory/episodes/{unrelated}", headers=person.headers)).json()
    assert plain["context"]["canvas"] == 0.0 and plain["canvas_actions"] == []
