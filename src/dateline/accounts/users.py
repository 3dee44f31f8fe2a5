"""Newsroom accounts: users with roles, argon2id passwords and API tokens."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, select, true, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid, NotAllowed, NotFound
from ..schema import api_tokens, users
from . import passwords

USERNAME_REGEX = r"^[a-z0-9][a-z0-9._-]{1,62}$"
USERNAME_PATTERN = re.compile(USERNAME_REGEX.replace("$", r"\Z"))  # "$" would let a newline through
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "dl_"  # noqa: S105 - a prefix that marks tokens, not a secret
SHOWN_TOKEN_CHARS = 6  # of the random part, kept as the token's visible prefix: not enough to guess it
TOKEN_TOUCH_EVERY = timedelta(hours=1)  # a token's last use is written at most this often


class Role(str, enum.Enum):
    reporter = "reporter"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"reporter": 1, "editor": 2, "admin": 3}[self.value]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    disabled: bool

    def can(self, role: Role) -> bool:
        return self.role.at_least(role)

    def require(self, role: Role, action: str) -> None:
        """The one check of a role: `NotAllowed` says who may `action` instead."""
        if not self.role.at_least(role):
            raise NotAllowed(f"Only {role.value}s and above can {action}; you are a {self.role.value}.")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _user(row: Row[Any]) -> User:
    return User(row.id, row.username, row.display_name, Role(row.role), row.disabled)


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"The password must be at most {MAX_PASSWORD_LENGTH} characters.")


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def create_user(
    conn: Connection, username: str, password: str, role: Role, display_name: str | None = None
) -> User:
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        raise Invalid(
            "A username is 2-63 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    check_password_rules(password)
    try:
        with conn.begin_nested():
            user_id = conn.execute(
                users.insert()
                .values(
                    username=username,
                    display_name=(display_name or username).strip()[:120],
                    password_hash=hash_password(password),
                    role=role.value,
                    disabled=False,
                    created_at=_now(),
                )
                .returning(users.c.id)
            ).scalar_one()
    except IntegrityError:
        raise Conflict(f"A user named {username!r} already exists.") from None
    return User(user_id, username, display_name or username, role, False)


def get_user(conn: Connection, username: str) -> User | None:
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        return None
    row = conn.execute(select(users).where(users.c.username == username)).first()
    return _user(row) if row else None


def list_users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.username))]


def update_user(
    conn: Connection, user: User, *, role: Role | None = None, disabled: bool | None = None,
    display_name: str | None = None,
) -> User:
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = role.value
    if disabled is not None:
        values["disabled"] = disabled
    if display_name is not None:
        values["display_name"] = display_name.strip()[:120] or user.username
    if values:
        conn.execute(update(users).where(users.c.id == user.id).values(**values))
    return get_user(conn, user.username)  # type: ignore[return-value]  # the row is there: updated just now


def require_user(conn: Connection, username: str) -> User:
    found = get_user(conn, username)
    if found is None:
        raise NotFound(f"No user named {username!r}.")
    return found


def new_password_hash(password: str) -> str:
    """The hash of a new password that keeps the rules: made before the write transaction
    opens, so the database is not held through the hashing."""
    check_password_rules(password)
    return hash_password(password)


def store_password_hash(conn: Connection, user: User, password_hash: str) -> None:
    conn.execute(update(users).where(users.c.id == user.id).values(password_hash=password_hash))


def set_password(conn: Connection, user: User, password: str) -> None:
    store_password_hash(conn, user, new_password_hash(password))


def password_of(conn: Connection, username: str) -> tuple[str | None, User | None]:
    """The stored hash and the user for a name (None, None: no such user, or not a username)."""
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        return None, None
    row = conn.execute(select(users).where(users.c.username == username)).first()
    return (row.password_hash, _user(row)) if row else (None, None)


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user if the password is right and the account is enabled. An unknown name costs
    the same check as a known one (against a dummy hash), so timing does not tell them apart.
    Not throttled: the server's sign-ins go through `web.auth`, which is."""
    stored, user = password_of(conn, username)
    if not passwords.verify(stored, password[:MAX_PASSWORD_LENGTH]) or user is None:
        return None
    return None if user.disabled else user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Token:
    """What may be shown of an API token: never the token itself."""

    id: int
    username: str
    label: str
    prefix: str  # the token's first characters, to recognise it by
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create_token(conn: Connection, user: User, label: str = "") -> str:
    """Create an API token for the user; the token itself is shown once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            user_id=user.id,
            label=(label or "api").strip()[:120],
            token_hash=_token_hash(token),
            prefix=token[: len(TOKEN_PREFIX) + SHOWN_TOKEN_CHARS],
            created_at=_now(),
        )
    )
    return token


def token_user(conn: Connection, token: str) -> tuple[User, int, bool] | None:
    """The enabled user a live token belongs to, the token's id, and whether its last use is
    due to be written (`touch_token`, in a write transaction)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        select(users, api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == _token_hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    if row is None or row.disabled:
        return None
    due = row.last_used_at is None or _now() - row.last_used_at > TOKEN_TOUCH_EVERY
    return _user(row), row.token_id, due


def user_for_token(conn: Connection, token: str) -> User | None:
    found = token_user(conn, token)
    return found[0] if found else None


def touch_token(conn: Connection, token_id: int) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=_now()))


def list_tokens(conn: Connection, user: User | None = None) -> list[Token]:
    """Every token (of `user`, if given), revoked ones too, oldest first."""
    return _tokens_where(conn, true() if user is None else api_tokens.c.user_id == user.id)


def get_token(conn: Connection, token_id: int) -> Token | None:
    return next(iter(_tokens_where(conn, api_tokens.c.id == token_id)), None)


def _tokens_where(conn: Connection, condition: ColumnElement[bool]) -> list[Token]:
    rows = conn.execute(
        select(api_tokens, users.c.username).join(users, users.c.id == api_tokens.c.user_id)
        .where(condition).order_by(api_tokens.c.id)
    )
    return [Token(r.id, r.username, r.label, r.prefix or TOKEN_PREFIX, r.created_at, r.last_used_at, r.revoked_at)
            for r in rows]


def revoke_token(conn: Connection, token_id: int) -> bool:
    """Revoke a token: it stops working at once. False if it was revoked already."""
    done = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    return done.rowcount > 0
