"""Custom canvas components: HTML/CSS (and JavaScript) made by people, versioned, with rollback and usage
counts, rendered only inside a sandboxed frame.

- HTML is sanitized with nh3 (the Ammonia sanitizer): no script, style, iframe, form, meta or event
  attributes survive; `javascript:` links are dropped. CSS that could load or run something
  (`@import`, `url(`, `expression(`, `javascript:`, escapes, `</`) is refused.
- A version with JavaScript is `pending_approval` until a person with the approver role, other than its
  author, signs it off; then an AUTONOMOUS agent may run it (`canvas_execute_javascript`, complexity 4).
  HTML/CSS versions are usable at once, by SUPERVISED+ agents (`present_component`, complexity 3).
- The frame document (`frame_document`) carries its own CSP: `sandbox allow-scripts` (an opaque origin
  even when opened directly: no cookies, no storage, no parent DOM), `connect-src 'none'` (no network, no
  /api), scripts and styles only by the hash of the approved text, `frame-ancestors 'self'`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import nh3
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.canvas.models import CanvasComponent, CanvasComponentVersion, ComponentVersionStatus
from atom.db.base import utcnow
from atom.errors import Conflict, Forbidden, InvalidInput, NotFound
from atom.pagination import paginate

MAX_HTML = 100_000
MAX_CSS = 50_000
MAX_JS = 100_000
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"
EXTRA_TAGS = {"button", "input", "label", "select", "option", "textarea", "progress", "meter", "canvas"}
ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir", "role", "aria-label", "aria-hidden"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "input": {"type", "value", "name", "placeholder", "min", "max", "step", "disabled", "checked"},
    "button": {"type", "disabled", "name", "value"},
    "label": {"for"},
    "option": {"value", "selected"},
    "select": {"name", "disabled"},
    "textarea": {"name", "rows", "cols", "placeholder"},
    "progress": {"value", "max"},
    "meter": {"value", "min", "max"},
    "canvas": {"width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
_CSS_REFUSED = re.compile(
    r"@import|url\s*\(|expression\s*\(|javascript:|behavior\s*:|-moz-binding|</|\\", re.IGNORECASE
)


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(nh3.ALLOWED_TAGS) | EXTRA_TAGS,
        attributes=ATTRIBUTES,
        generic_attribute_prefixes={"data-"},
        url_schemes={"https", "mailto"},
    )


def check_css(css: str) -> str:
    found = _CSS_REFUSED.search(css)
    if found:
        raise InvalidInput(
            f"The CSS uses {found.group(0)!r}, which components may not (nothing may be loaded or run from CSS).",
            code="INVALID_COMPONENT_CSS",
            details={"field": "css"},
        )
    return css


def check_js(js: str) -> str:
    if re.search(r"</script", js, re.IGNORECASE):
        raise InvalidInput(
            "The JavaScript may not contain '</script'.", code="INVALID_COMPONENT_JS", details={"field": "js"}
        )
    return js


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def frame_policy(css: str, js: str | None) -> str:
    scripts = _digest(js) if js else "'none'"
    styles = _digest(css) if css else "'none'"
    return (
        f"sandbox allow-scripts; default-src 'none'; script-src {scripts}; style-src {styles}; img-src data:; "
        "font-src 'none'; connect-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; "
        "child-src 'none'; worker-src 'none'; manifest-src 'none'; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'self'"
    )


def frame_document(version: CanvasComponentVersion, props: dict[str, Any]) -> tuple[str, str]:
    """The frame's HTML and its Content-Security-Policy. Props are JSON inside a data block, escaped so no
    value can close the element; the component's script reads them with JSON.parse."""
    data = json.dumps(props, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    style = f"<style>{version.css}</style>" if version.css else ""
    script = f"<script>{version.js}</script>" if version.js else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Custom component</title>'
        f"{style}</head><body>{version.html}"
        f'<script type="application/json" id="atom-props">{data}</script>{script}</body></html>'
    )
    return html, frame_policy(version.css, version.js)


async def get_component(*, session: AsyncSession, ref: str) -> CanvasComponent:
    row = await session.get(CanvasComponent, ref)
    if row is None:
        row = (await session.scalars(select(CanvasComponent).where(CanvasComponent.name == ref))).first()
    if row is None:
        raise NotFound(f"There is no component {ref!r}.", code="COMPONENT_NOT_FOUND", details={"field": "component"})
    return row


async def get_version(*, session: AsyncSession, component_id: str, version: int) -> CanvasComponentVersion:
    row = (
        await session.scalars(
            select(CanvasComponentVersion).where(
                CanvasComponentVersion.component_id == component_id, CanvasComponentVersion.version == version
            )
        )
    ).first()
    if row is None:
        raise NotFound(
            f"The component has no version {version}.", code="COMPONENT_VERSION_NOT_FOUND", details={"field": "version"}
        )
    return row


async def versions(*, session: AsyncSession, component_id: str) -> list[CanvasComponentVersion]:
    rows = await session.scalars(
        select(CanvasComponentVersion)
        .where(CanvasComponentVersion.component_id == component_id)
        .order_by(CanvasComponentVersion.version)
    )
    return list(rows.all())


