"""Skills over the wire: imports, the registry's rows, a version's findings, trust/ban, runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atom.skills.bundle import MAX_FILE_BYTES, MAX_FILES

HASH_PATTERN = r"^[0-9a-f]{64}$"


class SkillImport(BaseModel):
    """One skill as JSON: its SKILL.md and bundled text files."""

    model_config = ConfigDict(extra="forbid")

    folder_name: str = Field(min_length=1, max_length=100, description="Names the skill when SKILL.md does not.")
    skill_md: str = Field(min_length=1, max_length=MAX_FILE_BYTES)
    files: dict[str, str] = Field(default_factory=dict, max_length=MAX_FILES - 1)
    update: bool = Field(default=False, description="Store as a new version of an installed skill of this name.")


class ImportOutcomeRead(BaseModel):
    name: str
    source: str
    status: Literal["created", "updated", "unchanged", "error"]
    skill_id: str | None = None
    version_id: str | None = None
    verdict: str | None = None
    error_code: str | None = None
    message: str | None = None


class ImportReport(BaseModel):
    items: list[ImportOutcomeRead]
    verdicts: dict[str, int] = Field(description="How many imported versions got each verdict (or scan_failed).")


class VersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    content_hash: str
    state: str
    kind: str
    description: str
    verdict: str | None
    scan_error: str | None
    created_at: datetime


class SkillRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    state: str
    active_version_id: str | None
    latest_version_id: str | None
    created_at: datetime
    updated_at: datetime
    latest: VersionSummary | None = None
    findings: dict[str, int] = Field(default_factory=dict, description="Latest version's findings by severity.")
    update_pending: bool = Field(default=False, description="The latest version is not the trusted one.")


class SkillVersionRead(VersionSummary):
    skill_id: str
    manifest: dict[str, Any]
    warnings: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    scanner_version: str | None
    scanned_at: datetime | None
    trusted_by: str | None
    trusted_at: datetime | None
    source: str
    skill_md: str
    files: dict[str, str]


class TrustRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_hash: str = Field(pattern=HASH_PATTERN, description="The hash of the version whose findings you read.")


class BanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = Field(default=None, max_length=36, description="Run as this agent (governed).")
    script: str | None = Field(default=None, max_length=300)
    args: list[str] = Field(default_factory=list, max_length=32)
    stdin: str = Field(default="", max_length=1024 * 1024)
    timeout_s: float | None = Field(default=None, gt=0, le=300)


class DecisionRead(BaseModel):
    allowed: bool
    reason_code: str
    reason: str
    complexity: int
    required_level: str


class RunRead(BaseModel):
    skill: str
    version: int
    content_hash: str
    script: str
    status: Literal["completed", "failed", "denied"]
    exit_code: int | None = None
    violation: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float | None = None
    confinement: dict[str, str] = Field(default_factory=dict)
    decision: DecisionRead | None = None


class SkillInstructionRead(BaseModel):
    name: str
    description: str
    version_id: str
    kind: str = Field(description="`prompt` (instructions only) or `code` (bundled scripts, run in the sandbox).")


class SkillToolRead(BaseModel):
    name: str
    skill: str
    description: str
    parameters: dict[str, Any]
    version_id: str


class AgentSkillsRead(BaseModel):
    instructions: list[SkillInstructionRead]
    tools: list[SkillToolRead]


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$",
        description="A model a configured provider serves (default: the gateway's routing).",
    )


class ReviewOutcomeRead(BaseModel):
    status: Literal["completed", "failed"] = Field(description="failed: the version has no verdict (Untrusted).")
    provider: str | None
    model: str | None
    llm_verdict: str | None = Field(description="The reviewer's own verdict; the version's is the merged one.")
    summary: str | None
    findings: int = Field(description="Findings the reviewer reported (stored with source `llm`).")
    error: str | None
    partial: list[str] = Field(description="Files the reviewer saw only in part or not at all (input bound).")


class ReviewRead(BaseModel):
    review: ReviewOutcomeRead
    version: SkillVersionRead
