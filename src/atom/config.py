"""Settings: every knob Atom has, read from ATOM_* environment variables and `.env`.

`get_settings()` is the only place the environment is read; tests build `Settings(...)` directly.
Each field's description is the documentation shown in the README settings table.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
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
    QUEUE = "queue"


class EmbeddingProvider(StrEnum):
    LOCAL = "local"
    PROVIDER = "provider"


class CookieSecure(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


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
    auth_cache_ttl_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds an authenticated API key is remembered in-process (0: off). Revoking a key, disabling"
            " a user or changing a role clears it in every process at once (event bus; SQLite marker file);"
            " on PostgreSQL it needs Redis (off without it, and while Redis is unreachable)."
        ),
    )
    default_agent_id: str | None = Field(
        default=None,
        description="Agent used when a request names none and no session or workflow decides.",
    )

    maturity_intern_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Confidence at which an agent is INTERN."
    )
    maturity_supervised_threshold: float = Field(
        default=0.7, gt=0, lt=1, description="Confidence at which an agent is SUPERVISED (above the INTERN one)."
    )
    maturity_autonomous_threshold: float = Field(
        default=0.9, gt=0, le=1, description="Confidence at which an agent is AUTONOMOUS (above the SUPERVISED one)."
    )
    initial_confidence: float = Field(
        default=0.3, ge=0, le=1, description="Confidence of a new agent (STUDENT: below the INTERN threshold)."
    )
    confidence_action_success: float = Field(default=0.01, description="Confidence change for a successful action.")
    confidence_action_failure: float = Field(default=-0.02, description="Confidence change for a failed action.")
    confidence_proposal_approved: float = Field(
        default=0.05, description="Confidence change when a proposal is approved unchanged."
    )
    confidence_proposal_rejected: float = Field(
        default=-0.10, description="Confidence change when a proposal is rejected."
    )
    confidence_correction_trusted: float = Field(
        default=-0.10,
        description="Confidence change for a correction accepted from a trusted reviewer (approver or higher): "
        "a correction given as feedback, or an approver who modifies a proposal's plan before approving it.",
    )
    confidence_training_bands: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 0.05), (0.3, 0.10), (0.5, 0.15), (0.7, 0.20)],
        description="JSON list of `[min_performance, change]`: a completed training with performance p moves "
        "confidence by the change of the highest band whose min_performance p reaches. Default "
        "`[[0, 0.05], [0.3, 0.1], [0.5, 0.15], [0.7, 0.2]]`.",
    )
    confidence_supervision_rating_divisor: float = Field(
        default=40.0,
        gt=0,
        description="Supervision completed with rating r (1-5) and n interventions moves confidence by "
        "max(0, (r - 1) / DIVISOR - min(CAP, PENALTY * n)): this is DIVISOR.",
    )
    confidence_supervision_intervention_penalty: float = Field(
        default=0.01, ge=0, le=1, description="PENALTY per intervention in the supervision formula."
    )
    confidence_supervision_penalty_cap: float = Field(
        default=0.05, ge=0, le=1, description="CAP of the interventions' penalty in the supervision formula."
    )
    training_default_hours: float = Field(
        default=40.0, gt=0, description="Training estimate when no training of the agent's category has completed yet."
    )

    # --- feedback and A/B tests (docs/feedback.md) -------------------------------------
    confidence_correction_untrusted: float = Field(
        default=-0.02, description="Confidence change for anyone else's correction, once an approver accepts it."
    )
    confidence_rating_trusted: float = Field(
        default=0.005, description="Confidence change for a rating of 4 or 5 from a trusted reviewer."
    )
    feedback_rating_daily_cap: int = Field(
        default=3, ge=0, description="High ratings per agent, reviewer and UTC day that move confidence."
    )
    ab_min_sample: int = Field(
        default=100, ge=2, description="Observations per variant before an A/B test may name a winner."
    )

    # --- graduation (docs/graduation.md) -------------------------------------------------
    graduation_intern_min_episodes: int = Field(
        default=10, ge=0, description="Episodes an agent needs before it can graduate to INTERN."
    )
    graduation_intern_max_intervention_rate: float = Field(
        default=0.5, ge=0, le=1, description="Highest share of episodes with an intervention allowed for INTERN."
    )
    graduation_intern_min_constitutional_score: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Lowest constitutional score (share of actions within the rules) for INTERN.",
    )
    graduation_supervised_min_episodes: int = Field(
        default=25, ge=0, description="Episodes an agent needs before it can graduate to SUPERVISED."
    )
    graduation_supervised_max_intervention_rate: float = Field(
        default=0.2, ge=0, le=1, description="Highest share of episodes with an intervention allowed for SUPERVISED."
    )
    graduation_supervised_min_constitutional_score: float = Field(
        default=0.85,
        ge=0,
        le=1,
        description="Lowest constitutional score (share of actions within the rules) for SUPERVISED.",
    )
    graduation_autonomous_min_episodes: int = Field(
        default=50, ge=0, description="Episodes an agent needs before it can graduate to AUTONOMOUS."
    )
    graduation_autonomous_max_intervention_rate: float = Field(
        default=0.0, ge=0, le=1, description="Highest share of episodes with an intervention allowed for AUTONOMOUS."
    )
    graduation_autonomous_min_constitutional_score: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="Lowest constitutional score (share of actions within the rules) for AUTONOMOUS.",
    )

    auto_promote: bool = Field(
        default=False,
        description="Promote an agent to its next level by itself when its readiness and a fresh graduation exam "
        "pass, checked each time one of its training sessions is scored (audited as `system:auto-promote`). "
        "Off: only a person promotes.",
    )

    # --- training scenarios (docs/training.md) --------------------------------------------
    training_judge_model: str | None = Field(
        default=None,
        max_length=200,
        description="The model the LLM judge of training scenarios asks for (default: the LLM router's default).",
    )
    training_judge_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="How long the LLM judge may take to score one scenario."
    )

    # --- workflows (docs/workflows.md) ---------------------------------------------------
    workflow_executor: WorkflowExecutorMode = Field(
        default=WorkflowExecutorMode.EMBEDDED,
        description="Where workflow steps run: `embedded` (an async worker pool inside `atom-os serve`) or `queue` "
        "(the API defers them to a job queue in PostgreSQL, `atom-os worker` processes run them; needs "
        "ATOM_REDIS_URL for events).",
    )
    workflow_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Steps the embedded worker pool runs at once (per process)."
    )
    worker_concurrency: int = Field(
        default=16, ge=1, le=1000, description="Steps one `atom-os worker` process runs at once."
    )
    workflow_queue_name: str = Field(
        default="atom:workflows",
        min_length=1,
        max_length=100,
        description="Job queue (in PostgreSQL) the API defers steps to and `atom-os worker` processes read.",
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

    # --- guidance (docs/guidance.md) -----------------------------------------------------------
    guidance_request_recheck_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="An agent waiting for a person's answer re-reads its request this often, besides being "
        "woken by the answer's event (an event lost in transit costs at most this long).",
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

    # --- episodic memory (docs/memory.md) ----------------------------------------------------
    memory_enabled: bool = Field(
        default=True,
        description="Episodic memory: load the embedding model at start-up and segment agent activity into "
        "episodes in the background. Off: the memory API answers 503.",
    )
    memory_embedding_provider: EmbeddingProvider = Field(
        default=EmbeddingProvider.LOCAL,
        description="`local` (the packaged int8 all-MiniLM-L6-v2, offline, sha256-checked) or `provider` (the "
        "OpenAI-compatible `/embeddings` of ATOM_MEMORY_EMBEDDING_LLM_PROVIDER).",
    )
    memory_embedding_llm_provider: str | None = Field(
        default=None, description="Name of the configured LLM provider whose `/embeddings` is used (provider mode)."
    )
    memory_embedding_model: str = Field(
        default="text-embedding-3-small", max_length=200, description="Embedding model asked of the provider."
    )
    memory_embedding_dim: int = Field(
        default=384, ge=8, le=8192, description="Vector size the provider model returns (local: always 384)."
    )
    memory_model_path: Path | None = Field(
        default=None,
        description="Another copy of the local model file (`model.onnx`); its sha256 must still match the pinned one.",
    )
    memory_embedding_threads: int = Field(
        default=1, ge=1, le=64, description="ONNX runtime threads of the local embedding model."
    )
    memory_vector_dir: Path | None = Field(
        default=None, description="LanceDB directory of episode vectors (default `<data_dir>/memory.lance`)."
    )
    memory_index_max_rows: int = Field(
        default=200_000,
        ge=0,
        le=50_000_000,
        description="Most episodes held in the in-process search index (about 1.8 KB each with 384-dim vectors); "
        "agents beyond it are searched in LanceDB, slower. 0: always LanceDB.",
    )
    memory_segment_gap_minutes: float = Field(
        default=30.0, gt=0, description="A gap longer than this between events starts a new episode (RULES.md)."
    )
    memory_topic_similarity: float = Field(
        default=0.75, ge=0, le=1, description="Cosine similarity below which consecutive messages start a new episode."
    )
    memory_ingest_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often the background job segments new agent activity."
    )
    memory_ingest_batch: int = Field(
        default=200, ge=1, le=10_000, description="Most source records one ingestion pass reads per source."
    )
    memory_decay_after_days: float = Field(
        default=90.0, gt=0, description="Episodes older than this decay: max(0, 1 - age_days / 180) (RULES.md)."
    )
    memory_archive_after_days: float = Field(
        default=180.0, gt=0, description="Episodes older than this are archived (cold: vectors only, out of search)."
    )
    memory_consolidate_similarity: float = Field(
        default=0.85, gt=0, le=1, description="Episodes of one agent at least this similar are consolidated into one."
    )
    memory_maintenance_interval_hours: float = Field(
        default=24.0, gt=0, description="How often the in-process maintenance job (decay, archive, consolidate) runs."
    )
    memory_recall_max_tokens: int = Field(
        default=1500, ge=50, le=100_000, description="Most estimated tokens of recalled episodes put into a prompt."
    )

    # --- canvases (docs/canvas.md) ------------------------------------------------------------
    canvas_form_wait_s: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest an agent's present_form call waits for the person's submission (then it returns "
        "`timeout`); it also lifts that call's tool timeout above ATOM_CHAT_TOOL_TIMEOUT_S.",
    )
    canvas_lock_ttl_s: float = Field(
        default=60.0, gt=0, le=3600, description="A canvas lock taken by an agent expires after this many seconds."
    )

    # --- web dashboard (docs/dashboard.md) -----------------------------------------------------
    web_session_hours: float = Field(
        default=12.0, gt=0, le=720, description="A dashboard sign-in lasts at most this many hours."
    )
    web_session_idle_minutes: float = Field(
        default=60.0, gt=0, le=43_200, description="A dashboard session unused this long expires."
    )
    web_cookie_secure: CookieSecure = Field(
        default=CookieSecure.AUTO,
        description="Secure flag of the dashboard cookies: `auto` (when the request came over HTTPS), "
        "`always` or `never`.",
    )
    web_login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed sign-ins of one username within the window that lock it."
    )
    web_login_ip_max_failures: int = Field(
        default=20, ge=1, le=100_000, description="Failed sign-ins from one address within the window that block it."
    )
    web_live_recheck_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Live dashboard values are recomputed after every relevant event, and at least this often.",
    )
    web_login_window_minutes: float = Field(
        default=15.0, gt=0, le=10_080, description="Window in which failed sign-ins are counted; also the lock-out."
    )

    # Community skills: the sandbox that runs trusted code skills (docs/skills.md).
    skills_sandbox_backend: Literal["auto", "bubblewrap", "docker"] = Field(
        default="auto",
        description="Sandbox for code skills: `auto` or `bubblewrap`; `docker` is detected but not driven yet, so "
        "it refuses to run. Code never runs unconfined.",
    )
    skills_sandbox_cgroups: bool = Field(
        default=True,
        description="Limit memory and processes with a per-run cgroup (v2, else v1) when one is writable; "
        "otherwise (or false) RLIMIT_AS and RLIMIT_NPROC as uid 65534.",
    )
    skills_sandbox_memory_mb: int = Field(default=256, ge=16, le=8192, description="Memory limit of a skill run (MB).")
    skills_sandbox_pids: int = Field(default=64, ge=4, le=4096, description="Process/thread limit of a skill run.")
    skills_sandbox_timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="Default wall-clock (and CPU) limit of a skill run, in seconds."
    )
    skills_sandbox_max_timeout_s: float = Field(
        default=300.0, gt=0, le=300, description="Longest wall-clock limit a caller may ask for, in seconds."
    )
    skills_sandbox_output_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Cap on a skill run's stdout + stderr (bytes)."
    )

    @field_validator(
        "database_url",
        "redis_url",
        "default_agent_id",
        "smtp_host",
        "smtp_username",
        "smtp_from",
        "memory_embedding_llm_provider",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("workflow_executor", mode="before")
    @classmethod
    def _arq_is_gone(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "arq":
            raise ValueError(
                "`arq` is no longer an executor: the workers read a job queue in PostgreSQL now "
                "(docs/scale-out.md); set ATOM_WORKFLOW_EXECUTOR=queue on the API servers and every worker"
            )
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

    @field_validator("maturity_supervised_threshold", "maturity_autonomous_threshold", "initial_confidence")
    @classmethod
    def _thresholds_rise(cls, value: float, info: ValidationInfo) -> float:
        """Thresholds rise INTERN < SUPERVISED < AUTONOMOUS; a new agent starts below INTERN (a STUDENT)."""
        below, relation = {
            "maturity_supervised_threshold": ("maturity_intern_threshold", "above"),
            "maturity_autonomous_threshold": ("maturity_supervised_threshold", "above"),
            "initial_confidence": ("maturity_intern_threshold", "below"),
        }[str(info.field_name)]
        other = info.data.get(below)
        if other is None:  # that setting failed its own validation, which is reported instead
            return value
        if (relation == "above" and value <= other) or (relation == "below" and value >= other):
            raise ValueError(
                f"{value} must be {relation} ATOM_{below.upper()} ({other}); the maturity thresholds must rise: "
                "0 < ATOM_MATURITY_INTERN_THRESHOLD < ATOM_MATURITY_SUPERVISED_THRESHOLD < "
                "ATOM_MATURITY_AUTONOMOUS_THRESHOLD <= 1, and ATOM_INITIAL_CONFIDENCE below the INTERN one"
            )
        return value

    @field_validator("confidence_training_bands")
    @classmethod
    def _bands_rise(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        starts = [start for start, _ in value]
        if not value or starts[0] != 0 or any(b <= a for a, b in pairwise(starts)):
            raise ValueError("bands need rising min_performance values, the first 0, e.g. [[0, 0.05], [0.5, 0.1]]")
        if any(not 0 <= start <= 1 or not -1 <= change <= 1 for start, change in value):
            raise ValueError("each band is [min_performance in 0..1, change in -1..1]")
        return value

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
