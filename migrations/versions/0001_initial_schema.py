"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 09:53:11.307199
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('model_arch', sa.String(length=200), nullable=True),
    sa.Column('model_pretrained', sa.Text(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('original_path', sa.Text(), nullable=False),
    sa.Column('file_path', sa.Text(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('format', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_images_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_images'))
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_images_project_id'), ['project_id'], unique=False)
        batch_op.create_index('uq_images_project_sha256_ok', ['project_id', 'sha256'], unique=True, sqlite_where=sa.text("status = 'ok'"), postgresql_where=sa.text("status = 'ok'"))

    op.create_table('label_classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('prompts', sa.JSON(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_label_classes_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_classes')),
    sa.UniqueConstraint('project_id', 'name', name='uq_label_classes_project_name')
    )
    with op.batch_alter_table('label_classes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_classes_project_id'), ['project_id'], unique=False)

    op.create_table('prediction_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('model_version', sa.String(length=100), nullable=False),
    sa.Column('prompts_hash', sa.String(length=64), nullable=True),
    sa.Column('label_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_prediction_runs_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prediction_runs'))
    )
    with op.batch_alter_table('prediction_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prediction_runs_project_id'), ['project_id'], unique=False)

    op.create_table('text_heads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('prompts_hash', sa.String(length=64), nullable=False),
    sa.Column('label_ids', sa.JSON(), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vectors', sa.LargeBinary(), nullable=False),
    sa.Column('logit_scale', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_text_heads_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_text_heads')),
    sa.UniqueConstraint('project_id', 'model_id', 'prompts_hash', name='uq_text_heads_key')
    )
    op.create_table('embeddings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_embeddings_image_id_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_embeddings')),
    sa.UniqueConstraint('image_id', 'model_id', name='uq_embeddings_image_model')
    )
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_embeddings_model_id'), ['model_id'], unique=False)

    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('probs', sa.LargeBinary(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_predictions_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label_classes.id'], name=op.f('fk_predictions_label_id_label_classes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['prediction_runs.id'], name=op.f('fk_predictions_run_id_prediction_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    sa.UniqueConstraint('run_id', 'image_id', name='uq_predictions_run_image')
    )
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictions_image_id'), ['image_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('label_before_id', sa.Integer(), nullable=True),
    sa.Column('label_after_id', sa.Integer(), nullable=True),
    sa.Column('undoes_event_id', sa.Integer(), nullable=True),
    sa.Column('prediction_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_events_annotator_id_users')),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_events_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_after_id'], ['label_classes.id'], name=op.f('fk_events_label_after_id_label_classes')),
    sa.ForeignKeyConstraint(['label_before_id'], ['label_classes.id'], name=op.f('fk_events_label_before_id_label_classes')),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], name=op.f('fk_events_prediction_id_predictions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_events_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undoes_event_id'], ['events.id'], name=op.f('fk_events_undoes_event_id_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_image_id'), ['image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_project_id'), ['project_id'], unique=False)

    op.create_table('current_labels',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_current_labels_annotator_id_users')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_current_labels_event_id_events')),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_current_labels_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label_classes.id'], name=op.f('fk_current_labels_label_id_label_classes')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_current_labels_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', name=op.f('pk_current_labels'))
    )
    with op.batch_alter_table('current_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_current_labels_project_id'), ['project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('current_labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_current_labels_project_id'))

    op.drop_table('current_labels')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_project_id'))
        batch_op.drop_index(batch_op.f('ix_events_image_id'))

    op.drop_table('events')
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictions_image_id'))

    op.drop_table('predictions')
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_embeddings_model_id'))

    op.drop_table('embeddings')
    op.drop_table('text_heads')
    with op.batch_alter_table('prediction_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prediction_runs_project_id'))

    op.drop_table('prediction_runs')
    with op.batch_alter_table('label_classes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_label_classes_project_id'))

    op.drop_table('label_classes')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('uq_images_project_sha256_ok', sqlite_where=sa.text("status = 'ok'"), postgresql_where=sa.text("status = 'ok'"))
        batch_op.drop_index(batch_op.f('ix_images_project_id'))

    op.drop_table('images')
    op.drop_table('users')
    op.drop_table('projects')
