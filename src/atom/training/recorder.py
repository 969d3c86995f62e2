"""Dry runs of an agent (training scenarios): side-effecting tool calls are recorded, never executed.

The agent runtime (`atom.chat.runtime`) asks the recorder about every validated tool call of a run it
was given one for. A call whose governed action is side-effecting — any complexity above 1 (RULES.md:
LOW actions are the reads) or an action the catalogue does not know (fail closed) — is recorded here
and the model is told it was recorded, not run; governance is not asked to allow it, since nothing
happens. Read-only calls run as usual, through governance. A dry run writes no action-outcome ledger
rows and takes no part in A/B tests: its only confidence change is the training session's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Classify = Callable[[str], tuple[int, bool]]
READ_ONLY_COMPLEXITY = 1


class DryRunRecorder:
    def __init__(self, classify: Classify) -> None:
        self.classify = classify
        self.calls: list[dict[str, Any]] = []

    def side_effecting(self, action: str) -> bool:
        complexity, known = self.classify(action)
        return not known or complexity > READ_ONLY_COMPLEXITY

    def record(self, tool: str, action: str, arguments: dict[str, Any]) -> str:
        """Keep the call; what the model sees as the tool's result."""
        self.calls.append({"tool": tool, "action": action, "arguments": arguments})
        return json.dumps(
            {
                "dry_run": True,
                "recorded": True,
                "tool": tool,
                "note": "This is a training dry run: the call was recorded, not executed. Carry on with the task "
                "as if it had succeeded.",
            }
        )
