"""billing robo: card registrations on payers, and 'billing_card' checkout sessions

Revision ID: 0006_billing_robo
Revises: 0005_offer_save_card
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_billing_robo'
down_revision: str | None = '0005_offer_save_card'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.drop_constraint(op.f('ck_checkout_sessions_kind'), type_='check')
        batch.create_check_constraint(
            op.f('ck_checkout_sessions_kind'),
            "kind IN ('payment', 'card_registration', 'billing_card')",
        )
    op.create_table('billing_card_sessions',
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('billing_code', sa.String(length=20), nullable=False),
    sa.Column('payment_method_number', sa.BigInteger(), nullable=True),
    sa.Column('payment_method_code', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(payment_method_number IS NULL) <> (payment_method_code IS NULL)', name=op.f('ck_billing_card_sessions_one_payment_method')),
    sa.ForeignKeyConstraint(['session_id'], ['checkout_sessions.id'], name=op.f('fk_billing_card_sessions_session_id_checkout_sessions')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_billing_card_sessions'))
    )
    op.create_index(op.f('ix_billing_card_sessions_billing_code'), 'billing_card_sessions', ['billing_code'], unique=False)
    op.create_table('billing_card_registrations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('billing_code', sa.String(length=20), nullable=False),
    sa.Column('payment_method_number', sa.BigInteger(), nullable=True),
    sa.Column('payment_method_code', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=100), nullable=True),
    sa.Column('tel', sa.String(length=15), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('processing', 'succeeded', 'failed', 'unknown')", name=op.f('ck_billing_card_registrations_status')),
    sa.ForeignKeyConstraint(['session_id'], ['checkout_sessions.id'], name=op.f('fk_billing_card_registrations_session_id_checkout_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_card_registrations'))
    )
    op.create_index(op.f('ix_billing_card_registrations_billing_code'), 'billing_card_registrations', ['billing_code'], unique=False)
    op.create_index(op.f('ix_billing_card_registrations_session_id'), 'billing_card_registrations', ['session_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_billing_card_registrations_session_id'), table_name='billing_card_registrations')
    op.drop_index(op.f('ix_billing_card_registrations_billing_code'), table_name='billing_card_registrations')
    op.drop_table('billing_card_registrations')
    op.drop_index(op.f('ix_billing_card_sessions_billing_code'), table_name='billing_card_sessions')
    op.drop_table('billing_card_sessions')
    op.execute("DELETE FROM checkout_sessions WHERE kind = 'billing_card'")
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.drop_constraint(op.f('ck_checkout_sessions_kind'), type_='check')
        batch.create_check_constraint(
            op.f('ck_checkout_sessions_kind'), "kind IN ('payment', 'card_registration')"
        )
