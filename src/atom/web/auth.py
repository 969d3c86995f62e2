"""Who is looking at a page, what they may do, and the checks every form goes through.

- `PageRouter()`: an APIRouter whose routes turn errors into pages: no/expired session -> redirect
  to sign-in keeping the target; CSRF failure or a role too low -> 403 page; an unknown object ->
  404 page; any other domain error -> its status with a readable page.
- `page_user(Role.X)`: dependency -> `WebUser` (signed in with at least that role).
- `form_user(Role.X)`: the same for a POST, after checking the form's (or header's) CSRF token;
  returns `(WebUser, Form)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from atom.config import CookieSecure, Settings
from atom.deps import SessionDep
from atom.errors import AtomError, Forbidden
from atom.observability.logging import get_logger
from atom.security import sessions as web_sessions
from atom.security.models import Role
from atom.security.principal import Principal
from atom.web.ui import error_page, redirect, sign_in_location

log = get_logger("atom.web")

LOGIN_CSRF_COOKIE = "atom_signin_csrf"
MAX_FORM_FIELDS = 500


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    session_id: str
    csrf_token: str

    @property
    def username(self) -> str:
        return self.principal.username

    @property
    def role(self) -> Role:
        return self.principal.role

    def can(self, role: Role | str) -> bool:
        return self.principal.has_role(Role(role))


class SignInRequired(Exception):
    def __init__(self, target: str) -> None:
        super().__init__("sign in required")
        self.target = target


class Form:
    """An urlencoded form body: `get` for one value, `getlist` for repeated fields."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


async def read_form(request: Request) -> Form:
    """Parse an `application/x-www-form-urlencoded` body (the body limit middleware bounds its size)."""
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise web_sessions.CsrfFailed("The form could not be read.", code="FORM_UNREADABLE") from exc
    return Form(pairs)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def cookie_secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    if settings.web_cookie_secure is CookieSecure.ALWAYS:
        return True
    if settings.web_cookie_secure is CookieSecure.NEVER:
        return False
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(
        web_sessions.SESSION_COOKIE,
        token,
        max_age=int(settings.web_session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        web_sessions.SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request)
    )


def login_csrf_token(request: Request) -> str:
    """The sign-in form's CSRF token (double submit: a cookie and a hidden field that must match)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if len(token) < 32 or len(token) > 128:
        token = secrets.token_urlsafe(32)
    return token


def set_login_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path="/signin", httponly=True, samesite="strict", secure=cookie_secure(request)
    )


async def optional_user(request: Request, session: SessionDep) -> WebUser | None:
    """The signed-in user, or None (no cookie, or an expired/revoked session)."""
    token = request.cookies.get(web_sessions.SESSION_COOKIE)
    if not token:
        return None
    try:
        active = await web_sessions.resolve(session=session, token=token, settings=request.app.state.settings)
    except web_sessions.SessionExpired:
        return None
    user = WebUser(principal=active.principal, session_id=active.session_id, csrf_token=active.csrf_token)
    request.state.web_user = user
    request.state.csrf_token = user.csrf_token
    return user


OptionalUserDep = Annotated[WebUser | None, Depends(optional_user)]


def _target(request: Request) -> str:
    if request.method in web_sessions.SAFE_METHODS:
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = request.headers.get("referer", "")
    base = str(request.base_url)
    return referer[len(base) - 1 :] if referer.startswith(base) else "/"


def _role_check(user: WebUser, minimum: Role) -> None:
    if not user.can(minimum):
        raise Forbidden(
            f"This needs the {minimum.value} role or higher; you are {user.role.value}.",
            code="ROLE_REQUIRED",
            details={"required_role": minimum.value, "role": user.role.value},
        )


def page_user(minimum: Role = Role.VIEWER) -> Callable[..., Coroutine[Any, Any, WebUser]]:
    async def check(request: Request, user: OptionalUserDep) -> WebUser:
        if user is None:
            raise SignInRequired(_target(request))
        _role_check(user, minimum)
        return user

    return check


def form_user(minimum: Role = Role.VIEWER) -> Callable[..., Coroutine[Any, Any, tuple[WebUser, Form]]]:
    """For POST routes: signed in (else redirect), CSRF token valid (else 403), role high enough (else 403)."""

    async def check(request: Request, user: OptionalUserDep) -> tuple[WebUser, Form]:
        if user is None:
            raise SignInRequired(_target(request))
        form = await read_form(request)
        presented = form.get("csrf_token") or request.headers.get(web_sessions.CSRF_HEADER)
        if not web_sessions.tokens_match(presented, user.csrf_token):
            raise web_sessions.CsrfFailed("The form's security token is missing or wrong.", code="CSRF_FAILED")
        _role_check(user, minimum)
        return user, form

    return check


ViewerPage = Annotated[WebUser, Depends(page_user(Role.VIEWER))]
OperatorPage = Annotated[WebUser, Depends(page_user(Role.OPERATOR))]
ApproverPage = Annotated[WebUser, Depends(page_user(Role.APPROVER))]
AdminPage = Annotated[WebUser, Depends(page_user(Role.ADMIN))]
ViewerForm = Annotated[tuple[WebUser, Form], Depends(form_user(Role.VIEWER))]
OperatorForm = Annotated[tuple[WebUser, Form], Depends(form_user(Role.OPERATOR))]
ApproverForm = Annotated[tuple[WebUser, Form], Depends(form_user(Role.APPROVER))]
AdminForm = Annotated[tuple[WebUser, Form], Depends(form_user(Role.ADMIN))]

_HEADINGS = {
    400: "Bad request",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    409: "Already decided",
    413: "Too large",
    422: "Invalid input",
    503: "Unavailable",
}


class PageRoute(APIRoute):
    """Errors on a page become pages (or a redirect to sign-in), never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return redirect(sign_in_location(exc.target))
            except web_sessions.CsrfFailed as exc:
                return error_page(request, 403, "Not allowed", f"{exc.message} Reload the page and try again.")
            except AtomError as exc:
                status = exc.status_code if 400 <= exc.status_code < 600 else 500
                if status >= 500:
                    log.error("page failed", code=exc.code, error=exc.message)
                    return error_page(request, status, "Something went wrong", "The server could not do that.")
                if status == 404:
                    return error_page(request, 404, "Not found", "There is nothing here, or you may not see it.")
                return error_page(request, status, _HEADINGS.get(status, "Error"), exc.message)
            except RequestValidationError:
                return error_page(request, 404, "Not found", "There is nothing here, or you may not see it.")
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, _HEADINGS.get(exc.status_code, "Error"), str(exc.detail))

        return page_handler


def PageRouter() -> APIRouter:
    """The router every page module uses (not in the OpenAPI document: pages are not the API)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)
