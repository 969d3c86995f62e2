"""Admin (admins only): users and roles, API keys (a new key shown once), secrets (names only; values
are write-only: they go in and are never shown, not even to an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.deps import DatabaseDep, SessionDep
from atom.errors import AtomError
from atom.security import secrets_store
from atom.security import service as security_service
from atom.security.models import Role
from atom.security.schemas import ApiKeyCreate, UserCreate, UserUpdate
from atom.security.secrets_routes import MAX_SECRET_BYTES, get_cipher
from atom.web.auth import AdminForm, AdminPage, PageRouter, WebUser
from atom.web.forms import validate
from atom.web.ui import redirect, render

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
ROLES = [role.value for role in Role]
VIA = {"via": "dashboard"}


async def _record(session: AsyncSession, user: WebUser, action: str, kind: str, subject: str, **details: Any) -> None:
    await audit.record(
        session=session,
        actor=audit.Actor.user(user.principal.user_id),
        action=action,
        resource_type=kind,
        resource_id=subject[:64],
        decision="done",
        details={**VIA, **details},
    )


@router.get("/admin")
async def admin_home(user: AdminPage) -> Response:
    return redirect("/admin/users")


# --- users --------------------------------------------------------------------------------------


async def _users_page(
    request: Request,
    session: AsyncSession,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    rows, _ = await security_service.list_users(session=session, limit=500, cursor=None)
    return render(
        request,
        "admin_users.html",
        {
            "title": "Users",
            "rows": rows,
            "roles": ROLES,
            "errors": errors or {},
            "values": values or {},
            "tab": "users",
        },
        status_code=422 if errors else 200,
    )


@router.get("/admin/users")
async def users(request: Request, user: AdminPage, session: SessionDep) -> Response:
    return await _users_page(request, session)


@router.post("/admin/users")
async def create_user(request: Request, form_user: AdminForm, db: DatabaseDep) -> Response:
    user, form = form_user
    values = {"username": form.get("username").strip(), "role": form.get("role"), "email": form.get("email").strip()}
    data: dict[str, Any] = {**values, "email": values["email"] or None, "password": form.get("password") or None}
    user_in, errors = validate(UserCreate, data)
    if user_in is not None:
        try:
            async with db.session_scope() as session:
                created = await security_service.create_user(session=session, user_in=user_in)
                await _record(
                    session, user, "user.create", "user", created.id, username=created.username, role=created.role
                )
            return redirect(f"/admin/users?flash=user_created#user-{created.id}")
        except AtomError as exc:
            errors = {"username": exc.message}
    async with db.session_scope() as session:
        return await _users_page(request, session, errors=errors, values=values)


@router.post("/admin/users/{user_id}")
async def update_user(request: Request, user_id: IdPath, form_user: AdminForm, db: DatabaseDep) -> Response:
    """Change a role, or (de)activate: a deactivated user's keys and dashboard sessions stop working."""
    user, form = form_user
    role, active = form.get("role"), form.get("active")
    update, errors = validate(
        UserUpdate, {"role": role or None, "is_active": {"yes": True, "no": False}.get(active)}, prefix=f"{user_id}."
    )
    if (
        update is not None
        and user_id == user.principal.user_id
        and (update.is_active is False or (update.role is not None and update.role is not Role.ADMIN))
    ):
        update, errors = None, {f"{user_id}.role": "You cannot demote or deactivate yourself."}
    if update is not None:
        async with db.session_scope() as session:
            changed = await security_service.update_user(session=session, user_id=user_id, user_in=update)
            await _record(
                session, user, "user.update", "user", changed.id, **update.model_dump(exclude_none=True, mode="json")
            )
        return redirect(f"/admin/users?flash=user_updated#user-{user_id}")
    async with db.session_scope() as session:
        return await _users_page(request, session, errors=errors)


# --- API keys -----------------------------------------------------------------------------------