def _new_version(
    component: CanvasComponent, number: int, html: str, css: str, js: str | None, user_id: str
) -> CanvasComponentVersion:
    clean = sanitize_html(html)
    return CanvasComponentVersion(
        component_id=component.id,
        version=number,
        html=clean,
        css=check_css(css),
        js=check_js(js) if js else None,
        status=(ComponentVersionStatus.PENDING_APPROVAL if js else ComponentVersionStatus.ACTIVE).value,
        sanitized_changes=clean != html,
        created_by=user_id,
        created_at=utcnow(),
    )


async def create(
    *, session: AsyncSession, name: str, description: str, html: str, css: str, js: str | None, user_id: str
) -> CanvasComponent:
    existing = (await session.scalars(select(CanvasComponent).where(CanvasComponent.name == name))).first()
    if existing is not None:
        raise Conflict(f"A component named {name!r} exists.", code="COMPONENT_EXISTS", details={"field": "name"})
    now = utcnow()
    component = CanvasComponent(
        name=name,
        description=description,
        current_version=1,
        usage_count=0,
        created_by=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(component)
    await session.flush()
    session.add(_new_version(component, 1, html, css, js, user_id))
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(user_id),
        action="canvas.component.create",
        resource_type="canvas_component",
        resource_id=component.id,
        details={"name": name, "javascript": js is not None},
    )
    return component


async def add_version(
    *, session: AsyncSession, ref: str, html: str, css: str, js: str | None, user_id: str
) -> CanvasComponentVersion:
    """A new version; HTML/CSS become current at once, JavaScript when approved."""
    component = await get_component(session=session, ref=ref)
    latest = max((v.version for v in await versions(session=session, component_id=component.id)), default=0)
    row = _new_version(component, latest + 1, html, css, js, user_id)
    session.add(row)
    if row.status == ComponentVersionStatus.ACTIVE.value:
        component.current_version = row.version
    component.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(user_id),
        action="canvas.component.version",
        resource_type="canvas_component",
        resource_id=component.id,
        details={"version": row.version, "javascript": js is not None},
    )
    return row


async def approve(
    *, session: AsyncSession, ref: str, version: int, approver_id: str, approve: bool, reason: str
) -> CanvasComponentVersion:
    component = await get_component(session=session, ref=ref)
    row = await get_version(session=session, component_id=component.id, version=version)
    if row.status != ComponentVersionStatus.PENDING_APPROVAL.value:
        raise Conflict(f"Version {version} is {row.status}, not waiting for approval.", code="COMPONENT_NOT_PENDING")
    if row.created_by == approver_id:
        raise Forbidden("The author of a JavaScript version cannot approve it.", code="COMPONENT_SELF_APPROVAL")
    row.status = (ComponentVersionStatus.ACTIVE if approve else ComponentVersionStatus.REJECTED).value
    row.approved_by = approver_id
    row.approved_at = utcnow()
    if approve:
        component.current_version = row.version
    component.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(approver_id),
        action="canvas.component.approve",
        resource_type="canvas_component",
        resource_id=component.id,
        decision="approved" if approve else "rejected",
        reason=reason or None,
        details={"version": version},
    )
    return row


async def rollback(*, session: AsyncSession, ref: str, version: int, user_id: str) -> CanvasComponent:
    component = await get_component(session=session, ref=ref)
    row = await get_version(session=session, component_id=component.id, version=version)
    if row.status != ComponentVersionStatus.ACTIVE.value:
        raise Conflict(
            f"Version {version} is {row.status}: only a usable version can be current.", code="COMPONENT_NOT_ACTIVE"
        )
    previous = component.current_version
    component.current_version = version
    component.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(user_id),
        action="canvas.component.rollback",
        resource_type="canvas_component",
        resource_id=component.id,
        details={"from": previous, "to": version},
    )
    return component


async def usable_version(
    *, session: AsyncSession, name: str, version: int | None, javascript: bool
) -> CanvasComponentVersion:
    """The version an agent may present (and one more use counted), or why not."""
    component = await get_component(session=session, ref=name)
    row = await get_version(session=session, component_id=component.id, version=version or component.current_version)
    if row.status != ComponentVersionStatus.ACTIVE.value:
        raise Forbidden(
            f"Version {row.version} of {name!r} is {row.status.replace('_', ' ')}: an approver must sign it off first.",
            code="COMPONENT_NOT_APPROVED",
            details={"field": "version"},
        )
    if row.js and not javascript:
        raise InvalidInput(
            f"{name!r} runs JavaScript: present it with canvas_execute_javascript (AUTONOMOUS agents).",
            code="COMPONENT_HAS_JAVASCRIPT",
            details={"field": "component"},
        )
    if not row.js and javascript:
        raise InvalidInput(
            f"{name!r} has no JavaScript: present it with present_component.",
            code="COMPONENT_WITHOUT_JAVASCRIPT",
            details={"field": "component"},
        )
    row.usage_count += 1
    component.usage_count += 1
    await session.flush()
    return row


async def list_components(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[CanvasComponent], str | None]:
    return await paginate(session, select(CanvasComponent), id_column=CanvasComponent.id, limit=limit, cursor=cursor)


async def version_by_id(*, session: AsyncSession, version_id: str) -> CanvasComponentVersion:
    row = await session.get(CanvasComponentVersion, version_id)
    if row is None:
        raise NotFound("The component version is gone.", code="COMPONENT_VERSION_NOT_FOUND")
    return row
