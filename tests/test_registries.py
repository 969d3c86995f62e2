"""Nothing is registered at import time; the registries are objects built by one explicit call."""

from __future__ import annotations

import subprocess
import sys

from atom.governance.catalogue import ActionCatalogue
from atom.registries import Registries, build_registries
from atom.runtime.tools import Tool
from atom.workflows.actions import NoopParams

IMPORT_EVERYTHING = """
import importlib, pkgutil, atom
for info in pkgutil.walk_packages(atom.__path__, "atom."):
    if ".migrations" in info.name or info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
from atom.errors import Unavailable
from atom.governance import catalogue
from atom.runtime import tools
from atom.training import executor
from atom.workflows import actions
unbuilt = []
for module in (catalogue, tools, executor, actions):
    try:
        module.current()
    except Unavailable as exc:
        unbuilt.append(exc.code)
print(len(unbuilt), sorted(set(unbuilt)))
"""


def test_importing_every_module_registers_nothing() -> None:
    """Every module of atom imported in a fresh process: no catalogue, tool, action or executor exists yet."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["4", "['REGISTRIES_NOT_BUILT']\n"]


async def _noop(params: object) -> dict[str, object]:
    return {}


def test_each_build_is_independent() -> None:
    first, second = build_registries(), build_registries()
    assert isinstance(first, Registries) and isinstance(first.catalogue, ActionCatalogue)
    first.tools.register(Tool("test_only_here", 2, "a test tool", NoopParams, _noop))  # type: ignore[arg-type]
    assert first.catalogue.classify("test_only_here") == (2, True)
    assert first.actions.get("test_only_here") is not None  # a tool is a workflow action of the same build
    assert second.tools.get("test_only_here") is None
    assert second.catalogue.get("test_only_here") is None


def test_a_build_holds_the_tools_the_workflow_actions_and_the_executors() -> None:
    built = build_registries()
    assert built.tools.get("http_request") is not None
    assert built.actions.get("noop") is not None and built.actions.get("slack_post_message") is not None
    assert built.catalogue.get("slack_post_message") is not None
    assert built.executors.get("plan") is not None and built.executors.get("agent") is not None
    # the workflow executor belongs to a started engine (workflows/app.py), not to a build
    assert built.executors.get("workflow") is None
