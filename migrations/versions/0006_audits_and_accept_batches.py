"""served_items: what the queue served (blind random audits among them), for the honest accuracy
estimate; accept_batches + events.batch_id: "accept the rest" as one undoable bulk action

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('served_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('audit', sa.Boolean(), nullable=False),
    sa.Column('pool_size', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('served_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_served_items_image_id_images'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label_classes.id'], name=op.f('fk_served_items_label_id_label_classes'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_served_items_project_id_projects'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_served_items_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_served_items')),
    sa.UniqueConstraint('image_id', name=op.f('uq_served_items_image_id'))
    )
    with op.batch_alter_table('served_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_served_items_project_id'), ['project_id'], unique=False)
    op.create_table('accept_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('min_confidence', sa.Float(), nullable=False),
    sa.Column('estimate', sa.Float(), nullable=True),
    sa.Column('low', sa.Float(), nullable=True),
    sa.Column('high', sa.Float(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_accept_batches_project_id_projects'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_accept_batches_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accept_batches'))
    )
    with op.batch_alter_table('accept_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accept_batches_project_id'), ['project_id'], unique=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_events_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_events_batch_id_accept_batches'), 'accept_batches',
                                    ['batch_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_batch_id_accept_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_events_batch_id'))
        batch_op.drop_column('batch_id')
    with op.batch_alter_table('accept_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accept_batches_project_id'))
    op.drop_table('accept_batches')
    with op.batch_alter_table('served_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_served_items_project_id'))
    op.drop_table('served_items')
