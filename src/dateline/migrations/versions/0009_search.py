"""Full-text search over stories and entries.

SQLite: one FTS5 table, `search_index`, kept in step with `entries` and `stories` by
triggers (their statements are in dateline/search/index.py, which also puts them back after
a migration that rebuilds either table). An entry is filed under its id, a story under its
id negated, so one table (and one set of ranking statistics) holds both.

PostgreSQL: a generated `search_vector` column on each table, with a GIN index.

Both index the approved copy of an entry (`entries.body`, `entries.fields`): an edit waiting
for approval lives in `entry_revisions` until then.

Revision ID: 0009
Revises: 0008
Created: 2026-12-09
"""

from alembic import op

from dateline.search import index

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# 'simple': lower-cased words, no stemming and no stop words, whatever the language of the
# coverage (a stemmer suits one language and mangles the others). Weights: a story's
# headline A, its summary and an entry's words B, a dateline C.
def _tsvector(weighted: dict[str, str]) -> str:
    return ' || '.join(f"setweight(to_tsvector('simple'::regconfig, {text}), '{weight}')"
                       for text, weight in weighted.items())


ENTRY_WORDS = " || ' ' || ".join(f"coalesce(fields::jsonb ->> '{name}', '')" for name in index.WORD_FIELDS)
VECTORS = {
    'entries': _tsvector({'body': 'B', f'({ENTRY_WORDS})': 'B'}),
    'stories': _tsvector({'headline': 'A', 'summary': 'B', 'dateline': 'C'}),
}


def _postgresql_upgrade() -> None:
    for table, vector in VECTORS.items():
        # A stored generated column: computed for the rows already there, and on every write.
        op.execute(f'ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector}) STORED')
        op.execute(f'CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)')


def _postgresql_downgrade() -> None:
    for table in VECTORS:
        op.execute(f'DROP INDEX ix_{table}_search_vector')
        op.execute(f'ALTER TABLE {table} DROP COLUMN search_vector')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        index.create_sqlite_index(op.get_bind())  # the table, its triggers, the rows there
    else:
        _postgresql_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        index.drop_sqlite_index(op.get_bind())
    else:
        _postgresql_downgrade()