async def _keys_page(
    request: Request,
    session: AsyncSession,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    created: dict[str, str] | None = None,
) -> Response:
    keys, _ = await security_service.list_keys(session=session, user_id=None, limit=500, cursor=None)
    people, _ = await security_service.list_users(session=session, limit=500, cursor=None)
    return render(
        request,
        "admin_keys.html",
        {
            "title": "API keys",
            "keys": keys,
            "people": people,
            "names": {p.id: p.username for p in people},
            "errors": errors or {},
            "values": values or {},
            "created": created,
            "tab": "keys",
        },
        status_code=422 if errors else 200,
    )


@router.get("/admin/keys")
async def keys(request: Request, user: AdminPage, session: SessionDep) -> Response:
    return await _keys_page(request, session)


@router.post("/admin/keys")
async def create_key(request: Request, form_user: AdminForm, db: DatabaseDep) -> Response:
    """The new key is in this one response (never stored, never redirected to, not cached)."""
    user, form = form_user
    values = {"name": form.get("name").strip(), "user_id": form.get("user_id")}
    key_in, errors = validate(ApiKeyCreate, values)
    if key_in is not None:
        try:
            async with db.session_scope() as session:
                key, plaintext = await security_service.create_key(
                    session=session, user_id=key_in.user_id or user.principal.user_id, name=key_in.name
                )
                await _record(session, user, "api_key.create", "api_key", key.id, owner=key.user_id, name=key.name)
            async with db.session_scope() as session:
                return await _keys_page(request, session, created={"id": key.id, "name": key.name, "key": plaintext})
        except AtomError as exc:
            errors = {"user_id": exc.message}
    async with db.session_scope() as session:
        return await _keys_page(request, session, errors=errors, values=values)


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: IdPath, form_user: AdminForm, db: DatabaseDep) -> Response:
    user, _ = form_user
    async with db.session_scope() as session:
        key = await security_service.revoke_key(session=session, key_id=key_id)
        await _record(session, user, "api_key.revoke", "api_key", key.id)
    return redirect(f"/admin/keys?flash=key_revoked#key-{key_id}")


# --- secrets ------------------------------------------------------------------------------------


async def _secrets_page(
    request: Request,
    session: AsyncSession,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    rows, _ = await secrets_store.list_secrets(session=session, limit=500, cursor=None)
    return render(
        request,
        "admin_secrets.html",
        {"title": "Secrets", "rows": rows, "errors": errors or {}, "values": values or {}, "tab": "secrets"},
        status_code=422 if errors else 200,
    )


@router.get("/admin/secrets")
async def secrets(request: Request, user: AdminPage, session: SessionDep) -> Response:
    return await _secrets_page(request, session)


@router.post("/admin/secrets")
async def set_secret(request: Request, form_user: AdminForm, db: DatabaseDep) -> Response:
    """Store a new secret, or a new version of an existing one. The value is never echoed back."""
    user, form = form_user
    name, value = form.get("name").strip(), form.get("value")
    errors: dict[str, str] = {}
    if not secrets_store.NAME_PATTERN.match(name):
        errors["name"] = "1-200 characters of letters, digits and _.:/-"
    if not value:
        errors["value"] = "Enter the value (it is stored encrypted and never shown)."
    elif len(value.encode()) > MAX_SECRET_BYTES:
        errors["value"] = f"At most {MAX_SECRET_BYTES} bytes."
    if not errors:
        cipher = get_cipher(request)
        async with db.session_scope() as session:
            existing = {s.name for s in (await secrets_store.list_secrets(session=session, limit=500, cursor=None))[0]}
            actor = audit.Actor.user(user.principal.user_id)  # the store writes the audit record
            if name in existing:
                await secrets_store.rotate(session=session, cipher=cipher, name=name, value=value, actor=actor)
            else:
                await secrets_store.create(session=session, cipher=cipher, name=name, value=value, actor=actor)
        return redirect("/admin/secrets?flash=secret_saved")
    async with db.session_scope() as session:
        return await _secrets_page(request, session, errors=errors, values={"name": name[:200]})


@router.post("/admin/secrets/delete")
async def delete_secret(request: Request, form_user: AdminForm, db: DatabaseDep) -> Response:
    user, form = form_user
    name = form.get("name").strip()
    async with db.session_scope() as session:
        await secrets_store.delete(session=session, name=name, actor=audit.Actor.user(user.principal.user_id))
    return redirect("/admin/secrets?flash=secret_deleted")
