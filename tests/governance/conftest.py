"""The policy tests use RULES.md's generic actions (read, analyze, create, delete), one per complexity.
Nothing implements those in Atom (they are `planned`, so governance denies them), so these tests mark
them implemented in the test's own registries."""

from __future__ import annotations

import pytest

from atom.registries import Registries

POLICY_ACTIONS = ("read", "analyze", "create", "delete")


@pytest.fixture(autouse=True)
def policy_actions(registries: Registries) -> None:
    for name in POLICY_ACTIONS:
        registries.catalogue.implement(name, "test")
