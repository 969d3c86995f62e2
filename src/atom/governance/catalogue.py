"""The action catalogue: every action an agent can take, with its complexity (RULES.md, Action complexity).

Resolution: the exact name; else the verb prefix; else 4 (CRITICAL) — fail closed.

RULES.md's actions are the classification, kept for the record; an action is available only when
something implements it (a tool, a workflow action, an integration, the chat runtime's streaming).
A RULES.md action nobody implements yet is `planned`: governance answers UNKNOWN_ACTION for it, as for
a name only its verb prefix classifies.

The catalogue is an object, built with the other registries by `atom.registries.build_registries()`
(called by `create_app`, the CLI and workers, never at import time) and made this process's catalogue
with `install`; `current()` answers with it.
"""

from __future__ import annotations

from dataclasses import dataclass

_PREFIXES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("delete_", "remove_", "bulk_"), 4),
    (("create_", "update_", "send_", "submit_", "post_", "schedule_"), 3),
    (("draft_", "suggest_", "analyze_", "generate_"), 2),
    (("get_", "list_", "read_", "search_", "fetch_"), 1),
)

_BUILTIN: dict[int, tuple[str, ...]] = {
    1: ("search", "read", "list", "get", "fetch", "summarize", "present_chart", "present_markdown", "memory_search"),
    2: (
        "analyze", "draft", "suggest", "generate", "stream_chat", "present_form", "browser_navigate",
        "browser_screenshot", "browser_extract", "device_camera_snap", "device_get_location",
        "device_send_notification", "update_canvas", "memory_remember",
    ),
    3: (
        "create", "update", "submit", "send_email", "post_message", "schedule", "upload", "canvas_submit",
        "browser_action", "browser_click", "browser_fill", "device_screen_record", "memory_forget",
        "shell_write", "shell_build",
    ),
    4: (
        "delete", "bulk_update", "bulk_delete", "execute", "deploy", "transfer", "payment",
        "device_execute_command", "canvas_execute_javascript", "write_code_file", "shell_delete",
    ),
}  # fmt: skip


PLANNED = "planned"


@dataclass(frozen=True)
class ActionSpec:
    name: str
    complexity: int
    description: str
    source: str
    implementation: str | None = None  # tool | workflow | integration | chat; None: planned (not available)

    @property
    def available(self) -> bool:
        return self.implementation is not None

    @property
    def implemented_by(self) -> str:
        return self.implementation or PLANNED


class ActionCatalogue:
    def __init__(self) -> None:
        self._actions: dict[str, ActionSpec] = {}

    @classmethod
    def with_builtin_actions(cls) -> ActionCatalogue:
        catalogue = cls()
        for complexity, names in _BUILTIN.items():
            for name in names:
                catalogue.register(name, complexity, source="rules")
        return catalogue

    def register(
        self,
        name: str,
        complexity: int,
        description: str = "",
        source: str = "builtin",
        implementation: str | None = None,
    ) -> ActionSpec:
        if not 1 <= complexity <= 4:
            raise ValueError(f"complexity of {name!r} must be 1-4, got {complexity}")
        spec = ActionSpec(
            name=name, complexity=complexity, description=description, source=source, implementation=implementation
        )
        self._actions[name] = spec
        return spec

    def implement(self, name: str, implementation: str) -> ActionSpec:
        """Mark a catalogued action as implemented (by code that is not a tool or workflow action)."""
        spec = self._actions.get(name)
        if spec is None:
            raise KeyError(name)
        spec = ActionSpec(spec.name, spec.complexity, spec.description, spec.source, implementation)
        self._actions[name] = spec
        return spec

    def resolve(self, name: str) -> int:
        return self.classify(name)[0]

    def classify(self, name: str) -> tuple[int, bool]:
        """(complexity, available). Available: catalogued and implemented. A planned action keeps its
        RULES.md complexity, a name only its verb prefix classifies gets the prefix's, any other is
        CRITICAL; none of them is available."""
        spec = self._actions.get(name)
        if spec is not None:
            return spec.complexity, spec.available
        for prefixes, complexity in _PREFIXES:
            if name.startswith(prefixes):
                return complexity, False
        return 4, False

    def get(self, name: str) -> ActionSpec | None:
        return self._actions.get(name)

    def all(self) -> list[ActionSpec]:
        return sorted(self._actions.values(), key=lambda spec: (spec.complexity, spec.name))


_current: ActionCatalogue | None = None


def install(value: ActionCatalogue | None) -> None:
    """Make `value` the catalogue governance consults in this process (None: forget it)."""
    global _current
    _current = value


def current() -> ActionCatalogue:
    """This process's catalogue; fails closed (raises) when the registries were never built."""
    if _current is None:
        from atom.errors import Unavailable

        raise Unavailable(
            "The action catalogue is not built in this process (atom.registries.ensure_registries).",
            code="REGISTRIES_NOT_BUILT",
        )
    return _current
