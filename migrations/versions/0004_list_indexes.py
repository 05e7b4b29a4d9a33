"""indexes that keep the ops payment list flat as the table grows

Revision ID: 0004_list_indexes
Revises: 0003_request_ids
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004_list_indexes'
down_revision: str | None = '0003_request_ids'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_payments_customer_created', 'payments', ['customer_uid', 'created_at', 'id']
    )
    op.create_index('ix_payments_status_created', 'payments', ['status', 'created_at', 'id'])
    # The composite index starts with customer_uid: the single-column one is redundant.
    op.drop_index(op.f('ix_payments_customer_uid'), table_name='payments')


def downgrade() -> None:
    op.create_index(op.f('ix_payments_customer_uid'), 'payments', ['customer_uid'])
    op.drop_index('ix_payments_status_created', table_name='payments')
    op.drop_index('ix_payments_customer_created', table_name='payments')
