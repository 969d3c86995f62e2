"""What a workflow step can do: registered actions, each with its governance complexity.

An action is a handler `(params, ctx) -> output dict` with a pydantic model for its `with:` inputs.
The context carries the step's idempotency key (stable across redeliveries of the same attempt
and automatic retries, new on a person's retry-from-failed), a shared HTTP client, settings,
credentials from the secrets store, and a per-step log.

Every action is registered in the registry's governance catalogue (`ActionCatalogue.register`). Some
actions are governed by what they do rather than by their name: `http_request` is checked as
`http_get` (complexity 1), `http_post`/`http_put`/`http_patch` (3) or `http_delete` (4).
Tools of the agent runtime (`atom.runtime.tools`) are usable as workflow actions too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, ValidationError

from atom.config import Settings
from atom.db.session import Database
from atom.errors import InvalidInput, NotFound
from atom.governance.catalogue import ActionCatalogue
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import ToolRegistry
from atom.security import secrets_store
from atom.workflows.integrations.errors import IntegrationNotConfigured

MAX_LOG_LINES = 200


@dataclass
class ActionContext:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    cipher: Fernet
    idempotency_key: str
    run_id: str
    step_id: str
    agent_id: str
    logs: list[dict[str, Any]] = field(default_factory=list)

    def log(self, message: str, **fields: Any) -> None:
        if len(self.logs) < MAX_LOG_LINES:
            self.logs.append({"at": time.time(), "message": message, **fields})

    async def secret(self, name: str, *, integration: str, setting: str) -> str:
        """A credential from the secrets store; a missing one is a clear, non-retryable error."""
        try:
            async with self.db.session_scope() as session:
                return await secrets_store.reveal(session=session, cipher=self.cipher, name=name)
        except NotFound as exc:
            raise IntegrationNotConfigured(
                f"{integration}: the secret {name!r} is not in the secrets store "
                f"(create it with `atom-os secrets set {name}`, or point {setting} at another secret).",
                integration=integration,
                details={"secret": name, "setting": setting},
            ) from exc


Handler = Callable[[Any, ActionContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class WorkflowAction:
    name: str
    complexity: int
    description: str
    params: type[BaseModel]
    handler: Handler = field(repr=False)
    governed_as: Callable[[Any], str] | None = field(default=None, repr=False)
    # extra catalogue entries this action is governed as (name -> complexity)
    governed_names: dict[str, int] = field(default_factory=dict)

    def validate(self, params: dict[str, Any]) -> BaseModel:
        try:
            return self.params.model_validate(params)
        except ValidationError as exc:
            fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
            named = ", ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
            raise InvalidInput(
                f"Invalid inputs for {self.name}: {named}.", code="INVALID_ACTION_PARAMS", details={"fields": fields}
            ) from exc

    def governance_action(self, params: BaseModel) -> str:
        return self.governed_as(params) if self.governed_as is not None else self.name


class ActionRegistry:
    def __init__(self, catalogue: ActionCatalogue, fallback: ToolRegistry | None = None) -> None:
        self._actions: dict[str, WorkflowAction] = {}
        self._fallback = fallback
        self.catalogue = catalogue

    def register(self, action: WorkflowAction, *, implementation: str = "workflow") -> WorkflowAction:
        """Add `action`; its catalogue entries say what implements them ("workflow", "integration")."""
        catalogue = self.catalogue
        if action.governed_names:
            for name, complexity in action.governed_names.items():
                catalogue.register(
                    name,
                    complexity,
                    f"{action.name}: {action.description}",
                    source="workflow",
                    implementation=implementation,
                )
        else:
            catalogue.register(
                action.name, action.complexity, action.description, source="workflow", implementation=implementation
            )
        self._actions[action.name] = action
        return action

    def get(self, name: str) -> WorkflowAction | None:
        action = self._actions.get(name)
        if action is not None or self._fallback is None:
            return action
        tool = self._fallback.get(name)
        if tool is None:
            return None

        async def run_tool(params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
            # The tool knows which agent, step and run call it (canvases open in the run; memory is the agent's).
            context = ToolContext(
                settings=ctx.settings,
                agent_id=ctx.agent_id,
                execution_id=ctx.step_id,
                depth=0,
                db=ctx.db,
                workflow_run_id=ctx.run_id,
            )
            token = current_tool_context.set(context)
            try:
                return await tool.handler(params)
            finally:
                current_tool_context.reset(token)

        return WorkflowAction(tool.name, tool.complexity, tool.description, tool.params, run_tool)

    def exists(self, name: str) -> bool:
        return self.get(name) is not None

    def all(self) -> list[WorkflowAction]:
        return sorted(self._actions.values(), key=lambda a: a.name)


class NoopParams(BaseModel):
    model_config = ConfigDict(extra="allow")


async def noop(params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
    """Returns its inputs: shapes data between steps; also the benchmark's step."""
    return dict(params.model_extra or {})


def build_registry(tools: ToolRegistry) -> ActionRegistry:
    """The workflow actions (noop and the integrations) in `tools`' catalogue; the tools are actions too."""
    from atom.workflows.integrations import register_integrations

    registry = ActionRegistry(tools.catalogue, fallback=tools)
    registry.register(WorkflowAction("noop", 1, "Do nothing; the output is the step's inputs.", NoopParams, noop))
    register_integrations(registry)
    return registry


_current: ActionRegistry | None = None


def install(value: ActionRegistry | None) -> None:
    global _current
    _current = value


def current() -> ActionRegistry:
    """This process's workflow actions (built by `atom.registries.ensure_registries`)."""
    if _current is None:
        from atom.errors import Unavailable

        raise Unavailable("The workflow actions are not built in this process.", code="REGISTRIES_NOT_BUILT")
    return _current
