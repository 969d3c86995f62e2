"""training: blocked triggers, proposals, supervision and training sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 01:21:25.637225
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocked_triggers",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("agent_level", sa.String(length=16), nullable=False),
        sa.Column("routed_to", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("trigger_payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("plan", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_blocked_triggers_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocked_triggers")),
    )
    with op.batch_alter_table("blocked_triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocked_triggers_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "supervision_sessions",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("plan", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("steps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("pending_correction", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("interventions", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.String(length=36), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_supervision_sessions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_sessions")),
    )
    with op.batch_alter_table("supervision_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervision_sessions_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervision_sessions_status"), ["status"], unique=False)

    op.create_table(
        "agent_proposals",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("blocked_trigger_id", sa.String(length=36), nullable=True),
        sa.Column("plan", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("original_plan_hash", sa.String(length=64), nullable=False),
        sa.Column("modified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("estimate_hours", sa.Float(), nullable=True),
        sa.Column("estimate_low_hours", sa.Float(), nullable=True),
        sa.Column("estimate_high_hours", sa.Float(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_proposals_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["blocked_trigger_id"],
            ["blocked_triggers.id"],
            name=op.f("fk_agent_proposals_blocked_trigger_id_blocked_triggers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_proposals")),
    )
    with op.batch_alter_table("agent_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_proposals_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_proposals_status"), ["status"], unique=False)

    op.create_table(
        "training_sessions",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("estimate_hours", sa.Float(), nullable=False),
        sa.Column("override_hours", sa.Float(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_hours", sa.Float(), nullable=True),
        sa.Column("performance", sa.Float(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_training_sessions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["agent_proposals.id"],
            name=op.f("fk_training_sessions_proposal_id_agent_proposals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sessions")),
        sa.UniqueConstraint("proposal_id", name=op.f("uq_training_sessions_proposal_id")),
    )
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_sessions_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_sessions_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_sessions_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_sessions_status"))
        batch_op.drop_index(batch_op.f("ix_training_sessions_category"))
        batch_op.drop_index(batch_op.f("ix_training_sessions_agent_id"))

    op.drop_table("training_sessions")
    with op.batch_alter_table("agent_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_agent_proposals_agent_id"))

    op.drop_table("agent_proposals")
    with op.batch_alter_table("supervision_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_sessions_status"))
        batch_op.drop_index(batch_op.f("ix_supervision_sessions_agent_id"))

    op.drop_table("supervision_sessions")
    with op.batch_alter_table("blocked_triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_triggers_agent_id"))

    op.drop_table("blocked_triggers")
