"""Audit: the filterable trail, a verify button with its result, each record linked to its subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response

from atom.audit import service as audit_service
from atom.audit.models import AuditEvent
from atom.deps import SessionDep
from atom.web.auth import PageRouter, ViewerForm, ViewerPage
from atom.web.links import subject_path
from atom.web.ui import render, web_ui

router = PageRouter()

Text = Annotated[str, Query(max_length=100)]
ACTOR_TYPES = ("", "user", "agent", "system")
FILTERS = ("actor_type", "actor_id", "action", "resource_type", "resource_id", "decision")


def _day(value: str, field: str, errors: dict[str, str], *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        errors[field] = "Use a date like 2026-12-01."
        return None
    return day + timedelta(days=1) if end else day


@router.get("/audit")
async def trail(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    actor_type: Text = "",
    actor_id: Text = "",
    action: Text = "",
    resource_type: Text = "",
    resource_id: Text = "",
    decision: Text = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    values = {
        "actor_type": actor_type.strip(),
        "actor_id": actor_id.strip(),
        "action": action.strip(),
        "resource_type": resource_type.strip(),
        "resource_id": resource_id.strip(),
        "decision": decision.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    errors: dict[str, str] = {}
    if values["actor_type"] not in ACTOR_TYPES:
        errors["actor_type"] = "Choose user, agent or system."
    start = _day(values["since"], "since", errors)
    end = _day(values["until"], "until", errors, end=True)
    if start and end and end <= start:
        errors["until"] = "The end comes before the start."
    events: list[AuditEvent] = []
    next_cursor = None
    if not errors:
        filters = audit_service.AuditFilter(**{name: values[name] or None for name in FILTERS}, since=start, until=end)
        events, next_cursor = await audit_service.list_events(session=session, filters=filters, limit=50, cursor=cursor)
    nav = web_ui(request).nav
    links = {e.id: subject_path(nav, e.resource_type, e.resource_id) for e in events}
    query = urlencode({k: v for k, v in values.items() if v})
    return render(
        request,
        "audit.html",
        {
            "title": "Audit",
            "events": events,
            "links": links,
            "values": values,
            "errors": errors,
            "actor_types": ACTOR_TYPES,
            "next_cursor": next_cursor,
            "query": query,
            "verification": None,
        },
        status_code=422 if errors else 200,
    )


@router.post("/audit/verify")
async def verify(request: Request, form_user: ViewerForm, session: SessionDep) -> Response:
    """Walk the whole hash chain and show the result (read-only: any signed-in user may)."""
    result = await audit_service.verify_chain(session=session)
    return render(
        request,
        "audit.html",
        {
            "title": "Audit",
            "events": [],
            "links": {},
            "values": dict.fromkeys((*FILTERS, "since", "until"), ""),
            "errors": {},
            "actor_types": ACTOR_TYPES,
            "next_cursor": None,
            "query": "",
            "verification": result,
        },
    )
