"""team leases and final-label policy

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:21:33.464684
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_leases_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_leases_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_leases_user_id_users')),
    sa.PrimaryKeyConstraint('image_id', 'slot', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leases_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('current_labels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.String(length=20), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('current_labels', schema=None) as batch_op:
        batch_op.drop_column('policy')

    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leases_user_id'))
        batch_op.drop_index(batch_op.f('ix_leases_project_id'))

    op.drop_table('leases')
