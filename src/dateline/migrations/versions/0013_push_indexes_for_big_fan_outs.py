"""Two indexes for a big fan-out, so that what a sender reads does not grow with it.

- Push subscriptions by (endpoint, story_id), where the index was on endpoint alone. A
  notification's recipients leave out the site-wide followers whose browser also follows
  the story. That was looked up through the (story_id, id) index, which walks all the
  story's followers for each site-wide follower: on SQLite, with 20,000 of each, counting
  the recipients of one notified post took over a minute, inside the post's transaction.
  With both columns in one index it is one probe, and the planners take it. The new index
  serves lookups by endpoint alone as the old one did.
- Push deliveries by (notification_id, not_before): the deliveries that are due. Without
  it, every look for work and every claim read all of a notification's deliveries waiting
  to be retried (100,000 when a push service throttles a whole fan-out), 14 ms each time a
  commit woke a sender.

Revision ID: 0013
Revises: 0012
Created: 2026-12-07
"""

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_push_subscriptions_endpoint_story_id', 'push_subscriptions', ['endpoint', 'story_id'])
    op.drop_index('ix_push_subscriptions_endpoint', table_name='push_subscriptions')
    op.create_index('ix_push_deliveries_due', 'push_deliveries', ['notification_id', 'not_before'])


def downgrade() -> None:
    op.drop_index('ix_push_deliveries_due', table_name='push_deliveries')
    op.create_index('ix_push_subscriptions_endpoint', 'push_subscriptions', ['endpoint'])
    op.drop_index('ix_push_subscriptions_endpoint_story_id', table_name='push_subscriptions')
