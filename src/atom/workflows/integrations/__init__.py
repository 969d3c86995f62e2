"""Integrations as workflow actions: HTTP and webhooks, Slack, Asana, email (SMTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atom.workflows.actions import ActionRegistry


def register_integrations(registry: ActionRegistry) -> None:
    from atom.workflows.integrations import asana, email, http, slack

    for module in (http, slack, asana, email):
        for action in module.actions():
            registry.register(action, implementation="integration")
