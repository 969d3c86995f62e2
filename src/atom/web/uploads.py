"""File upload forms (`multipart/form-data`): signed in, CSRF token checked, role high enough — like
`auth.form_user`, which reads urlencoded forms only. The body is already bounded by ATOM_MAX_BODY_BYTES;
here at most one file and a few fields are accepted."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from atom.errors import Forbidden
from atom.security import sessions as web_sessions
from atom.security.models import Role
from atom.web.auth import OptionalUserDep, SignInRequired, WebUser

MAX_FIELDS = 8
MAX_FIELD_BYTES = 4096


@dataclass
class Upload:
    fields: dict[str, str]
    file: UploadFile | None


def upload_user(minimum: Role) -> Callable[..., Coroutine[Any, Any, tuple[WebUser, Upload]]]:
    async def check(request: Request, user: OptionalUserDep) -> tuple[WebUser, Upload]:
        if user is None:
            raise SignInRequired("/")
        if request.headers.get("content-type", "").split(";")[0].strip() != "multipart/form-data":
            raise web_sessions.CsrfFailed("The upload form could not be read.", code="FORM_UNREADABLE")
        form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        presented = fields.get("csrf_token") or request.headers.get(web_sessions.CSRF_HEADER)
        if not web_sessions.tokens_match(presented, user.csrf_token):
            raise web_sessions.CsrfFailed("The form's security token is missing or wrong.", code="CSRF_FAILED")
        if not user.can(minimum):
            raise Forbidden(
                f"This needs the {minimum.value} role or higher; you are {user.role.value}.",
                code="ROLE_REQUIRED",
                details={"required_role": minimum.value, "role": user.role.value},
            )
        return user, Upload(fields=fields, file=files[0] if files else None)

    return check


OperatorUpload = Annotated[tuple[WebUser, Upload], Depends(upload_user(Role.OPERATOR))]
