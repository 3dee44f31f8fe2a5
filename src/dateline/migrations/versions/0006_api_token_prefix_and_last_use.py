"""API tokens: a visible prefix to recognise each by, and when it was last used.

Revision ID: 0006
Revises: 0005
Created: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from dateline.schema import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.add_column(sa.Column('prefix', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('prefix')
