"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL; they
form one line of revisions, and every one of them can be undone and done again."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from conftest import Site
from dateline import db as db_module
from dateline.db import Database, SchemaOutOfDate
from dateline.schema import metadata
from dateline.search.index import declared_in_schema


def alembic_config(conn: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(db_module.MIGRATIONS))  # read when called
    config.attributes["connection"] = conn
    return config


def revisions_base_first() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def differences(conn: Connection) -> list[Any]:
    # The search index's FTS5 table and tsvector columns are the migrations' alone: schema.py
    # has no words for them (search/index.py), so they are left out, as autogenerate does.
    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": declared_in_schema})
    return list(compare_metadata(context, metadata))


def _options(options: dict[str, Any]) -> str:
    """Dialect options (a partial index's WHERE) as text: the reflected clauses are objects."""
    return repr(sorted((key, re.sub(r"\s+", " ", str(value))) for key, value in options.items()))


def snapshot(conn: Connection) -> dict[str, Any]:
    """The schema as the database reports it: every table's columns, keys, indexes and
    constraints (partial-index predicates included), the Alembic bookkeeping left out."""
    inspector = inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        if name == "alembic_version":
            continue
        tables[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(name)],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted((str(f["constrained_columns"]), f["referred_table"], str(f["referred_columns"]),
                                    str(f.get("options"))) for f in inspector.get_foreign_keys(name)),
            "indexes": sorted((str(i["name"]), str(i["column_names"]), bool(i["unique"]), _options(i.get("dialect_options", {})))
                              for i in inspector.get_indexes(name)),
            "unique": sorted(str(u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "checks": sorted(re.sub(r"\s+", " ", str(c["sqltext"])) for c in inspector.get_check_constraints(name)),
        }
    if conn.dialect.name == "sqlite":  # the reflection above does not show a partial index's WHERE
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
        tables["(index sql)"] = sorted((row.name, re.sub(r"\s+", " ", row.sql)) for row in rows)
    return tables


def test_migrations_and_schema_agree(site: Site) -> None:
    with site.db.engine.connect() as conn:
        found = differences(conn)
    assert found == [], "run alembic autogenerate: schema.py and migrations/ differ"


def test_the_revisions_form_one_line() -> None:
    """One base, one head, each revision revising the one before: `dateline init` and the
    start-up check (`check_schema`) assume a single line."""
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, f"more than one head: {script.get_heads()}"
    assert len(script.get_bases()) == 1, f"more than one base: {script.get_bases()}"
    chain = revisions_base_first()
    for before, revision in zip([None, *chain], chain):
        found = script.get_revision(revision)
        assert found is not None
        assert found.down_revision == before, f"{revision} revises {found.down_revision!r}, not {before!r}"
        assert not found.branch_labels and not found.dependencies, f"{revision} has branch labels or dependencies"
        assert found.path.rsplit("/", 1)[-1].startswith(f"{revision}_"), f"{found.path} is not named after {revision}"
    files = sorted(p.name for p in (db_module.MIGRATIONS / "versions").glob("*.py"))
    assert len(files) == len(chain), f"migration files outside the chain: {files}"


def test_every_migration_downgrades_and_upgrades_again(empty_database: str) -> None:
    """Up one revision at a time (noting the schema after each), then down one at a time:
    each downgrade must give back exactly the schema before its upgrade, with rows in the
    tables. Then up again to the head, which is the code's schema once more."""
    chain = revisions_base_first()
    database = Database(empty_database)
    try:
        after: dict[str, dict[str, Any]] = {}
        with database.migrating() as conn:
            empty = snapshot(conn)
            for revision in chain:
                command.upgrade(alembic_config(conn), revision)
                after[revision] = snapshot(conn)
            assert differences(conn) == []
        # Rows in the tables, as on a site in use.
        with database.write() as conn:
            from dateline.accounts import users as accounts
            from dateline.accounts.users import Role
            from dateline.stories import entries, story as stories

            user = accounts.create_user(conn, "eve", "correct horse battery", Role.editor, "Eve")
            accounts.create_token(conn, user, "tests")
            story = stories.create_story(conn, headline="Floods", slug="floods", status="live")
            entries.create_entry(conn, story, user, kind="text", body="The river is rising.", fields={})
        with database.migrating() as conn:
            for before, revision in reversed(list(zip([None, *chain], chain))):
                command.downgrade(alembic_config(conn), before or "base")
                assert snapshot(conn) == (after[before] if before else empty), (
                    f"downgrading {revision} does not give back the schema of {before or 'an empty database'}")
            assert MigrationContext.configure(conn).get_current_revision() is None
            command.upgrade(alembic_config(conn), "head")
            assert snapshot(conn) == after[chain[-1]]
            assert differences(conn) == []
    finally:
        database.dispose()


def test_a_database_behind_the_code_is_refused_until_migrated(empty_database: str) -> None:
    """`dateline serve` checks the revision at start-up: an empty database or one a revision
    behind is refused with the way out (`dateline init`); migrated, it is accepted."""
    chain = revisions_base_first()
    database = Database(empty_database)
    try:
        with pytest.raises(SchemaOutOfDate, match="is empty.*dateline init"):
            database.check_schema()
        with database.migrating() as conn:
            command.upgrade(alembic_config(conn), chain[-2])
        with pytest.raises(SchemaOutOfDate, match=f"revision {chain[-2]}, this version needs {chain[-1]}"):
            database.check_schema()
        database.migrate()
        assert database.schema_status() == (chain[-1], chain[-1])
        database.check_schema()
    finally:
        database.dispose()
