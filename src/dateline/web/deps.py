"""What every route may ask of a request: the database, the settings, who is asking, and
the parameters that name a story or an entry, each declared once for the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..accounts.users import User
from ..config import Settings
from ..db import Database
from ..vocabulary import IDEMPOTENCY_KEY_REGEX, MAX_ID, MAX_SLUG, SLUG_REGEX, Audience
from . import auth
from .problems import Problem

bearer = HTTPBearer(auto_error=False, description="An API token from `dateline token create`.")
# For operations that answer anonymous readers too: "a token, or nothing" in the document.
ANONYMOUS_OK: dict[str, Any] = {"security": [{}]}


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def current_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(current_settings)]


def optional_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User | None:
    return auth.user_for_request(request, credentials.credentials if credentials else None)


Viewer = Annotated[User | None, Depends(optional_user)]


def signed_in(user: Viewer) -> User:
    if user is None:
        raise Problem(
            401, "Send an API token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


Member = Annotated[User, Depends(signed_in)]


def audience_of(user: User | None) -> Audience:
    """Newsroom members see drafts and pending posts (reporters post to them too)."""
    return Audience.of(user is not None)


SlugPath = Annotated[
    str, Path(max_length=MAX_SLUG, pattern=SLUG_REGEX, examples=["night-two"], description="The story's slug.")
]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The ETag you edited; 412 if it is stale.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_REGEX,
        description="Retry a POST with the same key (1 to 255 visible ASCII characters): it is done once.",
    ),
]


def check_if_match(if_match: str | None, etag: str) -> None:
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" not in candidates and etag not in candidates:
        raise Problem(
            412, "This was changed by someone else since you loaded it; reload and redo your change.",
            current_etag=etag,
        )
