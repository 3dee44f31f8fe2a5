"""Newsroom accounts: users with roles, argon2id passwords and API tokens."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid, NotAllowed
from ..schema import api_tokens, users

# argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane): about 30 ms a check here,
# slow for a guesser, cheap enough that a burst of logins does not stall the server.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
USERNAME_REGEX = r"^[a-z0-9][a-z0-9._-]{1,62}$"
USERNAME_PATTERN = re.compile(USERNAME_REGEX.replace("$", r"\Z"))  # "$" would let a newline through
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "dl_"  # noqa: S105 - a prefix that marks tokens, not a secret


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
    return _hasher.hash(password)


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


def set_password(conn: Connection, user: User, password: str) -> None:
    check_password_rules(password)
    conn.execute(update(users).where(users.c.id == user.id).values(password_hash=hash_password(password)))


def check_current_password(conn: Connection, user: User, password: str) -> None:
    """Before a password change: the one being replaced must be known."""
    if authenticate(conn, user.username, password) is None:
        raise NotAllowed("The current password is wrong.")


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user if the password is right and the account is enabled."""
    username = username.strip().lower()
    row = None
    if USERNAME_PATTERN.match(username):
        row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        # Spend the same time as a real check, so timing does not reveal which names exist.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if row.disabled else _user(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(conn: Connection, user: User, label: str = "") -> str:
    """Create an API token for the user; the token itself is shown once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            user_id=user.id,
            label=(label or "api").strip()[:120],
            token_hash=_token_hash(token),
            created_at=_now(),
        )
    )
    return token


def user_for_token(conn: Connection, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        select(users)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == _token_hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    if row is None or row.disabled:
        return None
    return _user(row)
