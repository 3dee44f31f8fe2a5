"""Search: stories and their updates found by the words in them, best match first.

- `terms`: what a query may be (its limits) and the words taken from it. The text a reader
  types is never handed to the database's query syntax: it is cut into words here, and
  each word is passed as a plain term.
- `index`: the database objects that hold the words (SQLite FTS5, PostgreSQL tsvector) and
  the expressions that match and rank them.
- `query`: one page of hits as an audience may see them, with filters.
- `snippets`: the words around a match, HTML-escaped, the matches in `<mark>`.

See docs/search.md.
"""
