"""`Idempotency-Key`: a POST retried from a flaky connection gets the first answer again.

The key and the answer are stored in the same transaction as the write itself, so either
both exist or neither does: a retry after a lost answer replays it, a retry after a crash
before commit simply performs the write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import Connection, and_, delete, select
from sqlalchemy.exc import IntegrityError

from .db import Database
from .problems import Problem
from .schema import idempotency_keys

MAX_KEY_LENGTH = 255
REPLAY_HEADER = "Idempotent-Replayed"

Work = Callable[[Connection], tuple[int, dict[str, Any], dict[str, str]]]


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise Problem(
            400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."
        )
    return key


def fingerprint(method: str, path: str, payload: str) -> str:
    return hashlib.sha256(f"{method} {path}\n{payload}".encode()).hexdigest()


def _stored(conn: Connection, user_id: int, key: str, print_: str, ttl: timedelta) -> JSONResponse | None:
    row = conn.execute(
        select(idempotency_keys).where(
            and_(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
        )
    ).first()
    if row is None:
        return None
    created = row.created_at
    if created < datetime.now(timezone.utc) - ttl:
        conn.execute(
            delete(idempotency_keys).where(
                and_(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            )
        )
        return None
    if row.request_hash != print_:
        raise Problem(
            422,
            "This Idempotency-Key was already used for a different request; "
            "use a new key for a new request.",
        )
    stored = json.loads(row.response)
    return JSONResponse(
        stored["body"], status_code=row.status_code, headers={**stored["headers"], REPLAY_HEADER: "true"}
    )


def run(
    db: Database, user_id: int, key: str | None, print_: str, ttl: timedelta, work: Work
) -> JSONResponse:
    """Perform `work` in a write transaction once per key; replay its answer afterwards."""
    try:
        with db.write() as conn:
            if key is not None:
                replay = _stored(conn, user_id, key, print_, ttl)
                if replay is not None:
                    return replay
            status, body, headers = work(conn)
            if key is not None:
                conn.execute(
                    idempotency_keys.insert().values(
                        user_id=user_id, key=key, request_hash=print_, status_code=status,
                        response=json.dumps({"body": body, "headers": headers}),
                        created_at=datetime.now(timezone.utc),
                    )
                )
    except IntegrityError:
        # A concurrent request with the same key committed first (PostgreSQL): ours rolled
        # back whole, so answer with theirs.
        if key is None:
            raise
        with db.read() as conn:
            replay = _stored(conn, user_id, key, print_, ttl)
        if replay is None:
            raise
        return replay
    return JSONResponse(body, status_code=status, headers=headers)
