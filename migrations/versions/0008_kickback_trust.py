"""kickbacks: whether one came on the trusted (secret) path, and deferred verification

Revision ID: 0008_kickback_trust
Revises: 0007_velocity
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_kickback_trust'
down_revision: str | None = '0007_velocity'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "'received', 'applied', 'duplicate', 'unmatched', 'flagged', 'invalid', 'error'"
_NEW = _OLD + ", 'deferred'"


def upgrade() -> None:
    with op.batch_alter_table('kickbacks') as batch:
        batch.add_column(
            sa.Column('trusted', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f('ck_kickbacks_status'), type_='check')
        batch.create_check_constraint(op.f('ck_kickbacks_status'), f"status IN ({_NEW})")
    op.create_index(
        'ix_kickbacks_status_next_attempt', 'kickbacks', ['status', 'next_attempt_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_kickbacks_status_next_attempt', table_name='kickbacks')
    # A deferred kickback goes back to 'received': the old code applies it again.
    op.execute("UPDATE kickbacks SET status = 'received' WHERE status = 'deferred'")
    with op.batch_alter_table('kickbacks') as batch:
        batch.drop_constraint(op.f('ck_kickbacks_status'), type_='check')
        batch.create_check_constraint(op.f('ck_kickbacks_status'), f"status IN ({_OLD})")
        batch.drop_column('next_attempt_at')
        batch.drop_column('attempts')
        batch.drop_column('trusted')
