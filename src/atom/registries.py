"""The process's registries: the action catalogue, the tools, the workflow actions and the executors.

They are objects, built together by `build_registries()` and made this process's by `install`; nothing
is registered at import time. `create_app`, the CLI and `atom-os worker` call `ensure_registries()`,
so every process builds the same catalogue from the same code and a governance answer never depends on
which process asks. A started workflow engine adds its "workflow" executor to the executors
(`atom.workflows.app.start`) and removes it when it stops.

This module is wiring, like `api.py`: it sits above the domains and imports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from atom.canvas import tools as canvas_tools
from atom.chat import routing as chat_routing
from atom.governance import catalogue as governance_catalogue
from atom.governance.catalogue import ActionCatalogue
from atom.guidance import tools as guidance_tools
from atom.runtime import tools as runtime_tools
from atom.runtime.tools import ToolRegistry
from atom.skills import plan_tools as skill_plan_tools
from atom.skills import runs as skill_runs
from atom.training import executor as training_executor
from atom.training.executor import Executors, PlanExecutor
from atom.workflows import actions as workflow_actions
from atom.workflows.actions import ActionRegistry


@dataclass(frozen=True)
class Registries:
    catalogue: ActionCatalogue
    tools: ToolRegistry
    actions: ActionRegistry
    executors: Executors


def build_registries() -> Registries:
    """Fresh registries: RULES.md's catalogue, the built-in tools, the workflow actions and integrations,
    the "plan" executor (tools, and the agent's skill tools for a step naming one) and the "agent"
    executor (`agent.run` plans)."""
    catalogue = ActionCatalogue.with_builtin_actions()
    catalogue.implement("stream_chat", "chat")  # the chat runtime streams an answer (chat/runtime.py)
    skill_runs.register_actions(catalogue)  # run_skill, read_skill (skills/runs.py)
    tools = runtime_tools.build_tools(catalogue)
    canvas_tools.register_canvas_tools(tools)  # present_*, update_canvas, canvas_submit, ... (canvas/tools.py)
    guidance_tools.register_guidance_tools(tools)  # request_decision, request_permission (guidance/tools.py)
    actions = workflow_actions.build_registry(tools)
    executors = Executors()
    # A plan's steps run as its agent, with its run's skill tools (read_skill, skill_<name>) built per run
    executors.register("plan", PlanExecutor(tools, run_tools=skill_plan_tools.plan_tools))
    chat_routing.register(executors)
    return Registries(catalogue=catalogue, tools=tools, actions=actions, executors=executors)


_installed: Registries | None = None


def install(registries: Registries | None) -> None:
    """Make `registries` this process's (None: forget them, e.g. between tests)."""
    global _installed
    _installed = registries
    governance_catalogue.install(registries.catalogue if registries else None)
    runtime_tools.install(registries.tools if registries else None)
    workflow_actions.install(registries.actions if registries else None)
    training_executor.install(registries.executors if registries else None)


def installed() -> Registries | None:
    return _installed


def ensure_registries() -> Registries:
    """This process's registries, built and installed on the first call."""
    if _installed is None:
        install(build_registries())
    assert _installed is not None
    return _installed
