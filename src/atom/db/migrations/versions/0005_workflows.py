"""workflows: definitions, versions, triggers, runs, step runs

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25 01:31:54.763382
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("name", name=op.f("uq_workflows_name")),
    )
    op.create_table(
        "workflow_runs",
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("trigger_kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("trigger_id", sa.String(length=36), nullable=True),
        sa.Column("trigger_payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("inputs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=True),
        sa.Column("supervision_session_id", sa.String(length=36), nullable=True),
        sa.Column("actor_user_id", sa.String(length=36), nullable=True),
        sa.Column("chain_depth", sa.Integer(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name=op.f("fk_workflow_runs_workflow_id_workflows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
    )
    with op.batch_alter_table("workflow_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_runs_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_runs_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "workflow_triggers",
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("trigger_key", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("event_topic", sa.String(length=100), nullable=True),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_workflow_triggers_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_triggers")),
        sa.UniqueConstraint("workflow_id", "trigger_key", name=op.f("uq_workflow_triggers_workflow_id_trigger_key")),
    )
    with op.batch_alter_table("workflow_triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_triggers_event_topic"), ["event_topic"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_triggers_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_triggers_next_fire_at"), ["next_fire_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_triggers_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_format", sa.String(length=8), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_workflow_versions_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_versions")),
        sa.UniqueConstraint("workflow_id", "version", name=op.f("uq_workflow_versions_workflow_id_version")),
    )
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_versions_workflow_id"), ["workflow_id"], unique=False)

    op.create_table(
        "workflow_step_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("step_key", sa.String(length=63), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("dispatches", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("input", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("output", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("logs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("proposal_id", sa.String(length=36), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["workflow_runs.id"],
            name=op.f("fk_workflow_step_runs_run_id_workflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_step_runs")),
        sa.UniqueConstraint("run_id", "step_key", name=op.f("uq_workflow_step_runs_run_id_step_key")),
    )
    with op.batch_alter_table("workflow_step_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_step_runs_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_workflow_step_runs_status_due_at", ["status", "due_at"], unique=False)

    op.create_table(
        "workflow_trigger_fires",
        sa.Column("trigger_id", sa.String(length=36), nullable=False),
        sa.Column("fire_key", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["workflow_triggers.id"],
            name=op.f("fk_workflow_trigger_fires_trigger_id_workflow_triggers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_trigger_fires")),
        sa.UniqueConstraint("trigger_id", "fire_key", name=op.f("uq_workflow_trigger_fires_trigger_id_fire_key")),
    )
    with op.batch_alter_table("workflow_trigger_fires", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_trigger_fires_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_trigger_fires_trigger_id"), ["trigger_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflow_trigger_fires", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_trigger_fires_trigger_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_trigger_fires_created_at"))

    op.drop_table("workflow_trigger_fires")
    with op.batch_alter_table("workflow_step_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_step_runs_status_due_at")
        batch_op.drop_index(batch_op.f("ix_workflow_step_runs_run_id"))

    op.drop_table("workflow_step_runs")
    with op.batch_alter_table("workflow_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_versions_workflow_id"))

    op.drop_table("workflow_versions")
    with op.batch_alter_table("workflow_triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_triggers_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_triggers_next_fire_at"))
        batch_op.drop_index(batch_op.f("ix_workflow_triggers_kind"))
        batch_op.drop_index(batch_op.f("ix_workflow_triggers_event_topic"))

    op.drop_table("workflow_triggers")
    with op.batch_alter_table("workflow_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_runs_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_runs_status"))

    op.drop_table("workflow_runs")
    op.drop_table("workflows")
