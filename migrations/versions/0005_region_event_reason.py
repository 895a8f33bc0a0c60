"""region_events.reason: why a reviewer or admin changed an instance someone else drew

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('region_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('region_events', schema=None) as batch_op:
        batch_op.drop_column('reason')
