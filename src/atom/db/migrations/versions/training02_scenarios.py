"""training: scenarios (versioned), and the scenario run's progress and results on training sessions

Revision ID: training02
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "training02"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "training_scenarios",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("tools", _JSON, nullable=False),
        sa.Column("expect", _JSON, nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_scenarios")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_training_scenarios_name_version")),
    )
    with op.batch_alter_table("training_scenarios", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_scenarios_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_scenarios_name"), ["name"], unique=False)

    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scored_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("scenario_performance", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("progress_total", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("current_scenario", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("results", _JSON, nullable=True))
        batch_op.add_column(sa.Column("run_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("run_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("run_heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        for column in (
            "run_heartbeat_at",
            "run_started_at",
            "run_error",
            "results",
            "current_scenario",
            "progress_total",
            "progress_done",
            "scenario_performance",
            "scored_by",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("training_scenarios", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_scenarios_name"))
        batch_op.drop_index(batch_op.f("ix_training_scenarios_category"))
    op.drop_table("training_scenarios")
