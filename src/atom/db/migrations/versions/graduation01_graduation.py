"""graduation: constitutional rule set versions and graduation exams

Revision ID: graduation01
Revises: 0002
Create Date: 2026-12-01 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "graduation01"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "graduation_rule_sets",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rule_ids", _JSON, nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graduation_rule_sets")),
        sa.UniqueConstraint("version", name=op.f("uq_graduation_rule_sets_version")),
    )
    op.create_table(
        "graduation_exams",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("target_level", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("episodes", sa.Integer(), nullable=False),
        sa.Column("actions", sa.Integer(), nullable=False),
        sa.Column("violations", _JSON, nullable=False),
        sa.Column("evidence", _JSON, nullable=False),
        sa.Column("rule_set_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_graduation_exams_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graduation_exams")),
    )
    with op.batch_alter_table("graduation_exams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_graduation_exams_agent_id"), ["agent_id"], unique=False)


def downgrade() -> None:
    op.drop_table("graduation_exams")
    op.drop_table("graduation_rule_sets")
