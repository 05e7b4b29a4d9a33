"""Payment-page integrity: the vendor script watcher's checks, approvals and states, the page
header checks, and the watcher's lease (issue 22, PCI DSS 6.4.3 / 11.6.1)

Revision ID: 0018_script_watch
Revises: 0017_csp_reports
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_script_watch"
down_revision: str | None = "0017_csp_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "script_checks",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("fetched_at", _AT, nullable=False),
        sa.Column("sha384", sa.String(length=72), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_checks")),
    )
    op.create_index("ix_script_checks_key_fetched", "script_checks", ["key", "fetched_at"])
    op.create_table(
        "script_approvals",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("sha384", sa.String(length=72), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("approved_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_approvals")),
    )
    op.create_index("ix_script_approvals_key_at", "script_approvals", ["key", "approved_at"])
    op.create_table(
        "script_states",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_sha384", sa.String(length=72), nullable=True),
        sa.Column("approved_sha384", sa.String(length=72), nullable=True),
        sa.Column("changed_at", _AT, nullable=True),
        sa.Column("last_checked_at", _AT, nullable=True),
        sa.Column("fetch_failures", sa.Integer(), nullable=False),
        sa.Column("fetch_error", sa.String(length=500), nullable=True),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_script_states")),
    )
    op.create_table(
        "page_checks",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("page", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("checked_at", _AT, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_checks")),
    )
    op.create_index("ix_page_checks_page_checked", "page_checks", ["page", "checked_at"])
    op.create_table(
        "watch_leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("lease_until", _AT, nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("last_run_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_watch_leases")),
    )


def downgrade() -> None:
    op.drop_table("watch_leases")
    op.drop_index("ix_page_checks_page_checked", table_name="page_checks")
    op.drop_table("page_checks")
    op.drop_table("script_states")
    op.drop_index("ix_script_approvals_key_at", table_name="script_approvals")
    op.drop_table("script_approvals")
    op.drop_index("ix_script_checks_key_fetched", table_name="script_checks")
    op.drop_table("script_checks")
