"""guidance: operations, resolution outcomes, agent requests, view layouts

Revision ID: guidance01
Revises: 0002
Create Date: 2026-12-02 00:35:43.614376
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "guidance01"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guidance_resolution_outcomes",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("resolution_id", sa.String(length=64), nullable=False),
        sa.Column("worked", sa.Boolean(), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_resolution_outcomes")),
        sa.UniqueConstraint("subject_type", "subject_id", "resolution_id", name="uq_guidance_outcomes_subject"),
    )
    with op.batch_alter_table("guidance_resolution_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_resolution_outcomes_category"), ["category"], unique=False)

    op.create_table(
        "guidance_view_layouts",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("view", sa.String(length=32), nullable=False),
        sa.Column("layout", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_view_layouts")),
        sa.UniqueConstraint("user_id", "view", name=op.f("uq_guidance_view_layouts_user_id_view")),
    )
    op.create_table(
        "guidance_agent_requests",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("options", _JSON, nullable=False),
        sa.Column("default_option", sa.String(length=100), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.String(length=100), nullable=True),
        sa.Column("answered_by", sa.String(length=36), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_guidance_agent_requests_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_agent_requests")),
    )
    with op.batch_alter_table("guidance_agent_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_agent_requests_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_agent_requests_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_agent_requests_execution_id"), ["execution_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_agent_requests_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_agent_requests_status"), ["status"], unique=False)

    op.create_table(
        "guidance_operations",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("bounded", sa.Boolean(), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("next", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("steps", _JSON, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_guidance_operations_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidance_operations")),
        sa.UniqueConstraint("kind", "subject_id", name=op.f("uq_guidance_operations_kind_subject_id")),
    )
    with op.batch_alter_table("guidance_operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_operations_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_operations_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_operations_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_operations_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guidance_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guidance_operations_user_id"))
        batch_op.drop_index(batch_op.f("ix_guidance_operations_status"))
        batch_op.drop_index(batch_op.f("ix_guidance_operations_started_at"))
        batch_op.drop_index(batch_op.f("ix_guidance_operations_agent_id"))

    op.drop_table("guidance_operations")
    with op.batch_alter_table("guidance_agent_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guidance_agent_requests_status"))
        batch_op.drop_index(batch_op.f("ix_guidance_agent_requests_expires_at"))
        batch_op.drop_index(batch_op.f("ix_guidance_agent_requests_execution_id"))
        batch_op.drop_index(batch_op.f("ix_guidance_agent_requests_created_at"))
        batch_op.drop_index(batch_op.f("ix_guidance_agent_requests_agent_id"))

    op.drop_table("guidance_agent_requests")
    op.drop_table("guidance_view_layouts")
    with op.batch_alter_table("guidance_resolution_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guidance_resolution_outcomes_category"))

    op.drop_table("guidance_resolution_outcomes")
