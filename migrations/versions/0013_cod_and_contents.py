"""cod and contents: the cod each payment was sent with, stored (it was derived: the order id,
else our payment id, the replaced payment's for a re-authorization), so that new payments can
send an alphanumeric default; the content ID/password a product-registered payment issues;
an index for the cards left unread after their registration

Revision ID: 0013_cod_and_contents
Revises: 0012_merchant_terms
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_cod_and_contents'
down_revision: str | None = '0012_merchant_terms'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Re-authorization chains are short (one per correction); each pass copies one level down.
_REAUTH_DEPTH = 20


def upgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('cod', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('content_id', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('content_password', sa.String(length=100), nullable=True))
    # What was sent before this revision: the order id, else the payment id (with its "_").
    op.execute("UPDATE payments SET cod = COALESCE(order_id, id)")
    for _ in range(_REAUTH_DEPTH):
        op.execute(
            "UPDATE payments SET cod = (SELECT parent.cod FROM payments parent"
            " WHERE parent.id = payments.reauth_of_id)"
            " WHERE reauth_of_id IS NOT NULL AND cod <> (SELECT parent.cod FROM payments parent"
            " WHERE parent.id = payments.reauth_of_id)"
        )
    # SQLite cannot make a column NOT NULL without rebuilding the table, which its foreign
    # keys forbid once payments have events: there the column stays nullable (every writer
    # sets it); PostgreSQL enforces it.
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('payments', 'cod', existing_type=sa.String(length=64), nullable=False)
    op.create_index('ix_payments_cod', 'payments', ['cod'])
    # Cards a registration kept but did not read back (the kickback loop looks every 5 s).
    unread = sa.text("masked_number IS NULL AND status = 'active'")
    op.create_index(
        'ix_cards_unread', 'cards', ['updated_at'], postgresql_where=unread, sqlite_where=unread
    )


def downgrade() -> None:
    op.drop_index('ix_cards_unread', table_name='cards')
    op.drop_index('ix_payments_cod', table_name='payments')
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('content_password')
        batch.drop_column('content_id')
        batch.drop_column('cod')
