"""checkout sessions may let the shopper choose to save the card

Revision ID: 0005_offer_save_card
Revises: 0004_list_indexes
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_offer_save_card'
down_revision: str | None = '0004_list_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'checkout_sessions',
        sa.Column('offer_save_card', sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column('checkout_sessions', 'offer_save_card')
