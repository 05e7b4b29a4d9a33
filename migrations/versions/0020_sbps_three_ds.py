"""payments: the 3-D Secure step of an SBPS token pay (TA02-00101-101's authentication id,
where the shopper is sent, and the step's state) (issue 20)

Revision ID: 0020_sbps_three_ds
Revises: 0019_reconcile_passes
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_sbps_three_ds"
down_revision: str | None = "0019_reconcile_passes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("tds_authentication_id", sa.String(64), nullable=True))
    op.add_column("payments", sa.Column("tds_redirect_url", sa.String(1000), nullable=True))
    op.add_column("payments", sa.Column("tds_state", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "tds_state")
    op.drop_column("payments", "tds_redirect_url")
    op.drop_column("payments", "tds_authentication_id")
