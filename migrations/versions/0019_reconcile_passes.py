"""reconciliation passes with their progress and what they changed (the ops console's
reconciliation page, issue 21); an idempotent answer's redirect target, replayed with it;
the payments that need a person, indexed (the console's home counts them)

Revision ID: 0019_reconcile_passes
Revises: 0018_script_watch
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_reconcile_passes"
down_revision: str | None = "0018_script_watch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconcile_passes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("settled", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("rescheduled", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("orphans", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_passes")),
    )
    op.create_index("ix_reconcile_passes_started", "reconcile_passes", ["started_at"])
    op.create_index(
        "ix_payments_needs_attention",
        "payments",
        ["created_at", "id"],
        postgresql_where=sa.text("needs_attention"),
        sqlite_where=sa.text("needs_attention"),
    )
    op.add_column(
        "idempotency_keys", sa.Column("response_location", sa.String(length=2000), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("idempotency_keys", "response_location")
    op.drop_index("ix_payments_needs_attention", table_name="payments")
    op.drop_index("ix_reconcile_passes_started", table_name="reconcile_passes")
    op.drop_table("reconcile_passes")
