"""A revision per project and model's embeddings (issue 15): repo.add_embeddings sets a new random
value with every write, and the memory-mapped vector file records the one it holds, so opening a
project checks one primary-key row instead of counting a join over its embeddings (0.6 s at 1M).
Existing rows get a value here; their files (float16, the old format) are rebuilt on first open.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('embedding_counts') as batch:
        batch.add_column(sa.Column('revision', sa.String(length=32), nullable=True))
    counts = sa.table('embedding_counts', sa.column('project_id', sa.Integer), sa.column('model_id', sa.String),
                      sa.column('revision', sa.String))
    bind = op.get_bind()
    for project_id, model_id in bind.execute(sa.select(counts.c.project_id, counts.c.model_id)).all():
        bind.execute(counts.update().where(counts.c.project_id == project_id, counts.c.model_id == model_id)
                     .values(revision=uuid.uuid4().hex))


def downgrade() -> None:
    with op.batch_alter_table('embedding_counts') as batch:
        batch.drop_column('revision')
