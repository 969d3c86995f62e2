"""The dashboard cookie authenticates WebSockets, only from a page of this site (real server)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.security.sessions import SESSION_COOKIE
from atom.training import interceptor
from atom.training.plan import Plan, PlanStep
from tests.support.agents import make_agent
from tests.support.live_server import serving
from tests.web.conftest import MakeWebUser, WebUserInfo, sign_in


async def test_supervision_socket_takes_the_cookie_from_this_site_only(
    app: FastAPI, db: Database, settings: Settings, web_user: MakeWebUser
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    routed = await interceptor.intercept(
        db=db,
        settings=settings,
        agent_id=agent.id,
        trigger=interceptor.TriggerInfo(source="schedule"),
        plan=Plan(steps=[PlanStep(action="get_current_time", params={"timezone": "UTC"})]),
    )
    session_id = routed.supervision_session_id
    operator, viewer = await web_user(Role.OPERATOR), await web_user(Role.VIEWER)
    async with serving(app) as address:
        url = f"ws://{address}/ws/supervision/{session_id}"

        async def cookie_of(user: WebUserInfo) -> str:
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
                await sign_in(client, user)
                return str(client.cookies[SESSION_COOKIE])

        operator_cookie, viewer_cookie = await cookie_of(operator), await cookie_of(viewer)
        refused = [
            {"Cookie": f"{SESSION_COOKIE}={operator_cookie}", "Origin": "http://evil.example"},  # another site
            {"Cookie": f"{SESSION_COOKIE}={operator_cookie}"},  # no Origin at all
            {"Cookie": f"{SESSION_COOKIE}={viewer_cookie}", "Origin": f"http://{address}"},  # role too low
            {"Cookie": f"{SESSION_COOKIE}=forged", "Origin": f"http://{address}"},
        ]
        for headers in refused:
            with pytest.raises(websockets.exceptions.InvalidStatus):
                async with websockets.connect(url, additional_headers=headers):
                    pass
        headers = {"Cookie": f"{SESSION_COOKIE}={operator_cookie}", "Origin": f"http://{address}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert first["type"] == "snapshot"
