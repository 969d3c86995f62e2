"""Several agents on one canvas: who may do what (roles), when (modes), and how edits are merged.

Roles: an owner edits, reviews, manages the lock and closes; a contributor edits (and takes the lock);
a reviewer adds reviews but never edits the content; a viewer only reads. A person (an operator on the
dashboard or the API) edits without a role, under the same mode rules except the turn order.

Modes: parallel (anyone allowed edits at any time), sequential (agents edit in their order; each edit
passes the turn to the next editor unless it keeps it), locked (only the holder of the lock edits; a lock
expires after ATOM_CANVAS_LOCK_TTL_S so a gone agent cannot hold it forever).

Conflicts: every replace or merge names the version it was based on; a stale one is refused
(409 CANVAS_VERSION_CONFLICT with the current version and content) and changes nothing: the writer reads
the current content and applies its edit again. An append (lines, rows, items, text at the end) does not
depend on what others wrote, so it never conflicts: it is applied to the current version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from atom.canvas.models import Canvas, CoordinationMode, ParticipantRole
from atom.errors import Conflict, Forbidden

EDITING_ROLES = frozenset({ParticipantRole.OWNER.value, ParticipantRole.CONTRIBUTOR.value})
REVIEWING_ROLES = frozenset({ParticipantRole.OWNER.value, ParticipantRole.REVIEWER.value})
ALL_ROLES = frozenset(r.value for r in ParticipantRole)


@dataclass(frozen=True)
class Editor:
    """Who acts on a canvas: an agent (through its tools) or a person."""

    agent_id: str | None = None
    user_id: str | None = None

    @property
    def actor(self) -> str:
        return f"agent:{self.agent_id}" if self.agent_id else f"user:{self.user_id}"

    @property
    def is_agent(self) -> bool:
        return self.agent_id is not None


def require_role(role: str | None, editor: Editor, allowed: frozenset[str], what: str) -> None:
    if not editor.is_agent:
        return
    if role not in allowed:
        raise Forbidden(
            f"The agent's role on this canvas ({role or 'none'}) may not {what}.",
            code="CANVAS_ROLE",
            details={"role": role, "allowed": sorted(allowed)},
        )


def lock_active(canvas: Canvas, now: datetime) -> bool:
    return canvas.lock_holder is not None and canvas.lock_expires_at is not None and canvas.lock_expires_at > now


def check_may_edit(canvas: Canvas, editor: Editor, now: datetime) -> None:
    """Refuse (409) an edit the canvas's mode does not allow now."""
    if canvas.status != "open":
        raise Conflict(f"The canvas is {canvas.status}: it takes no more edits.", code="CANVAS_NOT_OPEN")
    mode = CoordinationMode(canvas.mode)
    if mode is CoordinationMode.LOCKED and not (lock_active(canvas, now) and canvas.lock_holder == editor.actor):
        holder = canvas.lock_holder if lock_active(canvas, now) else None
        raise Conflict(
            "The canvas is in locked mode: take the lock before editing" + (f" (held by {holder})." if holder else "."),
            code="CANVAS_LOCKED",
            details={"lock_holder": holder, "field": "lock"},
        )
    if mode is CoordinationMode.SEQUENTIAL and editor.is_agent and canvas.turn_agent_id != editor.agent_id:
        raise Conflict(
            f"The canvas is in sequential mode and it is agent {canvas.turn_agent_id}'s turn.",
            code="CANVAS_NOT_YOUR_TURN",
            details={"turn_agent_id": canvas.turn_agent_id},
        )


def stale(canvas: Canvas, expected: int) -> Conflict:
    return Conflict(
        f"The canvas changed since version {expected}: it is at version {canvas.version}. "
        "Read the current content and apply your edit again.",
        code="CANVAS_VERSION_CONFLICT",
        details={
            "field": "expected_version",
            "expected_version": expected,
            "current_version": canvas.version,
            "current_content": canvas.content,
        },
    )


def next_turn(order: list[str], current: str | None) -> str | None:
    """The editor after `current` in the turn order (round robin)."""
    if not order:
        return None
    if current not in order:
        return order[0]
    return order[(order.index(current) + 1) % len(order)]


def merged(content: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return {**content, **patch}


def appended(content: dict[str, Any], additions: dict[str, Any]) -> dict[str, Any]:
    """Lists are extended and strings continued; any other field cannot be appended to."""
    from atom.errors import InvalidInput

    result = dict(content)
    for key, value in additions.items():
        current = result.get(key)
        if isinstance(current, list) and isinstance(value, list):
            result[key] = [*current, *value]
        elif isinstance(current, str) and isinstance(value, str):
            result[key] = current + value
        else:
            raise InvalidInput(
                f"Cannot append to {key!r}: append extends a list with a list or a text with a text.",
                code="INVALID_CANVAS_APPEND",
                details={"field": f"content.{key}"},
            )
    return result
