"""Indexes for the queries the views make on big pools (issue 15): a project's images by status in id
order (status counts, grid pages, what is left to embed), embeddings by model in image order (loading
a model's vectors, the resume scan of `embed`), current labels by source (status, dashboard), and live
leases of a project (what others hold). tests/store/test_indexes.py checks with EXPLAIN on PostgreSQL
that the planner uses them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

INDEXES = (
    ('images', 'ix_images_project_status_id', ['project_id', 'status', 'id']),
    ('embeddings', 'ix_embeddings_model_image', ['model_id', 'image_id']),
    ('current_labels', 'ix_current_labels_project_source', ['project_id', 'source', 'label_id']),
    ('leases', 'ix_leases_project_done', ['project_id', 'done', 'expires_at']),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
