"""The dashboard's pages, mounted by `create_app` outside `/api` (docs/dashboard.md: how to add a page).

A page module has `router = PageRouter()`; add it to PAGE_ROUTERS, and its nav entry (if any) to NAV.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from atom.security.models import Role
from atom.web.pages import (
    admin,
    agents,
    audit,
    canvases,
    chat,
    guidance,
    home,
    llm,
    proposals,
    signin,
    skills,
    supervision,
    workflow_runs,
    workflows,
)
from atom.web.ui import STATIC_DIR, NavItem, install_templates

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    home.router,
    proposals.router,
    agents.router,
    audit.router,
    admin.router,
    chat.router,
    canvases.router,
    supervision.router,
    workflows.router,
    workflow_runs.router,
    llm.router,
    skills.router,
    guidance.router,
)

NAV: tuple[NavItem, ...] = (
    NavItem("Home", "/", Role.VIEWER),
    NavItem("Proposals", "/proposals", Role.VIEWER),
    NavItem("Requests", "/requests", Role.VIEWER),
    NavItem("Chat", "/chat", Role.VIEWER),
    NavItem("Canvases", "/canvases", Role.VIEWER),
    NavItem("Supervision", "/supervision", Role.VIEWER),
    NavItem("Workflows", "/workflows", Role.VIEWER),
    NavItem("Agents", "/agents", Role.VIEWER),
    NavItem("Audit", "/audit", Role.VIEWER),
    NavItem("LLM", "/llm", Role.VIEWER),
    NavItem("Skills", "/skills", Role.VIEWER),
    NavItem("Admin", "/admin", Role.ADMIN),
)


class _Static(StaticFiles):
    """Our own CSS, JS and icons, with nosniff (no CSP needed: nothing here renders as a page)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", b"no-cache"))
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)  # type: ignore[arg-type]


async def service_worker() -> Response:
    """The service worker lives at the root so that its scope is the whole dashboard."""
    response = FileResponse(STATIC_DIR / "js" / "sw.js", media_type="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install(app: FastAPI) -> None:
    """Templates on `app.state.web`, the pages, and `/static`."""
    install_templates(app, NAV)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.add_api_route("/sw.js", service_worker, methods=["GET"], include_in_schema=False)
    app.mount("/static", _Static(directory=STATIC_DIR), name="static")
