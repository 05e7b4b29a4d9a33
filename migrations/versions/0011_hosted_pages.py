"""hosted pages: a card page has no payment terms (job, amount, tax, shipping, save_card,
offer_save_card are NULL on card pages, required on payment pages by a CHECK)

Revision ID: 0011_hosted_pages
Revises: 0010_edges
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_hosted_pages'
down_revision: str | None = '0010_edges'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TERMS = {
    'job': sa.String(length=8),
    'amount': sa.Integer(),
    'tax': sa.Integer(),
    'shipping': sa.Integer(),
    'save_card': sa.Boolean(),
    'offer_save_card': sa.Boolean(),
}
_CHECK = (
    "(kind = 'payment') = (job IS NOT NULL AND amount IS NOT NULL AND tax IS NOT NULL "
    "AND shipping IS NOT NULL AND save_card IS NOT NULL AND offer_save_card IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table('checkout_sessions') as batch:
        for name, type_ in _TERMS.items():
            batch.alter_column(name, existing_type=type_, nullable=True)
    # Card pages carried a made-up zero charge; they have no terms now.
    op.execute(
        "UPDATE checkout_sessions SET job = NULL, amount = NULL, tax = NULL, shipping = NULL,"
        " save_card = NULL, offer_save_card = NULL WHERE kind <> 'payment'"
    )
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.create_check_constraint(op.f('ck_checkout_sessions_payment_terms'), _CHECK)


def downgrade() -> None:
    with op.batch_alter_table('checkout_sessions') as batch:
        batch.drop_constraint(op.f('ck_checkout_sessions_payment_terms'), type_='check')
    # The zero charge card pages had before (a customer's card page saves its card).
    op.execute(
        "UPDATE checkout_sessions SET job = 'AUTH', amount = 0, tax = 0, shipping = 0,"
        " save_card = (kind = 'card_registration'), offer_save_card = false"
        " WHERE kind <> 'payment'"
    )
    with op.batch_alter_table('checkout_sessions') as batch:
        for name, type_ in _TERMS.items():
            batch.alter_column(name, existing_type=type_, nullable=False)
