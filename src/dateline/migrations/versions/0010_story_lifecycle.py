"""A story's whole life: scheduled, live, ended, with the moments its coverage began and
ended and an optional closing summary.

Revision ID: 0010
Revises: 0009
Created: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from dateline.schema import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


COLUMNS = ('starts_at', 'coverage_started_at', 'coverage_ended_at')


def _status_width(width: int) -> None:
    # SQLite keeps text of any length whatever the declared width, and rebuilding the table
    # to change it would drop the search triggers on it: PostgreSQL alone needs the change.
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('stories', 'status', existing_type=sa.String(length=24 - width),
                        type_=sa.String(length=width), existing_nullable=False)


def upgrade() -> None:
    _status_width(16)  # `scheduled` is nine letters: the column was eight wide
    for name in COLUMNS:
        op.add_column('stories', sa.Column(name, UTCDateTime(), nullable=True))
    op.add_column('stories', sa.Column('closing_summary', sa.Text(), nullable=False, server_default=''))
    # Stories already live or ended began their coverage when they were created, as far as
    # anyone can now tell; ended ones ended at their last change.
    op.execute("UPDATE stories SET coverage_started_at = created_at WHERE status IN ('live', 'ended')")
    op.execute("UPDATE stories SET coverage_ended_at = updated_at WHERE status = 'ended'")


def downgrade() -> None:
    op.execute("UPDATE stories SET status = 'draft' WHERE status = 'scheduled'")
    for name in ('closing_summary', *reversed(COLUMNS)):
        op.drop_column('stories', name)
    _status_width(8)
