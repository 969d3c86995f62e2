"""Canvas pages on both databases: the list and the page render for a viewer, the live view streams the
canvas again after each edit (real server), and a chat's canvases are as private as the chat."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.canvas import flows as canvas_flows
from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.canvas.models import CanvasKind
from atom.chat import service as chat_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.support.agents import make_agent
from tests.support.live_server import serving
from tests.web.conftest import MakeWebUser, sign_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"web_live_recheck_s": 600.0}  # only a bus event can bring the next update


async def _updates(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == "update":
            yield json.loads(line[len("data: ") :])


async def test_the_canvas_page_is_live(app: FastAPI, db: Database, settings: Settings, web_user: MakeWebUser) -> None:
    viewer = await web_user(Role.VIEWER)
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="reporter")
    async with db.session_scope() as s:
        canvas = await canvas_service.create(
            session=s, kind=CanvasKind.TERMINAL, title="<b>Build</b> log", content={"lines": ["start"]},
            editor=Editor(agent_id=agent.id),
        )  # fmt: skip
    async with serving(app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        await sign_in(client, viewer)
        listing = await client.get("/canvases")
        assert listing.status_code == 200 and "&lt;b&gt;Build&lt;/b&gt; log" in listing.text
        page = await client.get(f"/canvases/{canvas.id}")
        assert page.status_code == 200 and f'data-canvas-live="/live/canvases/{canvas.id}"' in page.text
        assert (await client.get("/canvases/0190a0a0-0000-7000-8000-000000000000")).status_code == 404
        async with client.stream("GET", f"/live/canvases/{canvas.id}") as response:
            updates = _updates(response)
            first = (await asyncio.wait_for(anext(updates), timeout=20))["canvases"][0]
            assert first["version"] == 1 and first["content"]["lines"] == ["start"] and first["owner"] == "reporter"
            async with db.session_scope() as s:
                await canvas_service.update(
                    session=s, canvas_id=canvas.id, editor=Editor(agent_id=agent.id), op="append",
                    data={"lines": ["step 1"]}, expected_version=None,
                )  # fmt: skip
            second = (await asyncio.wait_for(anext(updates), timeout=20))["canvases"][0]
            assert second["version"] == 2 and second["content"]["lines"] == ["start", "step 1"]
            assert second["history"][0] | {"at": ""} == {
                "action": "update", "by": "reporter", "version": 2, "outcome": "ok", "at": "",
            }  # fmt: skip


async def test_chat_canvases_follow_the_chat(
    app: FastAPI, db: Database, settings: Settings, web_user: MakeWebUser
) -> None:
    owner, other = await web_user(Role.OPERATOR), await web_user(Role.OPERATOR)
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED, name="helper")
    async with db.session_scope() as s:
        chat = await chat_service.create_session(session=s, agent_ref=agent.id, user_id=owner.id)
        canvas = await canvas_service.create(
            session=s, kind=CanvasKind.MARKDOWN, title="Notes", content={"text": "# hi"},
            editor=Editor(agent_id=agent.id), session_id=chat.id,
        )  # fmt: skip
    async with serving(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
            await sign_in(client, owner)
            page = await client.get(f"/chat/{chat.id}")
            assert f'data-canvas-live="/live/chat/{chat.id}/canvases"' in page.text
            async with client.stream("GET", f"/live/chat/{chat.id}/canvases") as response:
                first = await asyncio.wait_for(anext(_updates(response)), timeout=20)
                assert [c["id"] for c in first["canvases"]] == [canvas.id]
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
            await sign_in(client, other)
            assert (await client.get(f"/live/chat/{chat.id}/canvases")).status_code == 404
            assert (await client.get(f"/canvases/{canvas.id}")).status_code == 404
            assert "Notes" not in (await client.get("/canvases")).text


async def test_a_person_is_shown_by_name(app: FastAPI, db: Database, settings: Settings, web_user: MakeWebUser) -> None:
    """The form's submitter and a person's edit of a chart are shown by username, not by user id."""
    person = await web_user(Role.OPERATOR, username="maria.lopez")
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED, name="analyst")
    async with db.session_scope() as s:
        form = await canvas_service.create(
            session=s, kind=CanvasKind.FORM, title="Approve?", editor=Editor(agent_id=agent.id),
            content={"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
        )  # fmt: skip
        chart = await canvas_service.create(
            session=s, kind=CanvasKind.CHART, title="Sales", editor=Editor(agent_id=agent.id),
            content={"chart_type": "bar", "labels": ["May"], "series": [{"name": "s", "values": [1]}]},
        )  # fmt: skip
        await canvas_service.update(
            session=s, canvas_id=chart.id, editor=Editor(user_id=person.id), op="merge",
            data={"labels": ["June"]}, expected_version=1,
        )  # fmt: skip
    await canvas_flows.submit_form(
        db=db, settings=settings, canvas_id=form.id, values={"ok": True}, submitter=Editor(user_id=person.id)
    )
    async with serving(app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        await sign_in(client, person)
        views = []
        for canvas_id in (form.id, chart.id):
            async with client.stream("GET", f"/live/canvases/{canvas_id}") as response:
                views.append((await asyncio.wait_for(anext(_updates(response)), timeout=20))["canvases"][0])
    shown_form, shown_chart = views
    assert shown_form["status"] == "submitted" and shown_form["submitted_by"] == "maria.lopez (person)"
    assert shown_form["history"][0]["by"] == "maria.lopez (person)"
    assert shown_chart["history"][0] | {"at": ""} == {
        "action": "update", "by": "maria.lopez (person)", "version": 2, "outcome": "ok", "at": "",
    }  # fmt: skip
    assert person.id not in json.dumps(views)
