"""The agent runtime: one governed, bounded, cancellable tool-calling run of an agent.

A run: record an `AgentExecution` (status running) -> decide whether the answer may be streamed
(`stream_chat`, INTERN+) -> up to ATOM_CHAT_MAX_STEPS model calls. Each call streams text (sent to
the client token by token when streaming is allowed) and may end with tool calls; each tool call is
validated against the tool's schema, passed through `governance.check`, and then run (allowed),
turned into a proposal (needs approval) or refused (denied); the model sees the outcome as the tool
result and continues. The run ends when the model answers without tools, or stops on the step,
time (ATOM_CHAT_MAX_SECONDS) or token (ATOM_CHAT_MAX_TOKENS) bound, a provider failure, or a
cancellation. Whatever happened, the execution row keeps the output produced so far and the error.
An automated run first goes through the trigger interceptor (`atom.chat.routing`); inside a
supervision session each tool call passes the supervisor's hooks (pause, correct, terminate).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from atom.agents import service as agents_service
from atom.agents.models import Agent
from atom.audit import service as audit
from atom.chat import routing
from atom.chat import service as chat_service
from atom.chat.context import fit
from atom.chat.llm import ChatLLM, LLMSource
from atom.chat.models import AgentExecution, ExecutionStatus
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.errors import AtomError, InvalidInput
from atom.feedback import abtests
from atom.governance import service as governance
from atom.governance.policy import GovernanceContext, Outcome, TriggerKind
from atom.guidance import tracker as guidance_tracker
from atom.llm.cost import cost_usd
from atom.llm.providers.base import Message, ProviderError, TextDelta, ToolCall, ToolSpec, Usage
from atom.observability.logging import get_logger
from atom.runtime import tools as runtime_tools
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import Tool, ToolRegistry
from atom.skills import tools as skill_tools
from atom.training import proposals
from atom.training.executor import StepHooks, StepOutcome
from atom.training.models import ProposalKind
from atom.training.plan import PlanStep
from atom.training.recorder import DryRunRecorder

log = get_logger("atom.chat.runtime")

Emit = Callable[[dict[str, Any]], None]
MAX_TOOL_RESULT_CHARS = 16_384


def _discard(event: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class RunRequest:
    agent_ref: str
    input: str
    trigger: str = "chat"  # chat | api | cli | delegation | workflow | training
    trigger_kind: TriggerKind = TriggerKind.MANUAL
    session_id: str | None = None
    user_id: str | None = None
    parent_execution_id: str | None = None
    depth: int = 0
    model: str | None = None
    stream: bool = True  # the caller can show tokens as they come (governance still decides)
    # Set once the trigger interceptor has routed an automated run (chat/routing.py), with the
    # approved proposal or live supervision session it runs in, if any.
    routed: bool = False
    proposal_id: str | None = None
    supervision_session_id: str | None = None


@dataclass
class RunResult:
    execution_id: str
    status: ExecutionStatus
    output: str
    error: str | None = None
    error_code: str | None = None
    streamed: bool = False
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    duration_ms: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.COMPLETED

    def done_event(self) -> dict[str, Any]:
        return {
            "type": "done",
            "execution_id": self.execution_id,
            "status": self.status.value,
            "output": self.output,
            "error": self.error,
            "error_code": self.error_code,
            "steps": self.steps,
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd,
            },
            "duration_ms": round(self.duration_ms, 3),
        }


class RunStopped(Exception):
    """A bound was reached or the run cannot go on; the record keeps what was produced."""

    def __init__(self, code: str, message: str, status: ExecutionStatus = ExecutionStatus.FAILED):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# Runs in this process by execution id: the cancel API and operator terminate cancel the task.
active_runs: dict[str, asyncio.Task[Any]] = {}


def cancel_run(execution_id: str) -> bool:
    task = active_runs.get(execution_id)
    if task is None or task.done():
        return False
    task.cancel()
    return True


@dataclass(frozen=True)
class AgentProfile:
    """What the agent's configuration says about its runs (`AgentConfig`: model, tools, max_steps, temperature)."""

    model: str | None = None
    tools: frozenset[str] | None = None  # None: every registered tool
    max_steps: int | None = None
    temperature: float | None = None

    @classmethod
    def of(cls, agent: Agent, overrides: dict[str, Any] | None = None) -> AgentProfile:
        config = configuration(agent, overrides)
        model, tools, steps, temperature = (config.get(k) for k in ("model", "tools", "max_steps", "temperature"))
        return cls(
            model=model if isinstance(model, str) and model else None,
            tools=frozenset(t for t in tools if isinstance(t, str)) if isinstance(tools, list) and tools else None,
            max_steps=steps if isinstance(steps, int) and steps > 0 else None,
            temperature=float(temperature) if isinstance(temperature, int | float) else None,
        )

    def offers(self, tool: Tool) -> bool:
        return self.tools is None or tool.name in self.tools


