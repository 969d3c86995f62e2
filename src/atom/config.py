"""Settings: every knob Atom has, read from ATOM_* environment variables and `.env`.

`get_settings()` is the only place the environment is read; tests build `Settings(...)` directly.
Each field's description is the documentation shown in the README settings table.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class WorkflowExecutorMode(StrEnum):
    EMBEDDED = "embedded"
    ARQ = "arq"


class QueuePolicy(StrEnum):
    WAIT = "wait"
    RUN_AND_NOTIFY = "run-and-notify"


def _default_data_dir() -> Path:
    return Path.home() / ".atom"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ATOM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- service -------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the SQLite file, key file, PID and log files (default `~/.atom`).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Empty: SQLite at `<data_dir>/atom.db`. `postgresql://user@host/db` uses asyncpg.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (`redis://127.0.0.1:6379/0`). Enables cross-process events; checked by readiness.",
    )
    host: str = Field(default="127.0.0.1", description="Address `atom-os serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `atom-os serve` binds.")
    log_level: LogLevel = Field(default=LogLevel.INFO, description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(
        default=LogFormat.AUTO,
        description="`json`, `console`, or `auto` (console on a terminal, JSON otherwise).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64, 32 bytes) that encrypts stored secrets. "
        "Empty: a key file `<data_dir>/secret.key` (mode 0600) is generated and used.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest accepted request body in bytes; larger -> 413.",
    )
    max_header_bytes: int = Field(
        default=32_768,
        ge=4096,
        le=1_048_576,
        description="Largest accepted request head (request line and headers) in bytes; larger -> 431.",
    )
    max_headers: int = Field(
        default=100, ge=16, le=1000, description="Most header lines accepted in one request; more -> 431."
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connection pool size.")
    db_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")

    # --- health ---------------------------------------------------------------------------
    health_db_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Readiness: the database ping must answer within this many seconds.",
    )
    health_disk_threshold_gb: float = Field(
        default=1.0,
        ge=0,
        description="Readiness: free disk in the data directory must stay above this (GiB).",
    )
    health_redis_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Readiness: the Redis ping must answer within this many seconds.",
    )

    # --- governance (RULES.md) ------------------------------------------------------------
    emergency_governance_bypass: bool = Field(
        default=False,
        description="Allow every agent action regardless of maturity. Each bypassed action is audited loudly.",
    )
    streaming_governance_enabled: bool = Field(
        default=True, description="Govern `stream_chat` (INTERN+). Off: every agent may stream."
    )
    canvas_governance_enabled: bool = Field(default=True, description="Govern canvas presentations.")
    form_governance_enabled: bool = Field(default=True, description="Govern canvas forms.")
    browser_governance_enabled: bool = Field(default=True, description="Govern browser actions.")
    auto_promote: bool = Field(
        default=False,
        description="Promote agents automatically when graduation readiness passes (audited).",
    )
    proposal_ttl_hours: float = Field(default=24.0, gt=0, description="Hours before a pending proposal expires.")
    supervised_queue_policy: QueuePolicy = Field(
        default=QueuePolicy.WAIT,
        description="When no supervisor is connected: `wait` in the supervised queue or `run-and-notify`.",
    )
    governance_cache_ttl_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a cached governance decision lives (invalidation is immediate).",
    )
    default_agent_id: str | None = Field(
        default=None,
        description="Agent used when a request names none and no session or workflow decides.",
    )

    maturity_intern_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Confidence at which an agent is INTERN."
    )
    maturity_supervised_threshold: float = Field(
        default=0.7, ge=0, le=1, description="Confidence at which an agent is SUPERVISED."
    )
    maturity_autonomous_threshold: float = Field(
        default=0.9, ge=0, le=1, description="Confidence at which an agent is AUTONOMOUS."
    )
    initial_confidence: float = Field(default=0.3, ge=0, le=1, description="Confidence of a new agent (STUDENT).")
    confidence_action_success: float = Field(default=0.01, description="Confidence change for a successful action.")
    confidence_action_failure: float = Field(default=-0.02, description="Confidence change for a failed action.")
    confidence_proposal_approved: float = Field(
        default=0.05, description="Confidence change when a proposal is approved unchanged."
    )
    confidence_proposal_rejected: float = Field(
        default=-0.10, description="Confidence change when a proposal is rejected."
    )
    training_default_hours: float = Field(
        default=40.0, gt=0, description="Training estimate when no training of the agent's category has completed yet."
    )

    # --- workflows (docs/workflows.md) ---------------------------------------------------
    workflow_executor: WorkflowExecutorMode = Field(
        default=WorkflowExecutorMode.EMBEDDED,
        description="Where workflow steps run: `embedded` (an async worker pool inside `atom-os serve`) or `arq` "
        "(the API enqueues on Redis, `atom-os worker` processes run them; needs ATOM_REDIS_URL).",
    )
    workflow_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Steps the embedded worker pool runs at once (per process)."
    )
    worker_concurrency: int = Field(
        default=16, ge=1, le=1000, description="Steps one `atom-os worker` process runs at once."
    )
    workflow_queue_name: str = Field(
        default="atom:workflows", min_length=1, max_length=100, description="Redis queue the arq workers read."
    )
    workflow_job_timeout_s: float = Field(
        default=300.0, gt=0, le=86_400, description="Longest a single workflow step may run; step timeouts are capped."
    )
    workflow_visibility_timeout_s: float = Field(
        default=330.0,
        gt=0,
        le=90_000,
        description="Seconds after which a step held by a worker that died is redelivered to another worker "
        "(must exceed ATOM_WORKFLOW_JOB_TIMEOUT_S).",
    )
    workflow_scheduler_enabled: bool = Field(
        default=True, description="Run the cron / wait / recovery scheduler in this process (serve and workers)."
    )
    workflow_scheduler_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the scheduler looks for due cron triggers and waits."
    )
    workflow_cron_grace_s: float = Field(
        default=60.0, ge=0, description="A cron fire later than this (downtime) is a missed fire: see `missed:`."
    )
    webhook_max_body_bytes: int = Field(
        default=262_144, ge=1, le=10_485_760, description="Largest webhook body accepted at /hooks; larger -> 413."
    )
    webhook_replay_window_s: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="Webhook timestamps older or newer than this are refused (401); a repeated signature within "
        "it is refused (409).",
    )
    http_action_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Default timeout of the http_request and webhook_call actions."
    )
    integration_max_retries: int = Field(
        default=3, ge=0, le=10, description="How often an integration call honours a 429 Retry-After before failing."
    )
    integration_max_retry_after_s: float = Field(
        default=30.0, ge=0, le=600, description="Longest Retry-After an integration call waits in place."
    )
    slack_api_base_url: str = Field(default="https://slack.com/api", description="Slack Web API base URL.")
    slack_token_secret: str = Field(
        default="slack_bot_token", description="Name of the secret holding the Slack bot token (xoxb-...)."
    )
    asana_api_base_url: str = Field(default="https://app.asana.com/api/1.0", description="Asana API base URL.")
    asana_token_secret: str = Field(
        default="asana_pat", description="Name of the secret holding the Asana personal access token."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for the send_email action.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587: submission with STARTTLS).")
    smtp_starttls: bool = Field(default=True, description="Require STARTTLS before authenticating and sending.")
    smtp_username: str | None = Field(default=None, description="SMTP login; empty: send without AUTH.")
    smtp_password_secret: str = Field(
        default="smtp_password", description="Name of the secret holding the SMTP password."
    )
    smtp_from: str | None = Field(default=None, description="Sender address of send_email (`Atom <ops@example.com>`).")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the SMTP server's certificate (default: the system store)."
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600, description="SMTP connect and command timeout.")

    # --- agent runtime and chat (docs/chat.md) ------------------------------------------------
    chat_max_steps: int = Field(
        default=8, ge=1, le=100, description="Most model calls one agent run may make (each tool round is one)."
    )
    chat_max_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="Longest one agent run may take; then it stops as `timeout`."
    )
    chat_max_tokens: int = Field(
        default=50_000, ge=100, description="Most tokens (input + output, all steps) one agent run may use."
    )
    chat_max_output_tokens: int = Field(
        default=1024, ge=16, le=200_000, description="Most output tokens asked of the model per call."
    )
    chat_context_max_tokens: int = Field(
        default=16_000,
        ge=256,
        description="Estimated tokens of conversation sent to the model; older turns are trimmed beyond it.",
    )
    chat_history_messages: int = Field(
        default=200, ge=1, le=10_000, description="Most earlier messages of a chat session loaded into a run."
    )
    chat_stream_buffer_events: int = Field(
        default=256,
        ge=8,
        le=100_000,
        description="Events queued per streaming client; tokens coalesce when a client lags, and a client this "
        "many events behind is disconnected and its run cancelled.",
    )
    chat_tool_timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Longest one tool call may run.")
    http_tool_allow_private: bool = Field(
        default=False,
        description="Let the http_request tool reach private, loopback and link-local addresses (off: refused).",
    )
    delegation_max_depth: int = Field(
        default=2, ge=0, le=10, description="How deep delegate_to_agent may nest (0: delegation refused)."
    )

    # --- LLM providers (src/atom/llm) --------------------------------------------------------
    llm_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="LLM provider timeout in seconds: connecting, the first byte and each gap between streamed "
        "chunks (a provider silent longer fails over as a timeout).",
    )
    llm_attempts_per_provider: int = Field(
        default=2, ge=1, le=10, description="Tries per LLM provider on timeout, 429 or 5xx before the next provider."
    )
    llm_backoff_base_s: float = Field(
        default=0.5, ge=0, le=60, description="First LLM retry delay in seconds; doubles per retry."
    )
    llm_backoff_max_s: float = Field(default=8.0, ge=0, le=600, description="Longest LLM retry delay in seconds.")
    llm_retry_after_cap_s: float = Field(
        default=30.0, ge=0, le=600, description="Longest `Retry-After` of a 429 an LLM retry honours."
    )
    llm_breaker_failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive retryable failures after which an LLM provider is skipped (circuit open).",
    )
    llm_breaker_cooldown_s: float = Field(
        default=30.0, ge=0, le=86_400, description="Seconds an LLM provider with an open circuit is skipped."
    )
    llm_tier_models: dict[str, str] = Field(
        default_factory=dict,
        description="JSON map of complexity tier (simple, moderate, complex, advanced) to model, used when neither "
        'the request nor the agent names a model, e.g. `{"simple": "gpt-4o-mini", "advanced": "gpt-4o"}`. '
        "An unmapped tier uses the nearest mapped tier above it, else below; none mapped: the first model of "
        "the first provider.",
    )
    llm_prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
            "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0},
            "gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6},
            "gpt-4.1": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
            "claude-3-5-haiku": {"input_per_mtok": 0.8, "output_per_mtok": 4.0},
            "claude-3-5-sonnet": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
            "claude-sonnet-4": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
            "deepseek-chat": {"input_per_mtok": 0.27, "output_per_mtok": 1.1},
            "gemini-2.0-flash": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},
        },
        description="JSON price table: model (or model-name prefix; the longest wins) -> `input_per_mtok` and "
        "`output_per_mtok` in USD per million tokens. Unpriced models are recorded with an unknown cost.",
    )
    llm_default_daily_budget_usd: float | None = Field(
        default=None,
        ge=0,
        description="Daily LLM budget in USD of an agent without its own budget; empty: unlimited.",
    )

    @field_validator(
        "database_url", "redis_url", "default_agent_id", "smtp_host", "smtp_username", "smtp_from", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("llm_tier_models")
    @classmethod
    def _known_tiers(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"simple", "moderate", "complex", "advanced"}
        if unknown:
            raise ValueError(f"unknown complexity tiers {sorted(unknown)}; use simple, moderate, complex, advanced")
        return value

    @field_validator("llm_prices")
    @classmethod
    def _prices_complete(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for model, entry in value.items():
            for key in ("input_per_mtok", "output_per_mtok"):
                if key not in entry or not 0 <= entry[key] < float("inf"):
                    raise ValueError(f"price of {model!r} needs {key} >= 0 (USD per million tokens)")
        return value

    @model_validator(mode="after")
    def _thresholds_rise(self) -> Settings:
        intern, supervised = self.maturity_intern_threshold, self.maturity_supervised_threshold
        if not 0 < intern < supervised < self.maturity_autonomous_threshold:
            raise ValueError(
                "maturity thresholds must rise: 0 < ATOM_MATURITY_INTERN_THRESHOLD < "
                "ATOM_MATURITY_SUPERVISED_THRESHOLD < ATOM_MATURITY_AUTONOMOUS_THRESHOLD"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL: SQLite in the data dir by default, asyncpg for PostgreSQL."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.data_dir / 'atom.db'}"
        url = self.database_url
        for prefix in (
            "postgresql://",
            "postgres://",
            "postgresql+psycopg://",
            "postgresql+psycopg2://",
        ):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "atom.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "atom.log"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
