"""The agent's canvas tools, each governed by its RULES.md complexity: present_markdown, present_chart,
present_canvas (the other kinds) and read_canvas (1), present_form and update_canvas (2), canvas_submit and
present_component (HTML/CSS custom components, 3), canvas_execute_javascript (JavaScript components, 4).

`register_canvas_tools(registry)` adds them through the tool registry (which classifies them in the
governance catalogue); `atom.registries.build_registries()` calls it. A tool acts for the agent whose run
calls it (`current_tool_context`) and opens its canvas in that run's chat session. present_form waits for
the person's submission (bounded by ATOM_CANVAS_FORM_WAIT_S) and returns it as its result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from atom.agents import service as agents_service
from atom.canvas import components as canvas_components
from atom.canvas import coordination, flows, views
from atom.canvas import service as canvas_service
from atom.canvas.content import Series
from atom.canvas.coordination import Editor
from atom.canvas.models import CanvasKind, CoordinationMode, ParticipantRole
from atom.db.session import Database
from atom.errors import InvalidInput
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import Tool, ToolRegistry

Title = Annotated[str, Field(max_length=200)]


class Collaborator(BaseModel):
    agent: str = Field(min_length=1, max_length=100, description="The id or name of another agent.")
    role: Literal["contributor", "reviewer", "viewer"] = "contributor"


class _Present(BaseModel):
    title: Title = ""
    mode: CoordinationMode = Field(default=CoordinationMode.PARALLEL, description="How several agents edit it.")
    collaborators: list[Collaborator] = Field(default_factory=list, max_length=10)


class MarkdownParams(_Present):
    text: str = Field(max_length=100_000, description="Markdown to show the person.")


class ChartParams(_Present):
    chart_type: Literal["line", "bar", "pie", "scatter"]
    labels: list[str] = Field(default_factory=list, max_length=10_000, description="Categories (line, bar, pie).")
    series: list[Series] = Field(min_length=1, max_length=10)
    x_label: str = Field(default="", max_length=200)
    y_label: str = Field(default="", max_length=200)


class FormParams(_Present):
    form_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema object; its properties are fields.")
    description: str = Field(default="", max_length=2000)
    submit_label: str = Field(default="Submit", max_length=60)
    wait: bool = Field(default=True, description="Wait for the person's submission and return it.")
    timeout_s: float | None = Field(default=None, gt=0, le=3600, description="Longest wait (ATOM_CANVAS_FORM_WAIT_S).")


class CanvasParams(_Present):
    kind: Literal["sheet", "status", "email", "terminal", "code"]
    content: dict[str, Any] = Field(description="The canvas's content for its kind (docs/canvas.md).")


class UpdateParams(BaseModel):
    canvas_id: str = Field(min_length=1, max_length=36)
    op: Literal["replace", "merge", "append", "lock", "unlock", "review", "close"]
    content: dict[str, Any] = Field(default_factory=dict, description="replace: all; merge: fields; append: additions.")
    expected_version: int | None = Field(default=None, ge=1, description="The version your edit is based on.")
    keep_turn: bool = Field(default=False, description="Sequential mode: keep the turn after this edit.")
    title: str | None = Field(default=None, max_length=200)
    verdict: Literal["approve", "request_changes", "comment"] = "comment"
    note: str = Field(default="", max_length=4000)


class SubmitParams(BaseModel):
    canvas_id: str = Field(min_length=1, max_length=36)
    values: dict[str, Any]


class ReadParams(BaseModel):
    canvas_id: str = Field(min_length=1, max_length=36)


class ComponentParams(BaseModel):
    component: str = Field(min_length=1, max_length=100, description="The custom component's name.")
    version: int | None = Field(default=None, ge=1, description="Default: its current version.")
    props: dict[str, Any] = Field(default_factory=dict)
    title: Title = ""


def _context(tool: str) -> tuple[ToolContext, Database]:
    context = current_tool_context.get()
    if context is None or context.db is None:
        raise InvalidInput(f"{tool} runs only inside an agent run.", code="CANVAS_TOOL_UNAVAILABLE")
    return context, context.db


async def _collaborators(db: Database, wanted: list[Collaborator]) -> list[tuple[str, ParticipantRole]]:
    found = []
    async with db.session_scope() as session:
        for item in wanted:
            agent = await agents_service.resolve_ref(session=session, ref=item.agent)
            found.append((agent.id, ParticipantRole(item.role)))
    return found


async def _present(
    tool: str, kind: CanvasKind, params: _Present, content: dict[str, Any], *, component_version_id: str | None = None
) -> dict[str, Any]:
    context, db = _context(tool)
    collaborators = await _collaborators(db, params.collaborators)
    async with db.session_scope() as session:
        canvas = await canvas_service.create(
            session=session,
            kind=kind,
            title=params.title,
            content=content,
            editor=Editor(agent_id=context.agent_id),
            session_id=context.session_id,
            execution_id=context.execution_id,
            workflow_run_id=context.workflow_run_id,
            mode=params.mode,
            collaborators=collaborators,
            component_version_id=component_version_id,
        )
        return {"canvas_id": canvas.id, "version": canvas.version, "kind": kind.value, "summary": views.summary(canvas)}


async def present_markdown(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, MarkdownParams)
    return await _present("present_markdown", CanvasKind.MARKDOWN, params, {"text": params.text})


async def present_chart(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, ChartParams)
    body = params.model_dump(include={"chart_type", "labels", "series", "x_label", "y_label"}, exclude_none=True)
    return await _present("present_chart", CanvasKind.CHART, params, body)


async def present_canvas(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, CanvasParams)
    return await _present("present_canvas", CanvasKind(params.kind), params, params.content)


async def present_form(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, FormParams)
    context, db = _context("present_form")
    content = {"schema": params.form_schema, "description": params.description, "submit_label": params.submit_label}
    shown = await _present("present_form", CanvasKind.FORM, params, content)
    if not params.wait:
        return {**shown, "status": "open"}
    limit = context.settings.canvas_form_wait_s
    timeout = min(params.timeout_s or limit, limit)
    return {**shown, **await flows.wait_for_submission(db=db, canvas_id=shown["canvas_id"], timeout_s=timeout)}


async def update_canvas(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, UpdateParams)
    context, db = _context("update_canvas")
    editor = Editor(agent_id=context.agent_id)
    ttl = context.settings.canvas_lock_ttl_s

    async def work(session: Any) -> dict[str, Any]:
        if params.op in ("lock", "unlock"):
            canvas = await canvas_service.lock(
                session=session, canvas_id=params.canvas_id, editor=editor, acquire=params.op == "lock", ttl_s=ttl
            )
        elif params.op == "review":
            canvas = await canvas_service.review(
                session=session, canvas_id=params.canvas_id, editor=editor, verdict=params.verdict, note=params.note
            )
        elif params.op == "close":
            canvas = await canvas_service.close(session=session, canvas_id=params.canvas_id, editor=editor)
        else:
            op: canvas_service.EditOp = (
                "replace" if params.op == "replace" else "merge" if params.op == "merge" else "append"
            )
            canvas = await canvas_service.update(
                session=session,
                canvas_id=params.canvas_id,
                editor=editor,
                op=op,
                data=params.content,
                expected_version=params.expected_version,
                keep_turn=params.keep_turn,
                title=params.title,
            )
        return {"canvas_id": canvas.id, "version": canvas.version, "status": canvas.status, "mode": canvas.mode}

    return await flows.act(db, params.canvas_id, params.op, editor, work)


async def canvas_submit(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, SubmitParams)
    context, db = _context("canvas_submit")
    editor = Editor(agent_id=context.agent_id)
    async with db.session_scope() as session:
        await canvas_service.require_participant(
            session=session, canvas_id=params.canvas_id, editor=editor, allowed=coordination.EDITING_ROLES,
            what="submit this form",
        )  # fmt: skip
    canvas = await flows.submit_form(
        db=db,
        settings=context.settings,
        canvas_id=params.canvas_id,
        values=params.values,
        submitter=editor,
    )
    return {"canvas_id": canvas.id, "version": canvas.version, "status": canvas.status}


async def read_canvas(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, ReadParams)
    context, db = _context("read_canvas")
    async with db.session_scope() as session:
        canvas = await canvas_service.require_participant(
            session=session, canvas_id=params.canvas_id, editor=Editor(agent_id=context.agent_id),
            allowed=coordination.ALL_ROLES, what="read this canvas",
        )  # fmt: skip
        return views.for_agent(canvas)


def _component_tool(name: str, javascript: bool) -> Any:
    async def present(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, ComponentParams)
        _, db = _context(name)
        async with db.session_scope() as session:
            version = await canvas_components.usable_version(
                session=session, name=params.component, version=params.version, javascript=javascript
            )
            number = version.version
            version_id = version.id
        return await _present(
            name,
            CanvasKind.COMPONENT,
            _Present(title=params.title),
            {"component": params.component, "version": number, "props": params.props},
            component_version_id=version_id,
        )

    return present


def register_canvas_tools(registry: ToolRegistry) -> None:
    def form_wait(settings: Any) -> float:
        return float(max(settings.chat_tool_timeout_s, settings.canvas_form_wait_s + 5))

    tools = [
        Tool(
            "present_markdown", 1, "Show the person a markdown document on a canvas.", MarkdownParams, present_markdown
        ),
        Tool("present_chart", 1, "Show a line, bar, pie or scatter chart on a canvas.", ChartParams, present_chart),
        Tool(
            "present_canvas",
            1,
            "Show a sheet (formulas allowed), a status panel, an email draft, terminal output or code on a canvas.",
            CanvasParams,
            present_canvas,
        ),
        Tool("read_canvas", 1, "Read a canvas: its content, version, mode, lock and reviews.", ReadParams, read_canvas),
        Tool(
            "present_form",
            2,
            "Show the person a form (a JSON Schema) and wait for their submission, which is returned.",
            FormParams,
            present_form,
            timeout_s=form_wait,
        ),
        Tool(
            "update_canvas",
            2,
            "Edit a canvas (replace, merge or append; replace and merge need expected_version), take or release "
            "its lock, review it, or close it.",
            UpdateParams,
            update_canvas,
        ),
        Tool("canvas_submit", 3, "Submit values to an open form canvas.", SubmitParams, canvas_submit),
        Tool(
            "present_component",
            3,
            "Show a custom HTML/CSS component (made by a person) on a canvas.",
            ComponentParams,
            _component_tool("present_component", javascript=False),
        ),
        Tool(
            "canvas_execute_javascript",
            4,
            "Run an approved JavaScript custom component on a canvas, in a sandboxed frame.",
            ComponentParams,
            _component_tool("canvas_execute_javascript", javascript=True),
        ),
    ]
    for tool in tools:
        registry.register(tool)
