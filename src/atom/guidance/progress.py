"""The progress of an agent run in plain words, folded from the runtime's events (pure: no I/O).

The agent runtime's events (docs/chat.md: start, step, tool_call, tool_result, error, done) go
through `AgentRunProgress.apply`, which keeps: step n of at most m (m = the run's step bound, so the
total is an upper bound until the run ends), the percent, what is happening, why, and what comes
next, and one entry per model call and tool call. Tokens change nothing here and are skipped first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from atom.db.base import utcnow

MAX_ENTRIES = 60  # the newest entries are kept; a run has at most max_steps model calls anyway
MAX_TEXT = 300
REQUEST_TOOLS = ("request_decision", "request_permission")
FINISHED = ("completed", "failed", "cancelled", "timeout")
FAILED_TOOL = ("failed", "denied", "invalid_arguments", "unknown_tool")


def short(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def permission_question(action: str) -> str:
    """How a permission request is put to a person (the request and the run's progress say the same)."""
    action = action.strip()
    return action if action.endswith("?") else f"May the agent {action}?"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass
class AgentRunProgress:
    execution_id: str
    agent_id: str
    agent_name: str
    task: str
    max_steps: int
    user_id: str | None = None
    private: bool = False
    status: str = "running"
    step: int = 0
    what: str = "Starting"
    why: str = ""
    next: str = ""
    error: str | None = None
    error_code: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def title(self) -> str:
        return short(f"{self.agent_name}: {self.task}", 200)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def total(self) -> int:
        return max(self.step, 1) if self.finished else max(self.max_steps, self.step, 1)

    @property
    def bounded(self) -> bool:
        return not self.finished

    @property
    def percent(self) -> int:
        if self.status == "completed":
            return 100
        done = self.step if self.finished else max(self.step - 1, 0)
        return min(100, int(100 * done / max(self.max_steps, 1)))

    def apply(self, event: dict[str, Any]) -> bool:
        """Fold one event in; False when it changes nothing (tokens, unknown types)."""
        kind = event.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None or self.finished:
            return False
        handler(self, event)
        self.seq += 1
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[: len(self.entries) - MAX_ENTRIES]
        return True

    # --- events ---------------------------------------------------------------------------

    def _start(self, event: dict[str, Any]) -> None:
        self.what = "Starting"
        self.why = f"{self.agent_name} was asked: “{short(self.task, 160)}”"
        self.next = f"The agent decides what to do first (step 1 of at most {self.max_steps})."

    def _step(self, event: dict[str, Any]) -> None:
        self._close_model_step()
        n = int(event.get("step") or self.step + 1)
        self.max_steps = int(event.get("max_steps") or self.max_steps)
        self.step = n
        self.entries.append(
            {"kind": "model", "key": f"step-{n}", "label": f"Step {n}: thinking", "status": "running", "detail": None}
        )
        self.what = f"Thinking (step {n} of at most {self.max_steps})"
        self.why = (
            "The agent reads the request and decides how to answer it."
            if n == 1
            else "The agent reads the request and what its tools returned so far, and decides the next move."
        )
        self.next = "It answers, or calls a tool."

    def _tool_call(self, event: dict[str, Any]) -> None:
        self._close_model_step()
        name = str(event.get("name") or "tool")
        raw = event.get("arguments")
        arguments: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self.entries.append(
            {
                "kind": "tool",
                "key": str(event.get("id") or f"call-{len(self.entries)}"),
                "label": name,
                "status": "running",
                "detail": short(arguments, 200),
            }
        )
        if name in REQUEST_TOOLS:
            action = arguments.get("action")
            question = arguments.get("question") or (
                permission_question(action) if isinstance(action, str) and action else "a question"
            )
            default = arguments.get("default", "deny" if name == "request_permission" else "")
            self.what = f"Waiting for a person to answer: “{short(question, 160)}”"
            self.why = "The agent asked a person before going on" + (
                f"; without an answer in time it goes on with “{short(default, 60)}”." if default else "."
            )
            self.next = "Answer it on the Requests page; the answer goes back to the agent."
            return
        self.what = f"Running the tool {name}"
        self.why = f"The agent chose {name} with {short(arguments, 160)}."
        self.next = "The result goes back to the agent."

    def _tool_result(self, event: dict[str, Any]) -> None:
        name = str(event.get("name") or "tool")
        status = str(event.get("status") or "ok")
        entry = self._entry(str(event.get("id") or ""))
        error = event.get("error")
        if entry is not None:
            entry["status"] = status
            if status in FAILED_TOOL and error:
                entry["error"] = short(error, 1000)
                entry["error_code"] = _code(event, status)
        if status == "ok":
            self.what = f"{name} finished"
            self.next = "The agent reads the result and decides what to do next."
        elif status == "pending_approval":
            self.what = f"{name} is waiting for a person's approval"
            self.why = (
                f"The agent's maturity needs a person to approve this call (proposal {event.get('proposal_id')})."
            )
            self.next = "The agent says it is waiting; the call runs only when a person approves it."
        elif status == "denied":
            self.what = f"{name} was refused by governance"
            self.why = short(error or "The agent may not perform it.")
            self.next = "The agent is told why and does not retry it."
        else:
            self.what = f"{name} failed"
            self.why = short(error or status)
            self.next = "The agent sees the failure and may correct itself; what to do is shown with the step."

    def _error(self, event: dict[str, Any]) -> None:
        self.error = short(event.get("message") or "", 1000) or None
        self.error_code = str(event.get("code")) if event.get("code") else None

    def _done(self, event: dict[str, Any]) -> None:
        self._close_model_step()
        self.status = str(event.get("status") or "completed")
        self.step = int(event.get("steps") or self.step)
        self.error = short(event["error"], 1000) if event.get("error") else self.error
        self.error_code = str(event["error_code"]) if event.get("error_code") else self.error_code
        self.finished_at = utcnow()
        if self.status == "completed":
            self.what = f"Finished in {_plural(self.step, 'step')}"
            self.why = "The agent answered without needing another tool."
            self.next = "Nothing: the run is over."
        elif self.status == "cancelled":
            self.what = "Cancelled"
            self.why = self.error or "The run was cancelled."
            self.next = "Nothing: the run was stopped."
        else:
            self.what = "Timed out" if self.status == "timeout" else "Failed"
            self.why = self.error or "The run did not finish."
            self.next = "See what to do below."

    # --- helpers --------------------------------------------------------------------------

    def _entry(self, key: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.entries) if e["key"] == key), None)

    def _close_model_step(self) -> None:
        for entry in reversed(self.entries):
            if entry["kind"] == "model":
                if entry["status"] == "running":
                    entry["status"] = "done"
                return

    # --- storage --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The columns of the operation row (guidance_operations)."""
        return {
            "subject_id": self.execution_id,
            "agent_id": self.agent_id,
            "user_id": self.user_id,
            "private": self.private,
            "title": self.title,
            "status": self.status,
            "step": self.step,
            "total": self.total,
            "bounded": self.bounded,
            "percent": self.percent,
            "what": self.what,
            "why": self.why,
            "next": self.next,
            "error": self.error,
            "error_code": self.error_code,
            "steps": [dict(e) for e in self.entries],
            "seq": self.seq,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def _code(event: dict[str, Any], status: str) -> str:
    code = event.get("code") or event.get("reason_code")
    if code:
        return str(code)[:64]
    return status.upper()


_HANDLERS = {
    "start": AgentRunProgress._start,
    "step": AgentRunProgress._step,
    "tool_call": AgentRunProgress._tool_call,
    "tool_result": AgentRunProgress._tool_result,
    "error": AgentRunProgress._error,
    "done": AgentRunProgress._done,
}
