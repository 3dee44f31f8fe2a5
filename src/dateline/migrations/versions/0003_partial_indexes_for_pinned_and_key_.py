"""partial indexes for pinned and key events

Revision ID: 0003
Revises: 0002
Created: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_key_event', ['story_id', 'deleted_at', 'id'], unique=False, sqlite_where=sa.text('key_event IS 1'), postgresql_where=sa.text('key_event IS true'))
        batch_op.create_index('ix_entries_pinned', ['story_id', 'deleted_at', 'id'], unique=False, sqlite_where=sa.text('pinned IS 1'), postgresql_where=sa.text('pinned IS true'))



def downgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_pinned', sqlite_where=sa.text('pinned IS 1'), postgresql_where=sa.text('pinned IS true'))
        batch_op.drop_index('ix_entries_key_event', sqlite_where=sa.text('key_event IS 1'), postgresql_where=sa.text('key_event IS true'))

