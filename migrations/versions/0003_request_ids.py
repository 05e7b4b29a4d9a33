"""request ids on audit rows, so one request can be followed from the log to the database

Revision ID: 0003_request_ids
Revises: 0002_stored_cards
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_request_ids'
down_revision: str | None = '0002_stored_cards'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('gateway_calls', sa.Column('request_id', sa.String(length=64), nullable=True))
    op.create_index(
        op.f('ix_gateway_calls_request_id'), 'gateway_calls', ['request_id'], unique=False
    )
    op.add_column('payment_events', sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('payment_events', 'request_id')
    op.drop_index(op.f('ix_gateway_calls_request_id'), table_name='gateway_calls')
    op.drop_column('gateway_calls', 'request_id')