@functools.lru_cache(maxsize=1024)
def _parameters_schema(params: type[BaseModel]) -> dict[str, Any]:
    """A tool's JSON Schema, built once per parameters model: pydantic takes milliseconds to build it,
    on the event loop, and every turn of every chat needs it (200 chats starting together stalled
    every stream). Treat the result as read-only (the providers only serialize it)."""
    schema = params.model_json_schema(by_alias=True)
    schema.pop("title", None)
    return schema


def tool_specs(registry: ToolRegistry, profile: AgentProfile | None = None) -> tuple[ToolSpec, ...]:
    specs = []
    for tool in registry.all():
        if profile is not None and not profile.offers(tool):
            continue
        schema = dict(_parameters_schema(tool.params))
        specs.append(ToolSpec(name=tool.name, description=tool.description, parameters=schema))
    return tuple(specs)


def configuration(agent: Agent, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The agent's configuration, with an A/B variant's overrides on top."""
    config = dict(agent.configuration) if isinstance(agent.configuration, dict) else {}
    config.update(overrides or {})
    return config


def system_prompt(agent: Agent, overrides: dict[str, Any] | None = None) -> str:
    configured = configuration(agent, overrides).get("system_prompt")
    if isinstance(configured, str) and configured.strip():
        return configured
    about = f" {agent.description}" if agent.description else ""
    return (
        f"You are {agent.name}, an Atom agent.{about} Use the tools when they help; a tool result may say a call "
        "is denied or waiting for a person's approval: tell the user so instead of retrying it."
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_TOOL_RESULT_CHARS else text[:MAX_TOOL_RESULT_CHARS] + "... [truncated]"


class AgentRuntime:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        llm: LLMSource,
        registry: ToolRegistry | None = None,
        prices: Any = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.source = llm
        self.registry = registry or runtime_tools.current()
        self.prices = prices

    async def run(
        self,
        request: RunRequest,
        emit: Emit = _discard,
        *,
        hooks: StepHooks | None = None,
        recorder: DryRunRecorder | None = None,
    ) -> RunResult:
        """Run to the end. Raises only before the execution exists (unknown agent or session; an automated
        run routed elsewhere: `routing.TriggerRouted`); afterwards every outcome, a cancellation included,
        is recorded (a cancellation is re-raised). `hooks`: a supervisor's, called around each tool call.
        `recorder`: a dry run (training/recorder.py) — side-effecting calls are recorded, not executed."""
        if request.trigger_kind is TriggerKind.AUTOMATED and not request.routed:
            return await routing.run_automated(self, request, emit)
        async with self.db.session_scope() as session:
            agent = await agents_service.resolve_ref(session=session, ref=request.agent_ref)
            history: list[Message] = []
            if request.session_id is not None:
                chat = await chat_service.get_session(session=session, session_id=request.session_id)
                if chat.agent_id != agent.id:
                    raise InvalidInput("This chat session belongs to another agent.", code="CHAT_SESSION_AGENT")
                rows = await chat_service.messages(
                    session=session, session_id=request.session_id, limit=self.settings.chat_history_messages
                )
                history = [chat_service.to_message(r) for r in rows]
            streaming = request.stream and await self._may_stream(session, agent, request)
            variant = (
                await abtests.choose(
                    session=session, agent_id=agent.id, user_id=request.user_id, session_id=request.session_id
                )
                if recorder is None
                else None
            )
            overrides = variant.overrides if variant is not None else None
            execution = AgentExecution(
                agent_id=agent.id,
                session_id=request.session_id,
                parent_execution_id=request.parent_execution_id,
                user_id=request.user_id,
                status=ExecutionStatus.RUNNING.value,
                trigger=request.trigger,
                trigger_kind=request.trigger_kind.value,
                depth=request.depth,
                input=request.input,
                streamed=streaming,
                tool_calls=[],
                started_at=utcnow(),
            )
            session.add(execution)
            await session.flush()
            if variant is not None:
                await abtests.record_exposure(session=session, choice=variant, execution_id=execution.id)
            user_message = Message(role="user", content=request.input)
            if request.session_id is not None:
                await chat_service.add_message(
                    session=session, session_id=request.session_id, execution_id=execution.id, message=user_message
                )
            agent_id, profile = agent.id, AgentProfile.of(agent, overrides)
            # Active skills: named in the prompt, loaded and run through this run's tools (docs/skills.md)
            skills = await skill_tools.for_run(
                session=session, db=self.db, base=self.registry, agent_id=agent_id, offers=profile.offers
            )
            prompt = system_prompt(agent, overrides) + skills.prompt
            messages = [Message(role="system", content=prompt), *history, user_message]
            agent_name = agent.name
            execution_id = execution.id

        run = _Run(self, request, agent_id, profile, execution_id, streaming, hooks, skills.tools, recorder)
        # Progress in plain words (docs/guidance.md): every event also updates the run's operation.
        tracker = guidance_tracker.track(
            self.db,
            emit,
            execution_id=execution_id,
            agent_id=agent_id,
            agent_name=agent_name,
            task=request.input,
            max_steps=run.max_steps,
            user_id=request.user_id,
            private=request.session_id is not None,
        )
        emit = tracker.emit
        task = asyncio.current_task()
        if task is not None:
            active_runs[execution_id] = task
        emit(
            {
                "type": "start",
                "execution_id": execution_id,
                "session_id": request.session_id,
                "agent_id": agent_id,
                "streaming": streaming,
            }
        )
        try:
            return await run.execute(messages, emit)
        finally:
            active_runs.pop(execution_id, None)
            await tracker.close()

    async def _may_stream(self, session: Any, agent: Agent, request: RunRequest) -> bool:
        if not self.settings.streaming_governance_enabled:
            return True
        decision = await governance.check(
            session=session,
            agent_id=agent.id,
            action="stream_chat",
            context=GovernanceContext(trigger=TriggerKind.MANUAL, source="chat", actor_user_id=request.user_id),
            settings=self.settings,
        )
        return decision.allowed


class _Run:
    """The state of one run (text so far, tokens, tool calls) and its loop."""

    def __init__(
        self,
        runtime: AgentRuntime,
        request: RunRequest,
        agent_id: str,
        profile: AgentProfile,
        execution_id: str,
        streaming: bool,
        hooks: StepHooks | None = None,
        tools: ToolRegistry | None = None,
        recorder: DryRunRecorder | None = None,
    ) -> None:
        self.rt = runtime
        self.tools = tools if tools is not None else runtime.registry  # the process's, plus this run's skills'
        self.recorder = recorder
        self.settings = runtime.settings
        self.request = request
        self.agent_id = agent_id
        self.profile = profile
        self.agent_model = profile.model
        self.max_steps = min(self.settings.chat_max_steps, profile.max_steps or self.settings.chat_max_steps)
        self.execution_id = execution_id
        self.streaming = streaming
        self.text: list[str] = []
        self.steps = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost: float | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.calls: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self.saved_upto = 0  # text deltas already persisted to the chat session
        self.llm: ChatLLM | None = None
        self.emit: Emit = _discard
        self.hooks = hooks
        self.supervised_steps = 0

    # --- the loop ---------------------------------------------------------------------------

    async def execute(self, messages: list[Message], emit: Emit) -> RunResult:
        status, error, code = ExecutionStatus.COMPLETED, None, None
        self.emit = emit
        try:
            async with asyncio.timeout(self.settings.chat_max_seconds):
                await self._loop(messages, emit)
        except RunStopped as stop:
            status, error, code = stop.status, stop.message, stop.code
        except TimeoutError:
            status, code = ExecutionStatus.TIMEOUT, "RUN_TIMEOUT"
            error = f"The run took longer than ATOM_CHAT_MAX_SECONDS ({self.settings.chat_max_seconds:g} s)."
        except ProviderError as exc:
            status, error, code = ExecutionStatus.FAILED, exc.message, exc.code
        except AtomError as exc:
            status, error, code = ExecutionStatus.FAILED, exc.message, exc.code
        except asyncio.CancelledError:
            result = self._result(ExecutionStatus.CANCELLED, "The run was cancelled.", "RUN_CANCELLED")
            await asyncio.shield(self._finish(result))
            emit({"type": "error", "code": result.error_code, "message": result.error})
            emit(result.done_event())
            raise
        except Exception as exc:  # recorded, never lost; the message names the type only
            log.error("agent run failed", execution_id=self.execution_id, exc_info=exc)
            status, error, code = ExecutionStatus.FAILED, f"Internal error ({type(exc).__name__}).", "INTERNAL_ERROR"
        result = self._result(status, error, code)
        await self._finish(result)
        if not self.streaming and result.output:
            emit({"type": "message", "text": result.output})
        if error is not None:
            emit({"type": "error", "code": code, "message": error})
        emit(result.done_event())
        return result

    async def _loop(self, messages: list[Message], emit: Emit) -> None:
        self.llm = await self.rt.source.client(agent_id=self.agent_id, execution_id=self.execution_id)
        specs = tool_specs(self.tools, self.profile)
        while True:
            if self.steps >= self.max_steps:
                raise RunStopped(
                    "STEP_LIMIT",
                    f"The agent did not finish within its step bound ({self.max_steps} model calls; "
                    "ATOM_CHAT_MAX_STEPS or the agent's max_steps).",
                )
            remaining = self.settings.chat_max_tokens - self.input_tokens - self.output_tokens
            if remaining <= 0:
                raise RunStopped(
                    "TOKEN_LIMIT", f"The run used its ATOM_CHAT_MAX_TOKENS ({self.settings.chat_max_tokens}) tokens."
                )
            self.steps += 1
            emit({"type": "step", "step": self.steps, "max_steps": self.max_steps})
            to_send, _dropped = fit(messages, self.settings.chat_context_max_tokens)
            text, calls = await self._call_model(
                to_send, specs, min(remaining, self.settings.chat_max_output_tokens), emit
            )
            if not calls:
                if text:
                    await self._persist([Message(role="assistant", content=text)])
                return
            assistant = Message(role="assistant", content=text, tool_calls=tuple(calls))
            messages.append(assistant)
            results = [assistant]
            for call in calls:
                result = await self._tool(call, emit)
                messages.append(result)
                results.append(result)
            await self._persist(results)

    async def _call_model(
        self, messages: list[Message], specs: tuple[ToolSpec, ...], max_tokens: int, emit: Emit
    ) -> tuple[str, list[ToolCall]]:
        assert self.llm is not None
        routed = self.llm.stream(
            messages,
            tools=specs,
            model=self.request.model,
            agent_model=self.agent_model,
            max_tokens=max_tokens,
            temperature=self.profile.temperature,
        )
        parts: list[str] = []
        calls: list[ToolCall] = []
        streaming = self.streaming
        text = self.text
        events = aiter(routed)
        usage: Usage | None = None
        try:
            async for event in events:
                if type(event) is TextDelta:
                    parts.append(event.text)
                    text.append(event.text)
                    if streaming:
                        emit({"type": "token", "text": event.text})
                        # Let the client's forwarder send this token now, before this task reads the next chunk.
                        await asyncio.sleep(0)
                elif isinstance(event, ToolCall):
                    calls.append(event)
                elif isinstance(event, Usage):
                    usage = event
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:  # close the upstream request now, also when cancelled
                with contextlib.suppress(Exception):
                    await asyncio.shield(closer())
            self.provider = getattr(routed, "provider", None) or self.provider
            self.model = getattr(routed, "model", None) or self.model
            self._account(routed, usage)
        return "".join(parts), calls

    def _account(self, routed: Any, usage: Usage | None) -> None:
        """Tokens and cost of one call: as the gateway metered them (estimates for a cut-off call), else as reported."""
        metered = getattr(routed, "usage", None)
        if isinstance(metered, Usage):
            usage = metered
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
        if hasattr(routed, "cost_usd"):
            cost = routed.cost_usd
        elif usage is not None and self.rt.prices:
            cost = cost_usd(self.model or self.agent_model or "", usage, self.rt.prices)
        else:
            cost = None
        if cost is not None:
            self.cost = (self.cost or 0.0) + float(cost)

    # --- tools --------------------------------------------------------------------------------

    async def _tool(self, call: ToolCall, emit: Emit) -> Message:
        index, call, proposed = await self._supervise(call)
        emit({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments, "step": self.steps})
        record: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments, "step": self.steps}
        if index is not None:
            record["supervision_step"] = index
        if proposed is not None:
            record["model_arguments"] = proposed
        status, content, extra = await self._tool_outcome(call, emit, record)
        record["status"] = status
        self.calls.append(record)
        if index is not None:
            await self._supervised_outcome(index, call, status, extra)
        if proposed is not None:
            content = f"A supervisor corrected the arguments to {_short(call.arguments)}. {content}"
        event: dict[str, Any] = {"type": "tool_result", "id": call.id, "name": call.name, "status": status, **extra}
        if "decision" in record:  # governance's outcome (allow, deny, propose) and the action it governed
            event.update(action=record["action"], decision=record["decision"])
        emit(event)
        return Message(role="tool", content=content, tool_call_id=call.id)

    async def _tool_outcome(
        self, call: ToolCall, emit: Emit, record: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        tool = self.tools.get(call.name)
        if tool is None or not self.profile.offers(tool):
            names = ", ".join(t.name for t in self.tools.all() if self.profile.offers(t))
            message = f"There is no tool named {call.name!r}. Available tools: {names}."
            return "unknown_tool", message, {"error": message}
        try:
            params = tool.validate(call.arguments)
        except InvalidInput as exc:
            fields = "; ".join(f"{f['field']}: {f['message']}" for f in exc.details.get("fields", []))
            message = f"Invalid arguments for {tool.name}: {fields}. Correct them and call the tool again."
            return "invalid_arguments", message, {"error": message}
        action = tool.governance_action(params)
        record["action"] = action
        if self.recorder is not None and self.recorder.side_effecting(action):
            record["decision"] = "recorded"
            return "recorded", self.recorder.record(tool.name, action, call.arguments), {"recorded": True}
        context = GovernanceContext(
            trigger=self.request.trigger_kind,
            source="chat",
            actor_user_id=self.request.user_id,
            proposal_id=self.request.proposal_id,
            supervision_session_id=self.request.supervision_session_id,
        )
        async with self.rt.db.session_scope() as session:
            decision = await governance.check(
                session=session, agent_id=self.agent_id, action=action, context=context, settings=self.settings
            )
            record["decision"] = decision.outcome.value
            if decision.outcome is Outcome.PROPOSE:
                proposal = await proposals.create(
                    session=session,
                    agent_id=self.agent_id,
                    kind=ProposalKind.ACTION,
                    plan=[PlanStep(action=tool.name, params=call.arguments, pin=tool.pin).as_json()],
                    source="chat",
                    blocked_trigger_id=None,
                    settings=self.settings,
                )
                proposal_id = proposal.id
        if decision.allowed:
            return await self._run_tool(tool, params)
        if decision.outcome is Outcome.PROPOSE:
            record["proposal_id"] = proposal_id
            emit(
                {
                    "type": "proposal",
                    "proposal_id": proposal_id,
                    "id": call.id,
                    "name": tool.name,
                    "reason": decision.reason,
                    "agent_id": self.agent_id,
                    "execution_id": self.execution_id,
                }
            )
            message = (
                f"Pending approval: {tool.name} was not run. Proposal {proposal_id} holds this exact call and runs "
                "only when a person approves it. Tell the user it is waiting for approval."
            )
            return "pending_approval", message, {"proposal_id": proposal_id, "error": message}
        message = f"Denied by governance: {decision.reason} Do not retry this call."
        record["reason_code"] = decision.reason_code
        return "denied", message, {"error": message, "reason_code": decision.reason_code}

    async def _supervise(self, call: ToolCall) -> tuple[int | None, ToolCall, dict[str, Any] | None]:
        """In a supervision session: the supervisor may pause before the call, correct its arguments or
        terminate the run. Returns the call's step index, the call to make, and the model's own arguments
        when they were corrected."""
        tool = self.tools.get(call.name)
        if self.hooks is None or tool is None or not self.profile.offers(tool):
            return None, call, None
        index = self.supervised_steps
        self.supervised_steps += 1
        step = await self.hooks.before_step(index, PlanStep(action=call.name, params=call.arguments))
        if step is None:
            raise RunStopped(routing.TERMINATED, "The supervisor terminated the run.", ExecutionStatus.CANCELLED)
        if step.params == call.arguments:
            return index, call, None
        return index, ToolCall(id=call.id, name=call.name, arguments=dict(step.params)), call.arguments

    async def _supervised_outcome(self, index: int, call: ToolCall, status: str, extra: dict[str, Any]) -> None:
        assert self.hooks is not None
        output = extra.get("output")
        await self.hooks.after_step(
            StepOutcome(
                index,
                call.name,
                call.arguments,
                "done" if status == "ok" else "denied" if status == "denied" else "failed",
                output=output if isinstance(output, dict) or output is None else {"result": output},
                error=extra.get("error"),
                reason_code=extra.get("reason_code"),
            )
        )

    async def _run_tool(self, tool: Tool, params: Any) -> tuple[str, str, dict[str, Any]]:
        context = ToolContext(
            settings=self.settings,
            agent_id=self.agent_id,
            execution_id=self.execution_id,
            depth=self.request.depth,
            delegate=self._delegate,
            session_id=self.request.session_id,
            db=self.rt.db,
        )
        token = current_tool_context.set(context)
        extra: dict[str, Any]
        try:
            async with asyncio.timeout(tool.timeout(self.settings)):
                output = await tool.handler(params)
            status, content, extra = "ok", _short(output), {"output": output}
        except TimeoutError:
            message = f"{tool.name} did not finish within {tool.timeout(self.settings):g} s."
            status, content, extra = "failed", message, {"error": message}
        except AtomError as exc:
            status, content, extra = (
                "failed",
                f"{tool.name} failed: {exc.message}",
                {"error": exc.message, "code": exc.code},
            )
        except Exception as exc:  # a tool's own failure is the call's outcome, told to the model
            log.error("tool failed", tool=tool.name, execution_id=self.execution_id, exc_info=exc)
            message = f"{tool.name} failed ({type(exc).__name__})."
            status, content, extra = "failed", message, {"error": message}
        finally:
            current_tool_context.reset(token)
        if self.recorder is not None:  # a dry run: the training session's score is its confidence change
            return status, content, extra
        delta = self.settings.confidence_action_success if status == "ok" else self.settings.confidence_action_failure
        async with self.rt.db.session_scope() as session:
            await agents_service.record_confidence(
                session=session,
                agent_id=self.agent_id,
                delta=delta,
                reason=f"{tool.name} {status}",
                source="action",
                source_id=self.execution_id,
                settings=self.settings,
            )
        return status, content, extra

    async def _delegate(self, agent_ref: str, task: str) -> dict[str, Any]:
        sub = RunRequest(
            agent_ref=agent_ref,
            input=task,
            trigger="delegation",
            trigger_kind=TriggerKind.AUTOMATED,  # another agent asked: an automated trigger (RULES.md)
            user_id=self.request.user_id,
            parent_execution_id=self.execution_id,
            depth=self.request.depth + 1,
            model=None,
            stream=False,
        )
        runtime = AgentRuntime(
            db=self.rt.db, settings=self.settings, llm=self.rt.source, registry=self.rt.registry, prices=self.rt.prices
        )
        try:
            result = await runtime.run(sub, self._relay_proposal)
        except routing.TriggerRouted as routed:  # e.g. a STUDENT delegate: routed to training, nothing ran
            return {"agent": agent_ref, "status": routed.code.lower(), **routed.details}
        return {
            "agent": agent_ref,
            "execution_id": result.execution_id,
            "status": result.status.value,
            "output": result.output,
            "error": result.error,
        }

    def _relay_proposal(self, event: dict[str, Any]) -> None:
        """A delegated run's proposals are shown to this run's client too (its other events stay on its record)."""
        if event.get("type") == "proposal":
            self.emit(event)

    # --- records ------------------------------------------------------------------------------

    async def _persist(self, new: list[Message]) -> None:
        self.saved_upto = len(self.text)
        if self.request.session_id is None:
            return
        async with self.rt.db.session_scope() as session:
            for message in new:
                await chat_service.add_message(
                    session=session, session_id=self.request.session_id, execution_id=self.execution_id, message=message
                )

    def _result(self, status: ExecutionStatus, error: str | None, code: str | None) -> RunResult:
        return RunResult(
            execution_id=self.execution_id,
            status=status,
            output="".join(self.text),
            error=error,
            error_code=code,
            streamed=self.streaming,
            steps=self.steps,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            tool_calls=self.calls,
        )

    async def _finish(self, result: RunResult) -> None:
        """Write the outcome; a partial answer of a failed run is also kept in the chat session."""
        async with self.rt.db.session_scope() as session:
            row = await chat_service.get_execution(session=session, execution_id=self.execution_id)
            row.status = result.status.value
            row.output = result.output
            row.error = result.error
            row.error_code = result.error_code
            row.provider = self.provider
            row.model = self.model
            row.steps = result.steps
            row.input_tokens = result.input_tokens
            row.output_tokens = result.output_tokens
            row.cost_usd = result.cost_usd
            row.duration_ms = result.duration_ms
            row.tool_calls = list(result.tool_calls)
            row.finished_at = utcnow()
            unsaved = "".join(self.text[self.saved_upto :])
            if unsaved and self.request.session_id is not None:  # the partial answer of a failed step
                await chat_service.add_message(
                    session=session,
                    session_id=self.request.session_id,
                    execution_id=self.execution_id,
                    message=Message(role="assistant", content=unsaved),
                )
            await audit.record(
                session=session,
                actor=audit.Actor.agent(self.agent_id),
                action="agent.execute",
                resource_type="agent_execution",
                resource_id=self.execution_id,
                decision=result.status.value,
                reason=result.error,
                details={
                    "trigger": self.request.trigger,
                    "steps": result.steps,
                    "tool_calls": len(result.tool_calls),
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                },
            )
