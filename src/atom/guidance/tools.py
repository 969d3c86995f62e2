"""The agent's tools for asking a person: `request_decision` and `request_permission` (complexity 2,
like RULES.md's `present_form`: the agent puts a question with options in front of a person).

The tool waits for the answer and returns it as its result; with no answer in time the default
applies and the result says so. The wait is bounded by the request's `timeout_s` and by the bound of
one tool call (ATOM_CHAT_TOOL_TIMEOUT_S, less a margin so the tool itself answers first); a shortened
timeout is stated in the result. `register_guidance_tools` is called by `build_registries()`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from atom.errors import InvalidInput
from atom.guidance import requests
from atom.guidance.models import AgentRequest, RequestKind, RequestStatus
from atom.guidance.progress import permission_question
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import Tool, ToolRegistry

COMPLEXITY = 2
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class DecisionParams(BaseModel):
    question: str = Field(min_length=1, max_length=500, description="The question, in words a person understands.")
    options: list[Option] = Field(min_length=2, max_length=10, description="2-10 distinct answers to choose from.")
    default: Option = Field(description="The option that applies when nobody answers in time (one of `options`).")
    timeout_s: int = Field(
        default=60, ge=requests.MIN_TIMEOUT_S, le=requests.MAX_TIMEOUT_S, description="How long to wait, seconds."
    )
    context: str | None = Field(default=None, max_length=1000, description="Why you ask: what depends on it.")

    @field_validator("options")
    @classmethod
    def _distinct(cls, options: list[str]) -> list[str]:
        if len(set(options)) != len(options):
            raise ValueError("options must be distinct")
        return options

    @field_validator("default")
    @classmethod
    def _default_is_an_option(cls, default: str, info: ValidationInfo) -> str:
        options = info.data.get("options")
        if options is not None and default not in options:
            raise ValueError(f"must be one of the options, got {default!r}")
        return default


class PermissionParams(BaseModel):
    action: str = Field(min_length=1, max_length=500, description="What you want to do, precisely.")
    reason: str | None = Field(default=None, max_length=1000, description="Why it is needed.")
    default: Literal["allow", "deny"] = Field(default="deny", description="What applies when nobody answers in time.")
    timeout_s: int = Field(
        default=60, ge=requests.MIN_TIMEOUT_S, le=requests.MAX_TIMEOUT_S, description="How long to wait, seconds."
    )


def _context(tool: str) -> ToolContext:
    context = current_tool_context.get()
    if context is None or context.db is None:
        raise InvalidInput(f"{tool} runs only inside an agent run.", code="REQUEST_TOOL_UNAVAILABLE")
    return context


def wait_bound(asked: int, tool_timeout_s: float) -> int:
    """The timeout actually used: the one asked, within the bound of one tool call (less a margin)."""
    margin = min(2.0, tool_timeout_s / 10)
    return max(1, min(asked, int(tool_timeout_s - margin)))


def result(row: AgentRequest, asked: int) -> dict[str, Any]:
    timed_out = row.status == RequestStatus.TIMED_OUT.value
    answer = row.answer or row.default_option
    if timed_out:
        message = f"No one answered within {row.timeout_s} s: the default “{answer}” applies."
    else:
        message = f"A person chose “{answer}”." + (f" Their note: {row.note}" if row.note else "")
    out: dict[str, Any] = {
        "request_id": row.id,
        "answer": answer,
        "answered_by": "default" if timed_out else "person",
        "timed_out": timed_out,
        "timeout_s": row.timeout_s,
        "message": message,
    }
    if row.timeout_s < asked:
        out["note"] = f"The timeout was shortened from {asked} s to {row.timeout_s} s (ATOM_CHAT_TOOL_TIMEOUT_S)."
    if row.kind == RequestKind.PERMISSION.value:
        out["granted"] = answer == "allow"
    return out


async def request_decision(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, DecisionParams)
    context = _context("request_decision")
    assert context.db is not None
    ask = requests.Ask(
        kind=RequestKind.DECISION,
        agent_id=context.agent_id,
        execution_id=context.execution_id,
        question=params.question,
        options=tuple(params.options),
        default=params.default,
        timeout_s=wait_bound(params.timeout_s, context.settings.chat_tool_timeout_s),
        context=params.context,
    )
    row = await requests.ask_and_wait(db=context.db, settings=context.settings, ask=ask)
    return result(row, params.timeout_s)


async def request_permission(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, PermissionParams)
    context = _context("request_permission")
    assert context.db is not None
    ask = requests.Ask(
        kind=RequestKind.PERMISSION,
        agent_id=context.agent_id,
        execution_id=context.execution_id,
        question=permission_question(params.action),
        options=requests.PERMISSION_OPTIONS,
        default=params.default,
        timeout_s=wait_bound(params.timeout_s, context.settings.chat_tool_timeout_s),
        context=params.reason,
    )
    row = await requests.ask_and_wait(db=context.db, settings=context.settings, ask=ask)
    return result(row, params.timeout_s)


def register_guidance_tools(registry: ToolRegistry) -> None:
    registry.register(
        Tool(
            "request_decision",
            COMPLEXITY,
            "Ask a person to choose between options and wait for the answer (the default applies on timeout).",
            DecisionParams,
            request_decision,
        )
    )
    registry.register(
        Tool(
            "request_permission",
            COMPLEXITY,
            "Ask a person for permission before doing something; waits for allow or deny (default: deny).",
            PermissionParams,
            request_permission,
        )
    )
