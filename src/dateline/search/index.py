"""Where the words are kept (migration 0009) and how a query matches and ranks them.

SQLite: `search_index`, an FTS5 table kept in step with `entries` and `stories` by
triggers; an entry's row has the entry's id, a story's row the story's id negated. Its
columns: `title` (a story's headline), `body` (an entry's body, a story's summary) and
`extra` (an entry's speaker, role, caption, credit, alt text and correction; a story's
dateline). Ranked by bm25, the headline counting most.

PostgreSQL: a generated `search_vector` column on `entries` and on `stories` ('simple'
configuration), each with a GIN index; ranked by ts_rank, the headline weighted A.

Neither is declared in schema.py (SQLAlchemy has no words for a virtual table or a
generated tsvector), so comparisons of schema.py with a database skip them:
`declared_in_schema` is the filter (Alembic's `include_name`).
"""

from __future__ import annotations

from typing import Any, Final

from alembic.runtime.environment import NameFilterParentNames, NameFilterType
from sqlalchemy import ColumnElement, Connection, Integer, Table, func, literal_column
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.sql import column, table

FTS_TABLE: Final = "search_index"
# FTS5 keeps its words in shadow tables named after the table.
FTS_SHADOWS: Final = tuple(f"{FTS_TABLE}_{part}" for part in ("data", "idx", "content", "docsize", "config"))
VECTOR: Final = "search_vector"
VECTOR_INDEXES: Final = ("ix_entries_search_vector", "ix_stories_search_vector")

# bm25 weights of title, body, extra: a headline's word counts most.
BM25_WEIGHTS: Final = (4.0, 1.0, 1.0)
CONFIG: Final = "simple"


def declared_in_schema(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """False for the search index's own objects: schema.py does not declare them."""
    if type_ == "table":
        return name not in (FTS_TABLE, *FTS_SHADOWS)
    if type_ == "column":
        return name != VECTOR
    if type_ == "index":
        return name not in VECTOR_INDEXES
    return True


# --- SQLite: the table and the triggers that keep it in step ----------------------------------

# Letters, digits, marks and private-use characters make words (`terms` cuts queries the
# same way); diacritics are folded, so "cafe" finds "café". Marks count as letters so that
# scripts written with combining vowel signs (Devanagari, Thai...) keep their words whole.
CREATE_FTS_TABLE: Final = (
    "CREATE VIRTUAL TABLE search_index USING fts5(title, body, extra, "
    "tokenize=\"unicode61 remove_diacritics 2 categories 'L* N* Co M*'\")"
)
# The kind fields that hold words a reader may search for (not the URLs); the statements
# below name the same.
WORD_FIELDS: Final = ("speaker", "role", "caption", "credit", "alt", "correction")

# Written out in full: SQL made of constants, every statement as SQLite will store it.
TRIGGERS: Final = {
    "search_entry_added": """AFTER INSERT ON entries BEGIN
        INSERT INTO search_index (rowid, title, body, extra) VALUES (new.id, '', new.body,
            (SELECT group_concat(value, ' ') FROM json_each(new.fields)
             WHERE key IN ('speaker', 'role', 'caption', 'credit', 'alt', 'correction')));
    END""",
    # Only a change of the words: flags, status and tombstones are read from `entries` itself.
    "search_entry_changed": """AFTER UPDATE OF body, fields ON entries BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
        INSERT INTO search_index (rowid, title, body, extra) VALUES (new.id, '', new.body,
            (SELECT group_concat(value, ' ') FROM json_each(new.fields)
             WHERE key IN ('speaker', 'role', 'caption', 'credit', 'alt', 'correction')));
    END""",
    "search_entry_removed": """AFTER DELETE ON entries BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
    END""",
    "search_story_added": """AFTER INSERT ON stories BEGIN
        INSERT INTO search_index (rowid, title, body, extra) VALUES (-new.id, new.headline, new.summary, new.dateline);
    END""",
    # Not on every update: `last_event_id` moves with each post.
    "search_story_changed": """AFTER UPDATE OF headline, dateline, summary ON stories BEGIN
        DELETE FROM search_index WHERE rowid = -old.id;
        INSERT INTO search_index (rowid, title, body, extra) VALUES (-new.id, new.headline, new.summary, new.dateline);
    END""",
    "search_story_removed": """AFTER DELETE ON stories BEGIN
        DELETE FROM search_index WHERE rowid = -old.id;
    END""",
}
# The rows already there, as the triggers would have filed them.
FILL: Final = (
    "DELETE FROM search_index",
    """INSERT INTO search_index (rowid, title, body, extra)
       SELECT id, '', body, (SELECT group_concat(value, ' ') FROM json_each(entries.fields)
                             WHERE key IN ('speaker', 'role', 'caption', 'credit', 'alt', 'correction'))
       FROM entries""",
    "INSERT INTO search_index (rowid, title, body, extra) SELECT -id, headline, summary, dateline FROM stories",
)


def create_sqlite_index(conn: Connection) -> None:
    """The FTS5 table, its triggers, and the rows already there (migration 0009)."""
    conn.exec_driver_sql(CREATE_FTS_TABLE)
    for name in TRIGGERS:
        _create_trigger(conn, name)
    for statement in FILL:
        conn.exec_driver_sql(statement)


def drop_sqlite_index(conn: Connection) -> None:
    for name in TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    conn.exec_driver_sql("DROP TABLE search_index")


def restore_sqlite_triggers(conn: Connection) -> bool:
    """After migrations: a migration that rebuilds `entries` or `stories` on SQLite (Alembic's
    batch mode copies the table and drops the old one) drops its triggers with it. Put them
    back, and the index's rows with them (what changed meanwhile was not indexed). True if
    anything was missing."""
    present = {row[0] for row in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    missing = [name for name in TRIGGERS if name not in present]
    if FTS_TABLE not in present or not missing:
        return False
    for name in missing:
        _create_trigger(conn, name)
    for statement in FILL:
        conn.exec_driver_sql(statement)
    return True


def _create_trigger(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(f"CREATE TRIGGER {name} " + TRIGGERS[name])


# --- SQLite: the query ---------------------------------------------------------------------------

fts = table(FTS_TABLE, column("rowid", Integer))
_fts_itself: ColumnElement[Any] = literal_column(FTS_TABLE)  # FTS5's hidden column named after the table


def fts_match(query: str) -> ColumnElement[bool]:
    return _fts_itself.bool_op("MATCH")(query)


def fts_score() -> ColumnElement[float]:
    """Higher is better (bm25 gives lower for better)."""
    return -func.bm25(_fts_itself, *BM25_WEIGHTS)


# --- PostgreSQL --------------------------------------------------------------------------------


def vector_of(of: Table) -> ColumnElement[Any]:
    """The generated column of `entries` or `stories`."""
    return literal_column(f"{of.name}.{VECTOR}", type_=TSVECTOR)


def ts_query(words: str) -> ColumnElement[Any]:
    return func.plainto_tsquery(CONFIG, words)


def ts_match(of: Table, words: str) -> ColumnElement[bool]:
    return vector_of(of).bool_op("@@")(ts_query(words))


def ts_score(of: Table, words: str) -> ColumnElement[float]:
    return func.ts_rank(vector_of(of), ts_query(words))
