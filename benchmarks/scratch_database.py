"""A PostgreSQL database of a benchmark's own, created for its run and dropped after."""

from __future__ import annotations

import os

ADMIN_URL = os.environ.get("DATELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def create(name: str) -> str:
    """Create `name` afresh (dropping a leftover of an interrupted run); returns its URL."""
    drop(name)
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
