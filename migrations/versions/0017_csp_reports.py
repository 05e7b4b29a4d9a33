"""payment-page integrity: the CSP violation reports of the payment pages, deduplicated
(issue 22)

Revision ID: 0017_csp_reports
Revises: 0016_ops_sessions
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_csp_reports"
down_revision: str | None = "0016_ops_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csp_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("directive", sa.String(length=32), nullable=False),
        sa.Column("blocked_uri", sa.String(length=512), nullable=False),
        sa.Column("page", sa.String(length=512), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csp_reports")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_csp_reports_fingerprint")),
    )
    op.create_index("ix_csp_reports_last_seen", "csp_reports", ["last_seen", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_csp_reports_last_seen", table_name="csp_reports")
    op.drop_table("csp_reports")
