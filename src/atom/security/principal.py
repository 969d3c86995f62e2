"""Who is calling: the identity every route, audit record and governance decision refers to."""

from __future__ import annotations

from dataclasses import dataclass

from atom.security.models import Role


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: Role
    key_id: str | None = None
    needs_touch: bool = False  # the key's last-used time is due for an update

    def has_role(self, minimum: Role) -> bool:
        return self.role.at_least(minimum)
