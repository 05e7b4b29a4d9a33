"""crash recovery: idempotency keys bound to what they created, the "about to send" mark on
payments, orphan payments found by the sweep, and the sweep's cursor

Revision ID: 0009_crash_recovery
Revises: 0008_kickback_trust
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_crash_recovery'
down_revision: str | None = '0008_kickback_trust'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "kind IN ('checkout', 'onetouch', 'reauth')"
KINDS_AFTER = "kind IN ('checkout', 'onetouch', 'reauth', 'orphan')"


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('resource_kind', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('resource_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('payments') as batch:
        batch.add_column(
            sa.Column('unsent', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.drop_constraint(op.f('ck_payments_kind'), type_='check')
        batch.create_check_constraint(op.f('ck_payments_kind'), KINDS_AFTER)
    op.create_table(
        'sweep_cursors',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('position', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_token', sa.String(length=32), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_sweep_cursors')),
    )


def downgrade() -> None:
    op.drop_table('sweep_cursors')
    op.execute("DELETE FROM payment_events WHERE payment_id IN "
               "(SELECT id FROM payments WHERE kind = 'orphan')")
    op.execute("DELETE FROM payments WHERE kind = 'orphan'")
    with op.batch_alter_table('payments') as batch:
        batch.drop_constraint(op.f('ck_payments_kind'), type_='check')
        batch.create_check_constraint(op.f('ck_payments_kind'), KINDS_BEFORE)
        batch.drop_column('unsent')
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.drop_column('resource_id')
        batch.drop_column('resource_kind')
        batch.drop_column('claim_token')
