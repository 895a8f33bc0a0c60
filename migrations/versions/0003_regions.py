"""regions: instances, proposals and their events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:24:42.891396
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('region_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('segmenter_id', sa.String(length=300), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=True),
    sa.Column('rle', sa.JSON(), nullable=False),
    sa.Column('bbox', sa.JSON(), nullable=False),
    sa.Column('area', sa.Integer(), nullable=False),
    sa.Column('predicted_iou', sa.Float(), nullable=False),
    sa.Column('stability', sa.Float(), nullable=False),
    sa.Column('label_ids', sa.JSON(), nullable=True),
    sa.Column('probs', sa.LargeBinary(), nullable=True),
    sa.Column('label_id', sa.Integer(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('uncertainty', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_region_proposals_decided_by_users')),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_region_proposals_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label_classes.id'], name=op.f('fk_region_proposals_label_id_label_classes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_region_proposals_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_proposals'))
    )
    with op.batch_alter_table('region_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_region_proposals_image_id'), ['image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_proposals_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_proposals_status'), ['status'], unique=False)

    op.create_table('instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.Column('rle', sa.JSON(), nullable=False),
    sa.Column('bbox', sa.JSON(), nullable=False),
    sa.Column('area', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('label_confidence', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('prompts', sa.JSON(), nullable=True),
    sa.Column('segmenter_id', sa.String(length=300), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('annotator_id', sa.Integer(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_instances_annotator_id_users')),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_instances_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label_classes.id'], name=op.f('fk_instances_label_id_label_classes')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_instances_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['region_proposals.id'], name=op.f('fk_instances_proposal_id_region_proposals'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instances'))
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instances_image_id'), ['image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_project_id'), ['project_id'], unique=False)

    op.create_table('region_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('annotator_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('label_before_id', sa.Integer(), nullable=True),
    sa.Column('label_after_id', sa.Integer(), nullable=True),
    sa.Column('undoes_event_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_region_events_annotator_id_users')),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_region_events_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_region_events_instance_id_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_after_id'], ['label_classes.id'], name=op.f('fk_region_events_label_after_id_label_classes')),
    sa.ForeignKeyConstraint(['label_before_id'], ['label_classes.id'], name=op.f('fk_region_events_label_before_id_label_classes')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_region_events_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['region_proposals.id'], name=op.f('fk_region_events_proposal_id_region_proposals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undoes_event_id'], ['region_events.id'], name=op.f('fk_region_events_undoes_event_id_region_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_events'))
    )
    with op.batch_alter_table('region_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_region_events_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_events_image_id'), ['image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_events_project_id'), ['project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('region_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_events_project_id'))
        batch_op.drop_index(batch_op.f('ix_region_events_image_id'))
        batch_op.drop_index(batch_op.f('ix_region_events_annotator_id'))

    op.drop_table('region_events')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_project_id'))
        batch_op.drop_index(batch_op.f('ix_instances_image_id'))

    op.drop_table('instances')
    with op.batch_alter_table('region_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_proposals_status'))
        batch_op.drop_index(batch_op.f('ix_region_proposals_project_id'))
        batch_op.drop_index(batch_op.f('ix_region_proposals_image_id'))

    op.drop_table('region_proposals')
