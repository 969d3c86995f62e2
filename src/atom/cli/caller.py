"""Who runs a CLI command that a person must answer for (approving, promoting).

Like the API, the caller is the holder of an API key: `ATOM_API_KEY` (the key `atom-os init`
printed, or one from `atom-os keys create`), checked against the database. `--by USERNAME`
names someone else explicitly (the CLI works on the local database, so it trusts its user).
"""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import AsyncSession

from atom.errors import Forbidden
from atom.security import service as security
from atom.security.models import Role

KEY_ENV = "ATOM_API_KEY"


async def caller_id(*, session: AsyncSession, by: str | None, minimum: Role, doing: str) -> str:
    """The user id of the person doing this: `--by`, else the owner of ATOM_API_KEY; they need `minimum`."""
    if by is not None:
        user = await security.get_user_by_name(session=session, username=by)
        name, role, active = user.username, Role(user.role), user.is_active
        user_id = user.id
    else:
        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise Forbidden(
                f"{doing} needs a person with the {minimum.value} role: set {KEY_ENV} to their API key "
                "(`atom-os init` printed the admin's) or pass --by USERNAME.",
                code="CALLER_REQUIRED",
            )
        principal = await security.authenticate_key(session=session, plaintext=key)
        name, role, active, user_id = principal.username, principal.role, True, principal.user_id
    if not active or not role.at_least(minimum):
        raise Forbidden(
            f"{name} is {role.value}; {doing} needs an active {minimum.value} or higher.", code="ROLE_REQUIRED"
        )
    return user_id
