"""Sign in (username + password) and sign out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from atom.deps import DatabaseDep
from atom.security import sessions as web_sessions
from atom.web.auth import (
    LOGIN_CSRF_COOKIE,
    OptionalUserDep,
    PageRouter,
    ViewerForm,
    clear_session_cookie,
    client_address,
    login_csrf_token,
    read_form,
    set_login_csrf_cookie,
    set_session_cookie,
)
from atom.web.ui import error_page, redirect, render, safe_next

router = PageRouter()


def _form_page(
    request: Request,
    *,
    next_path: str,
    username: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    token = login_csrf_token(request)
    response = render(
        request,
        "signin.html",
        {"title": "Sign in", "next": next_path, "username": username, "errors": errors or {}, "csrf_token": token},
        status_code=status_code,
    )
    set_login_csrf_cookie(request, response, token)
    return response


@router.get("/signin")
async def sign_in_page(request: Request, user: OptionalUserDep, next: str = "/") -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return _form_page(request, next_path=safe_next(next))


@router.post("/signin")
async def sign_in(request: Request, db: DatabaseDep) -> Response:
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie_token or not web_sessions.tokens_match(form.get("csrf_token"), cookie_token):
        return error_page(request, 403, "Not allowed", "The sign-in form expired. Reload the page and try again.")
    username, password = form.get("username").strip(), form.get("password")
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Enter your username."
    elif len(username) > web_sessions.MAX_USERNAME:
        errors["username"] = f"A username has at most {web_sessions.MAX_USERNAME} characters."
    if not password:
        errors["password"] = "Enter your password."  # noqa: S105 - a message, not a password
    if errors:
        return _form_page(request, next_path=next_path, username=username[:200], errors=errors, status_code=422)
    settings = request.app.state.settings
    address = client_address(request)
    try:
        async with db.session_scope() as session:
            signed_in = await web_sessions.sign_in(
                session=session,
                username=username,
                password=password,
                address=address,
                user_agent=request.headers.get("user-agent", ""),
                settings=settings,
            )
    except web_sessions.SignInRefused as exc:
        async with db.session_scope() as session:
            await web_sessions.record_failure(
                session=session, username=username, address=address, reason=exc.code, settings=settings
            )
        return _form_page(
            request, next_path=next_path, username=username, errors={"form": exc.message}, status_code=401
        )
    response = redirect(next_path)
    set_session_cookie(request, response, signed_in.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def sign_out(request: Request, form_user: ViewerForm, db: DatabaseDep) -> Response:
    user, _ = form_user
    async with db.session_scope() as session:
        await web_sessions.sign_out(session=session, session_id=user.session_id)
    response = redirect("/signin?flash=signed_out")
    clear_session_cookie(request, response)
    return response
