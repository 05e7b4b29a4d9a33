"""failed pay attempts per customer and client IP, for card-testing limits shared by replicas

Revision ID: 0007_velocity
Revises: 0006_billing_robo
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_velocity'
down_revision: str | None = '0006_billing_robo'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'velocity_failures',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('customer', 'ip')", name=op.f('ck_velocity_failures_scope')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_velocity_failures')),
    )
    op.create_index(
        'ix_velocity_failures_scope_key_created',
        'velocity_failures',
        ['scope', 'key', 'created_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_velocity_failures_scope_key_created', table_name='velocity_failures')
    op.drop_table('velocity_failures')
