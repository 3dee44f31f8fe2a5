"""Sign-in sessions for the newsroom, and the throttle that makes guessing passwords futile.

The cookie holds a random token; the database keeps only its SHA-256, with the session's
CSRF token and its times. A session ends on logout, after `session_idle_minutes` without
use, after `session_max_hours` in all, and at once when its user is disabled, demoted or
changes password. Every sign-in makes a new session (no fixation).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, and_, delete, func, select, text, update

from ..schema import login_failures, sessions, users
from .users import USERNAME_PATTERN, User, _user

COOKIE = "dateline_session"
TOUCH_EVERY = timedelta(minutes=1)  # last-seen is written at most this often

# Failed sign-ins allowed per window before a 429. The pair limit is the tight one; the
# per-account limit is loose and short, so a distributed attack cannot lock a reporter out
# for long, and a successful sign-in clears the pair's record.
PAIR_LIMIT, PAIR_WINDOW = 5, timedelta(minutes=5)
ADDRESS_LIMIT, ADDRESS_WINDOW = 30, timedelta(minutes=15)
ACCOUNT_LIMIT, ACCOUNT_WINDOW = 30, timedelta(minutes=5)


@dataclass(frozen=True)
class Session:
    id: str  # the SHA-256 of the cookie's token
    user: User
    csrf_token: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(conn: Connection, user: User, *, ip: str, user_agent: str, max_age: timedelta) -> tuple[str, Session]:
    """A new session for `user`; returns the cookie's token (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    now = _now()
    csrf = secrets.token_urlsafe(24)
    conn.execute(
        sessions.insert().values(
            id=_digest(token), user_id=user.id, csrf_token=csrf, created_at=now, last_seen_at=now,
            expires_at=now + max_age, ip=ip[:64], user_agent=user_agent[:200],
        )
    )
    return token, Session(_digest(token), user, csrf)


def lookup(conn: Connection, token: str, idle: timedelta) -> tuple[Session | None, bool]:
    """The live session for a cookie token (None: unknown, expired, user disabled), and
    whether its last-seen time is due to be written (`touch`, in a write transaction)."""
    if not token or len(token) > 100:
        return None, False
    now = _now()
    row = conn.execute(
        select(sessions.c.id.label("session_id"), sessions.c.csrf_token, sessions.c.last_seen_at, sessions.c.expires_at,
               users)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id == _digest(token))
    ).first()
    if row is None or row.disabled or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None, False
    return Session(row.session_id, _user(row), row.csrf_token), now - row.last_seen_at > TOUCH_EVERY


def still_open(conn: Connection, session_ids: set[str], idle: timedelta) -> set[str]:
    """Which of these sessions are still live (not ended, expired, or of a disabled user)."""
    if not session_ids:
        return set()
    now = _now()
    rows = conn.execute(
        select(sessions.c.id, sessions.c.last_seen_at, sessions.c.expires_at)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id.in_(session_ids), users.c.disabled.is_(False))
    )
    return {row.id for row in rows if row.expires_at > now and row.last_seen_at + idle > now}


def touch(conn: Connection, session_id: str) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_seen_at=_now()))


def end(conn: Connection, session_id: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.id == session_id))


def end_all(conn: Connection, user_id: int, keep: str | None = None) -> None:
    """End every session of a user (disabled, demoted, new password), except `keep`."""
    query = delete(sessions).where(sessions.c.user_id == user_id)
    if keep:
        query = query.where(sessions.c.id != keep)
    conn.execute(query)


# --- the sign-in throttle ------------------------------------------------------------------
#
# Every guess is counted before its password is checked, in one write transaction that also
# checks the limits: on SQLite the transaction holds the write lock from its start
# (BEGIN IMMEDIATE), on PostgreSQL it takes THROTTLE_LOCK, so two guesses, in any processes,
# never both see room for one. The row stays as the failure's record unless the password was
# right (`clear_failures`).

THROTTLE_LOCK = 0x44_4C_54_48  # any constant: names the PostgreSQL advisory lock of the throttle
NOT_A_USERNAME = ""  # what a name that cannot be a username is counted under


def throttle_key(username: str) -> str:
    """The name a guess is counted under: the username as stored, or NOT_A_USERNAME for text
    that cannot be one (so the table holds only clean names, and such guesses are limited by
    address)."""
    name = username.strip().lower()
    return name if USERNAME_PATTERN.match(name) else NOT_A_USERNAME


def clean_address(ip: str) -> str:
    return "".join(c for c in ip if c.isprintable())[:64] or "unknown"


def wait_before_trying(conn: Connection, key: str, ip: str) -> int:
    """Seconds this address must wait before trying this account again (0: go ahead)."""
    now = _now()
    checks = [
        (and_(login_failures.c.username == key, login_failures.c.ip == ip), PAIR_LIMIT, PAIR_WINDOW),
        (login_failures.c.ip == ip, ADDRESS_LIMIT, ADDRESS_WINDOW),
    ]
    if key != NOT_A_USERNAME:
        checks.append((login_failures.c.username == key, ACCOUNT_LIMIT, ACCOUNT_WINDOW))
    wait = 0
    for condition, limit, window in checks:
        recent = conn.execute(
            select(login_failures.c.at)
            .where(condition, login_failures.c.at > now - window)
            .order_by(login_failures.c.at.desc())
            .limit(limit)
        ).scalars().all()
        if len(recent) >= limit:
            # Free again when the oldest of the last `limit` failures leaves the window.
            wait = max(wait, int((recent[-1] + window - now).total_seconds()) + 1)
    return wait


def count_attempt(conn: Connection, key: str, ip: str) -> int:
    """In a write transaction, before the password is checked: the seconds to wait if this
    guess is over a limit (nothing is recorded), else 0 with the guess recorded as a failure."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": THROTTLE_LOCK})
    wait = wait_before_trying(conn, key, ip)
    if not wait:
        record_failure(conn, key, ip)
    return wait


def record_failure(conn: Connection, key: str, ip: str) -> None:
    now = _now()
    conn.execute(login_failures.insert().values(username=key[:64], ip=ip[:64], at=now))
    if secrets.randbelow(100) == 0:  # now and then, not at every guess: `at` has no index of its own
        conn.execute(delete(login_failures).where(login_failures.c.at < now - timedelta(days=1)))


def clear_failures(conn: Connection, key: str, ip: str) -> None:
    """The password was right: this address's guesses at this account are forgotten."""
    conn.execute(
        delete(login_failures).where(login_failures.c.username == key, login_failures.c.ip == ip)
    )


def count(conn: Connection, user_id: int) -> int:
    return int(conn.execute(select(func.count()).where(sessions.c.user_id == user_id)).scalar_one())
