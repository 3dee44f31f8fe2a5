"""A story's "What we know": the established facts as a list of lines, and when the desk
last changed them.

Revision ID: 0011
Revises: 0010
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from dateline.schema import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('stories', sa.Column('facts', sa.Text(), nullable=False, server_default='[]'))
    op.add_column('stories', sa.Column('facts_updated_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('stories', 'facts_updated_at')
    op.drop_column('stories', 'facts')
