"""Live figures: a story's results tables, counters and competing estimates, with every
version of their figures.

Revision ID: 0012
Revises: 0011
Created: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from dateline.schema import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'figure_blocks',
        sa.Column('id', ID, nullable=False),
        sa.Column('story_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('html', sa.Text(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('key_event', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('deleted_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_figure_blocks_story_id_stories'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_figure_blocks')),
    )
    op.create_index('ix_figure_blocks_story_id', 'figure_blocks', ['story_id', 'deleted_at', 'id'])
    op.create_table(
        'figure_revisions',
        sa.Column('id', ID, nullable=False),
        sa.Column('block_id', ID, nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('correction', sa.Text(), nullable=False),
        sa.Column('edited_by', ID, nullable=False),
        sa.Column('edited_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['block_id'], ['figure_blocks.id'],
                                name=op.f('fk_figure_revisions_block_id_figure_blocks'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['edited_by'], ['users.id'], name=op.f('fk_figure_revisions_edited_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_figure_revisions')),
        sa.UniqueConstraint('block_id', 'revision', name='uq_figure_revisions_block_revision'),
    )
    # A notification may tell of a block's figures rather than of an update. No foreign key:
    # blocks are never removed but with their story, which takes its notifications along.
    op.add_column('push_notifications', sa.Column('block_id', ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('push_notifications') as batch:
        batch.drop_column('block_id')
    op.drop_table('figure_revisions')
    op.drop_index('ix_figure_blocks_story_id', table_name='figure_blocks')
    op.drop_table('figure_blocks')
