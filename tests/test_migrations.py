"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import Site
from dateline.schema import metadata


def test_migrations_and_schema_agree(site: Site) -> None:
    with site.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == [], "run alembic autogenerate: schema.py and migrations/ differ"


def test_the_schema_is_at_the_newest_revision(site: Site) -> None:
    current, head = site.db.schema_status()
    assert current == head
