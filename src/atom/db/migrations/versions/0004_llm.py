"""llm: provider configs, per-call usage, per-agent budgets

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30 21:33:38.737675
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_providers",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("models", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("key_secret", sa.String(length=200), nullable=True),
        sa.Column("healthy", sa.Boolean(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_llm_providers_name")),
    )
    op.create_table(
        "llm_usage",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("execution_id", sa.String(length=36), nullable=True),
        sa.Column("provider", sa.String(length=63), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_usage")),
    )
    with op.batch_alter_table("llm_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_llm_usage_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_usage_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_usage_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_usage_execution_id"), ["execution_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_usage_provider"), ["provider"], unique=False)

    op.create_table(
        "llm_budgets",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("daily_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("monthly_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_llm_budgets_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_llm_budgets")),
    )


def downgrade() -> None:
    op.drop_table("llm_budgets")
    with op.batch_alter_table("llm_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_llm_usage_provider"))
        batch_op.drop_index(batch_op.f("ix_llm_usage_execution_id"))
        batch_op.drop_index(batch_op.f("ix_llm_usage_day"))
        batch_op.drop_index(batch_op.f("ix_llm_usage_created_at"))
        batch_op.drop_index(batch_op.f("ix_llm_usage_agent_id"))

    op.drop_table("llm_usage")
    op.drop_table("llm_providers")
