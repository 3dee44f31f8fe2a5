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

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, and_, delete, select
from sqlalchemy.exc import IntegrityError

from ..config import Settings
from ..db import Database
from ..schema import idempotency_keys
from .problems import Problem

REPLAY_HEADER = "Idempotent-Replayed"

Work = Callable[[Connection], tuple[int, dict[str, Any], dict[str, str]]]


def fingerprint(request: Request, payload: BaseModel | dict[str, Any]) -> str:
    """What a key stands for: the same key with another request is refused."""
    body = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload, sort_keys=True)
    text = f"{request.method} {request.url.path}\n{body}"
    return hashlib.sha256(text.encode()).hexdigest()


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
    db: Database, user_id: int, key: str | None, print_: str, settings: Settings, work: Work
) -> JSONResponse:
    """Perform `work` in a write transaction once per key; replay its answer afterwards.
    (The key's format is checked with the request: `deps.IdempotencyKey`.)"""
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
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
