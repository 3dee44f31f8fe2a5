"""Entries read in publication order; an edit can wait for approval.

Revision ID: 0007
Revises: 0006
Created: 2026-12-02
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_FLAGS = {
    'pinned': dict(sqlite_where=sa.text('pinned IS 1'), postgresql_where=sa.text('pinned IS true')),
    'key_event': dict(sqlite_where=sa.text('key_event IS 1'), postgresql_where=sa.text('key_event IS true')),
}


def _indexes(batch_op: Any, order: list[str]) -> None:
    batch_op.create_index(
        'ix_entries_story_published' if 'published_at' in order else 'ix_entries_story_visible',
        ['story_id', 'deleted_at', *order], unique=False)
    for flag, where in _FLAGS.items():
        batch_op.create_index(f'ix_entries_{flag}', ['story_id', 'deleted_at', *order], unique=False, **where)


def upgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proposed_revision', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_entries_story_visible')
        for flag, where in _FLAGS.items():
            batch_op.drop_index(f'ix_entries_{flag}', **where)
        _indexes(batch_op, ['published_at', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_story_published')
        for flag, where in _FLAGS.items():
            batch_op.drop_index(f'ix_entries_{flag}', **where)
        _indexes(batch_op, ['id'])
        batch_op.drop_column('proposed_revision')
