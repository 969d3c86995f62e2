"""feedback: feedback rows, A/B tests and their exposures

Revision ID: feedback01
Revises: 0002
Create Date: 2026-12-01 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "feedback01"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("thumbs", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("original", sa.Text(), nullable=True),
        sa.Column("corrected", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confidence_delta", sa.Float(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=36), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_feedback_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_feedback_target", ["target_type", "target_id"], unique=False)

    op.create_table(
        "ab_tests",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("variant_a", _JSON, nullable=False),
        sa.Column("variant_b", _JSON, nullable=False),
        sa.Column("traffic_share", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("min_sample", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_ab_tests_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_tests")),
        sa.UniqueConstraint("name", name=op.f("uq_ab_tests_name")),
    )
    with op.batch_alter_table("ab_tests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ab_tests_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ab_tests_status"), ["status"], unique=False)

    op.create_table(
        "ab_exposures",
        sa.Column("test_id", sa.String(length=36), nullable=False),
        sa.Column("variant", sa.String(length=1), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["test_id"], ["ab_tests.id"], name=op.f("fk_ab_exposures_test_id_ab_tests"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_exposures")),
        sa.UniqueConstraint("execution_id", name=op.f("uq_ab_exposures_execution_id")),
    )
    with op.batch_alter_table("ab_exposures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ab_exposures_test_id"), ["test_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ab_exposures")
    op.drop_table("ab_tests")
    op.drop_table("feedback")
