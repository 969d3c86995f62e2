"""Where each kind of audited subject has its page: audit records and lists link to their subject."""

from __future__ import annotations

from atom.web.ui import NavItem

# resource_type -> page path; a link is drawn only when a page for it is mounted (its nav section).
SUBJECT_PATHS = {
    "proposal": "/proposals/{id}",
    "agent": "/agents/{id}",
    "supervision": "/supervision/{id}",
    "workflow": "/workflows/{id}",
    "workflow_run": "/workflows/runs/{id}",
    "chat_session": "/chat/{id}",
    "user": "/admin/users#user-{id}",
    "api_key": "/admin/keys#key-{id}",
    "secret": "/admin/secrets",
}


def subject_path(
    nav: tuple[NavItem, ...] | list[NavItem], resource_type: str | None, resource_id: str | None
) -> str | None:
    if not resource_type or not resource_id:
        return None
    template = SUBJECT_PATHS.get(resource_type)
    if template is None:
        return None
    section = "/" + template.split("/")[1].split("#")[0]
    if not any(item.path == section for item in nav):
        return None
    return template.format(id=resource_id)
