"""ops console: its sessions; indexes for its lists (checkout sessions, customers, newest
first; billing registrations too) and its charts (gateway calls and card-testing failures by time) (issue 21)

Revision ID: 0016_ops_sessions
Revises: 0015_webhooks
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_ops_sessions"
down_revision: str | None = "0015_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_sessions",
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_ops_sessions")),
    )
    op.create_index("ix_checkout_sessions_created", "checkout_sessions", ["created_at", "id"])
    op.create_index("ix_customers_created", "customers", ["created_at", "uid"])
    op.create_index("ix_gateway_calls_started", "gateway_calls", ["started_at"])
    op.create_index("ix_velocity_failures_created", "velocity_failures", ["created_at"])
    op.create_index(
        "ix_billing_card_registrations_created",
        "billing_card_registrations",
        ["created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_billing_card_registrations_created", table_name="billing_card_registrations"
    )
    op.drop_index("ix_velocity_failures_created", table_name="velocity_failures")
    op.drop_index("ix_gateway_calls_started", table_name="gateway_calls")
    op.drop_index("ix_customers_created", table_name="customers")
    op.drop_index("ix_checkout_sessions_created", table_name="checkout_sessions")
    op.drop_table("ops_sessions")
