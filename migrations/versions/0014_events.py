"""events: the transactional outbox of what the shop is told (issue 18)

Revision ID: 0014_events
Revises: 0013_cod_and_contents
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_events'
down_revision: str | None = '0013_cod_and_contents'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'events',
        sa.Column(
            'seq',
            sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('type', sa.String(length=48), nullable=False),
        sa.Column('object_type', sa.String(length=32), nullable=False),
        sa.Column('object_id', sa.String(length=80), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_events')),
        sa.UniqueConstraint('id', name=op.f('uq_events_id')),
    )
    op.create_index('ix_events_object_seq', 'events', ['object_type', 'object_id', 'seq'])
    op.create_index('ix_events_type_seq', 'events', ['type', 'seq'])


def downgrade() -> None:
    op.drop_index('ix_events_type_seq', table_name='events')
    op.drop_index('ix_events_object_seq', table_name='events')
    op.drop_table('events')
