"""Rendering: the Jinja2 environment (autoescaped), security headers, redirects and error pages.

Every page response goes through `render` or `redirect`, so every page carries the same strict
Content-Security-Policy: scripts and styles only from our own `/static`, no inline script, no
inline style, no eval, no framing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from atom import __version__
from atom.security.models import Role

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; frame-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    role: Role = Role.VIEWER


@dataclass
class WebUI:
    """What the pages share, built once per app by `routes.install` (nothing at import time)."""

    env: Environment
    nav: tuple[NavItem, ...] = field(default_factory=tuple)


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_time
    env.filters["pretty_json"] = pretty_json
    env.filters["short"] = lambda value, n=12: str(value)[:n]
    env.globals["version"] = __version__
    return env


def format_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def web_ui(request: Request) -> WebUI:
    ui: WebUI = request.app.state.web
    return ui


def secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page. The template gets `request`, `user` (or None), `csrf_token`, `nav` and `flash`."""
    ui = web_ui(request)
    user = getattr(request.state, "web_user", None)
    values: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "nav": [item for item in ui.nav if user is not None and user.principal.has_role(item.role)],
        "path": request.url.path,
        "flash": FLASHES.get(request.query_params.get("flash", "")),
        "title": "",
    }
    values.update(context or {})
    html = ui.env.get_template(template).render(values)
    return secure_headers(HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def redirect(location: str, *, status_code: int = 303) -> Response:
    return secure_headers(RedirectResponse(location, status_code=status_code))


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after signing in; anything else (another host, `//x`) -> `/`."""
    if not target or len(target) > 2000:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_in_location(target: str) -> str:
    return "/signin?next=" + quote(safe_next(target), safe="")


def error_page(request: Request, status_code: int, heading: str, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": heading, "heading": heading, "message": message, "status_code": status_code},
        status_code=status_code,
    )


# Flash messages are looked up by key: a redirect's `?flash=` can never inject text into a page.
FLASHES: dict[str, str] = {
    "signed_out": "You are signed out.",
    "approved": "Approved. The plan ran as shown.",
    "approved_failed": "Approved, but the plan failed when it ran: see the result below.",
    "approved_training": "Approved: training is scheduled.",
    "rejected": "Rejected.",
    "agent_pause": "The agent is paused: it performs nothing until resumed.",
    "agent_resume": "The agent is active again.",
    "agent_stop": "The agent is stopped.",
    "agent_promoted": "The agent was promoted.",
    "user_created": "User created. Give them their password; they sign in at /signin.",
    "user_updated": "User updated.",
    "key_revoked": "The API key is revoked: it stops working at once.",
    "secret_saved": "Secret stored (encrypted). Its value is never shown.",
    "secret_deleted": "Secret deleted.",
    "batch_done": "Batch decision recorded: see each result below.",
    "workflow_saved": "Saved as a new version. Runs in progress keep the version they started with.",
    "run_started": "The run started.",
    "request_answered": "Answered. The agent goes on with your answer.",
    "outcome_recorded": "Thank you: recorded. It counts toward the fix suggested next time.",
    "layout_saved": "Layout saved: this page opens like this from now on.",
    "run_routed": "The run did not start here: see the proposals and the supervision queue.",
    "run_cancelled": "Cancel requested: steps not yet run are cancelled.",
    "run_retried": "Retrying from the failed step.",
    "step_approved": "Approved: the run continues.",
    "step_rejected": "Rejected: the run stops at this step.",
    "provider_added": "Provider added. The next message uses it.",
    "provider_removed": "Provider removed.",
    "budget_saved": "Budget saved.",
    "skill_trusted": "Trusted: agents may use this version of the skill.",
    "skill_banned": "Banned: no version of this skill runs again.",
    "skill_scanned": "Scanned again: the findings below are the new scan's.",
}


def install_templates(app: FastAPI, nav: tuple[NavItem, ...]) -> None:
    app.state.web = WebUI(env=build_environment(), nav=nav)
