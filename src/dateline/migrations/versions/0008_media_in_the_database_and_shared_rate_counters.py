"""Photos stored in the database; rate counters shared by every node.

Revision ID: 0008
Revises: 0007
Created: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from dateline.schema import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'media',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_media')),
    )
    op.create_table(
        'rate_counters',
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('window_start', UTCDateTime(), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counters')),
    )
    op.create_index('ix_rate_counters_window_start', 'rate_counters', ['window_start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rate_counters_window_start', table_name='rate_counters')
    op.drop_table('rate_counters')
    op.drop_table('media')
