"""Alembic environment: Dateline hands in the connection; no alembic.ini is needed."""

from alembic import context

from dateline.schema import metadata
from dateline.search.index import declared_in_schema, restore_sqlite_triggers

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    include_name=declared_in_schema,  # the search index is made by 0009 alone (search/index.py)
)
with context.begin_transaction():
    context.run_migrations()
    if connection.dialect.name == "sqlite":
        restore_sqlite_triggers(connection)  # dropped by a migration that rebuilt entries or stories
