"""card-testing attempts in flight: a reservation (a failures row with in_flight_until set) is
taken before the gateway is called and becomes a failure or is dropped with the answer

Revision ID: 0010_edges
Revises: 0009_crash_recovery
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_edges'
down_revision: str | None = '0009_crash_recovery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('velocity_failures') as batch:
        batch.add_column(sa.Column('in_flight_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Reservations are not failures: they go with their column.
    op.execute('DELETE FROM velocity_failures WHERE in_flight_until IS NOT NULL')
    with op.batch_alter_table('velocity_failures') as batch:
        batch.drop_column('in_flight_until')
