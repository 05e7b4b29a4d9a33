"""stored cards: customer audit events, card-registration checkout sessions

Revision ID: 0002_stored_cards
Revises: 0001_initial
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_stored_cards'
down_revision: str | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_uid', sa.String(length=50), nullable=False),
    sa.Column('card_num', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_events'))
    )
    op.create_index(op.f('ix_customer_events_customer_uid'), 'customer_events', ['customer_uid'], unique=False)
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=24), server_default='payment', nullable=False))
        batch.add_column(sa.Column('card_num', sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f('ck_checkout_sessions_kind'), "kind IN ('payment', 'card_registration')"
        )
        batch.drop_constraint(op.f('ck_checkout_sessions_status'), type_='check')
        batch.create_check_constraint(
            op.f('ck_checkout_sessions_status'),
            "status IN ('open', 'processing', 'completed', 'expired')",
        )


def downgrade() -> None:
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.drop_constraint(op.f('ck_checkout_sessions_status'), type_='check')
        batch.create_check_constraint(
            op.f('ck_checkout_sessions_status'), "status IN ('open', 'completed', 'expired')"
        )
        batch.drop_constraint(op.f('ck_checkout_sessions_kind'), type_='check')
        batch.drop_column('card_num')
        batch.drop_column('kind')
    op.drop_index(op.f('ix_customer_events_customer_uid'), table_name='customer_events')
    op.drop_table('customer_events')
