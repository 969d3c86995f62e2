"""The tool registry: what an agent can do, each action registered with its complexity.

Registering a tool also registers its action in the registry's governance catalogue, so nothing can
run that governance has not classified. The registry is an object built by `build_tools(catalogue)`,
which `atom.registries.build_registries()` calls (from `create_app`, the CLI and workers); nothing is
registered at import time. `install`/`current` make one registry this process's tool registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from atom.config import Settings
from atom.errors import InvalidInput
from atom.governance.catalogue import ActionCatalogue

Handler = Callable[[BaseModel], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    name: str
    complexity: int
    description: str
    params: type[BaseModel]
    handler: Handler = field(repr=False)
    # Tools whose risk depends on their input (http_request: by method) are governed as another
    # catalogue action chosen from the validated params; `governed_names` registers those actions.
    governed_as: Callable[[BaseModel], str] | None = field(default=None, repr=False)
    governed_names: dict[str, int] = field(default_factory=dict)
    # A tool that waits for a person (present_form) runs longer than ATOM_CHAT_TOOL_TIMEOUT_S.
    timeout_s: Callable[[Settings], float] | None = field(default=None, repr=False)
    # What this tool runs now, when that can change between a proposal and its approval (a skill tool: the
    # skill version): a proposal records it with the call and the approved step runs on exactly that.
    pin: dict[str, Any] | None = None

    def timeout(self, settings: Settings) -> float:
        return self.timeout_s(settings) if self.timeout_s is not None else settings.chat_tool_timeout_s

    def governance_action(self, params: BaseModel) -> str:
        return self.governed_as(params) if self.governed_as is not None else self.name

    def validate(self, params: dict[str, Any]) -> BaseModel:
        try:
            return self.params.model_validate(params)
        except ValidationError as exc:
            fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
            raise InvalidInput(
                f"Invalid parameters for {self.name}.", code="INVALID_TOOL_PARAMS", details={"fields": fields}
            ) from exc


class ToolRegistry:
    def __init__(self, catalogue: ActionCatalogue) -> None:
        self._tools: dict[str, Tool] = {}
        self.catalogue = catalogue

    def register(self, tool: Tool) -> Tool:
        catalogue = self.catalogue
        catalogue.register(tool.name, tool.complexity, tool.description, source="tool", implementation="tool")
        for name, complexity in tool.governed_names.items():
            catalogue.register(
                name, complexity, f"{tool.name}: {tool.description}", source="tool", implementation="tool"
            )
        self._tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return sorted(self._tools.values(), key=lambda t: t.name)

    def restricted_to(self, names: Collection[str]) -> ToolRegistry:
        """A registry holding only those of these tools that are registered here (a training scenario's
        allowed tools); their actions are in the catalogue already."""
        view = ToolRegistry(self.catalogue)
        view._tools = {name: tool for name, tool in self._tools.items() if name in names}
        return view


def build_tools(catalogue: ActionCatalogue) -> ToolRegistry:
    """A registry holding the built-in tools, their actions registered in `catalogue`."""
    from atom.runtime.builtin_tools import register_builtin_tools

    registry = ToolRegistry(catalogue)
    register_builtin_tools(registry)
    return registry


_current: ToolRegistry | None = None


def install(value: ToolRegistry | None) -> None:
    global _current
    _current = value


def current() -> ToolRegistry:
    """This process's tool registry (built by `atom.registries.ensure_registries`)."""
    if _current is None:
        from atom.errors import Unavailable

        raise Unavailable("The tool registry is not built in this process.", code="REGISTRIES_NOT_BUILT")
    return _current
