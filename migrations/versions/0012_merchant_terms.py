"""merchant terms: metadata (the gateway's free parameters) on checkout sessions and payments,
and the payment methods (md, installment counts) a payment page offers

Revision ID: 0012_merchant_terms
Revises: 0011_hosted_pages
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_merchant_terms'
down_revision: str | None = '0011_hosted_pages'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.add_column(sa.Column('payment_methods', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('installment_counts', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('metadata', sa.JSON(), nullable=True))
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('metadata', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('metadata')
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.drop_column('metadata')
        batch.drop_column('installment_counts')
        batch.drop_column('payment_methods')
